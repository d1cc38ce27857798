//! `LedgerState`: the production TigerBeetle 0.17 state machine. It gives the same results as
//! the reference model (`ModelLedger`), event by event and query by query, but is laid out
//! for speed and memory.
//!
//! # Layout
//!
//! * Transfers live in one append-only [`ChunkedVec`] in timestamp order. A transfer's
//!   position there is its *slot* (`u32`). Timestamps strictly increase along the store, so
//!   a timestamp bound becomes a slot bound by binary search.
//! * `transfer_index` maps a transfer id to its slot, and `account_index` maps an account id
//!   to its position in the account store. Both are exact, keyed-hash [`IdIndex`]es.
//! * `pending_statuses` holds one byte per slot: `None` for a transfer that is not pending,
//!   otherwise its resolution (`Pending`, `Posted`, `Voided`, `Expired`). A dense byte column
//!   costs one byte per transfer and can be snapshotted by sharing chunks. A hash map keyed
//!   by slot would cost more per pending transfer and would have to be copied.
//! * `links` lists, per account and in increasing slot order, the slots of the transfers
//!   that debit or credit it, for `get_account_transfers` and `get_account_balances`. The
//!   newest transfers are logged and bulk-indexed later (see `links`), because appending to
//!   thousands of list tails one transfer at a time misses the cache.
//! * `history` holds balance-history rows, appended in slot order, only for the sides whose
//!   account has the `history` flag. That flag never changes after creation, and
//!   `get_account_balances` answers only for such accounts.
//! * `expiry_queue` orders the unresolved pending transfers that have a timeout by
//!   `(expires_at, timestamp)`, which is the deterministic expiry order.
//! * `failed_ids` is the exact set of ids burnt by transient failures.
//! * `transfer_query` and `account_query` are the secondary indexes of `query_transfers`
//!   and `query_accounts` (see `secondary`), brought up to date after every batch.
//!
//! # Invariants
//!
//! The invariants hold at every batch boundary and [`LedgerState::check_invariants`] verifies
//! them:
//!
//! * the model's ledger invariants: posted and pending sums balance, pending balances equal
//!   the unresolved pending amounts, and limits and closing flags are respected;
//! * every derived index agrees with the stores;
//! * timestamps are unique and increase along both stores.
//!
//! The stores stay sorted only under the caller's timestamp contract: every batch timestamp
//! `T` satisfies `T − N + 1 >` the previous batch's `T` and `T ≤ 2^63 − 1`, which is what the
//! engine's clock guarantees. Breaking the contract never panics, but then results may
//! differ from the model's.
//!
//! # Linked chains
//!
//! A chain does not clone the state. While it is open, every overwrite of an account or of a
//! pending status is logged with the value it replaced, and the store lengths are
//! remembered. Appends are undone by truncating the stores back to those lengths. Rolling
//! back costs time proportional to the chain's effects. Outside a chain nothing is logged.
//!
//! # Cost of operations
//!
//! Creating an event takes expected O(1) hash lookups. The hash tables and account records
//! are far larger than the caches, so a transfer batch first resolves every event's two
//! accounts in one tight loop, then warms each group of events (id buckets and account
//! records) before validating them. A core can keep many independent misses in flight in a
//! tight loop, but not inside the long validation code of one event. Resolving or expiring a pending
//! transfer with a timeout adds O(log p), where p is the number of pending transfers with a
//! timeout. `lookup_*` is O(1) per id. `get_account_transfers` and `get_account_balances`
//! take O(log n) to find the timestamp range, then scan the account's transfers in it until
//! `limit` results match. `query_accounts` and `query_transfers` binary-search the timestamp
//! range, then read the rarest filtered value's positions from the query indexes
//! (`secondary.rs`: one `u32` per object per field that anyone sets, plus an entry per
//! distinct value), or scan the range when that is cheaper. [`LedgerState::image`] is O(number of chunks + chunk length).
//!
//! Files: this one holds the state and its public calls; `batch.rs` the batch driver (the
//! batch-level rules B1–B7 and dense results), `create/` the per-object rulebooks,
//! `undo.rs` the linked chain's undo log and rollback, `query.rs` lookups and queries,
//! `links.rs` per-account transfer lists, `secondary.rs` the query indexes, `image.rs`
//! snapshot images and restore, `invariants.rs` the consistency checks.

use std::collections::BTreeSet;
use std::ops::Range;

use crate::ledger::chunked::ChunkedVec;
use crate::ledger::dedup::{FailedIds, IdIndex};
use links::AccountLinks;

use crate::ledger::{
    Account, AccountFlags, BATCH_EVENTS_MAX, CreateAccountResult, CreateAccountStatus,
    CreateTransferResult, CreateTransferStatus, Transfer, TransferFlags,
};

mod batch;
mod create;
mod image;
mod invariants;
mod links;
mod query;
mod secondary;
mod undo;

use batch::first_event_timestamp;
use undo::{UndoEntry, UndoLog};

pub use image::LedgerImage;
#[cfg(any(test, feature = "internals"))]
pub use image::RestoreError;

/// The greatest valid timestamp, 2^63 − 1 (TigerBeetle reserves the top bit).
const TIMESTAMP_MAX: u64 = (1 << 63) - 1;

/// The smallest valid timestamp.
const TIMESTAMP_MIN: u64 = 1;

/// Nanoseconds per second, to convert a transfer's `timeout` (seconds) to ledger time.
const NANOSECONDS_PER_SECOND: u64 = 1_000_000_000;

/// Events per warm-up group (see `LedgerState::warm_transfers`): enough independent cache
/// misses to keep the memory system busy, few enough that the warmed lines stay in L1.
const WARM_GROUP_LEN: usize = 32;

/// The most results one query filter returns, whatever its `limit` (TigerBeetle's
/// `Operation.result_max` for 1 MiB messages).
const QUERY_RESULTS_MAX: usize = 8189;

/// Resolution state of a stored transfer, one byte per slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum PendingStatus {
    /// The transfer is not a pending transfer.
    None = 0,
    /// Reserved and not yet resolved.
    Pending = 1,
    /// Resolved by a post.
    Posted = 2,
    /// Resolved by a void.
    Voided = 3,
    /// Released because its timeout passed.
    Expired = 4,
}

impl PendingStatus {
    /// Decodes a status byte; unknown values give `None` (the Rust `Option`).
    fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::None),
            1 => Some(Self::Pending),
            2 => Some(Self::Posted),
            3 => Some(Self::Voided),
            4 => Some(Self::Expired),
            _ => None,
        }
    }
}

/// A stored account, aligned to a cache line so that it spans exactly two lines (a plain
/// `Account` is only 16-byte aligned and usually straddles three). It dereferences to the
/// account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(align(64))]
struct AccountRecord(Account);

impl std::ops::Deref for AccountRecord {
    type Target = Account;

    fn deref(&self) -> &Account {
        &self.0
    }
}

impl std::ops::DerefMut for AccountRecord {
    fn deref_mut(&mut self) -> &mut Account {
        &mut self.0
    }
}

/// One account's balances right after one transfer, for `get_account_balances`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HistoryRow {
    /// The transfer's slot.
    slot: u32,
    /// The account's position in the account store.
    account: u32,
    /// `debits_pending`, `debits_posted`, `credits_pending`, `credits_posted`.
    balances: [u128; 4],
}

/// An expiry-queue entry: `(expires_at, timestamp, slot)`, ordered as the expiry rule
/// requires (expiry instant, then creation timestamp).
type ExpiryKey = (u64, u64, u32);

/// Estimated heap bytes per component of the ledger state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUsage {
    /// The account store.
    pub accounts_bytes: usize,
    /// The account id index.
    pub account_index_bytes: usize,
    /// The per-account lists of transfer slots.
    pub account_transfers_bytes: usize,
    /// The transfer store.
    pub transfers_bytes: usize,
    /// The transfer id index.
    pub transfer_index_bytes: usize,
    /// The pending-status column (one byte per transfer).
    pub pending_statuses_bytes: usize,
    /// The balance-history rows.
    pub history_bytes: usize,
    /// The expiry queue (an estimate of its B-tree nodes).
    pub expiry_queue_bytes: usize,
    /// The set of burnt ids.
    pub failed_ids_bytes: usize,
    /// The linked-chain undo log's retained capacity.
    pub undo_log_bytes: usize,
    /// The secondary indexes of `query_transfers` and `query_accounts`.
    pub query_index_bytes: usize,
}

impl MemoryUsage {
    /// Returns the sum of all components.
    pub fn total_bytes(&self) -> usize {
        self.accounts_bytes
            + self.account_index_bytes
            + self.account_transfers_bytes
            + self.transfers_bytes
            + self.transfer_index_bytes
            + self.pending_statuses_bytes
            + self.history_bytes
            + self.expiry_queue_bytes
            + self.failed_ids_bytes
            + self.undo_log_bytes
            + self.query_index_bytes
    }
}

/// Sizes of the state's internal structures: parameters, never `cfg!(test)`. Production
/// uses [`Sizes::PRODUCTION`] everywhere; random walks of the state machine choose
/// [`Sizes::SMALL`] explicitly, so that a few hundred events cross chunk boundaries and
/// account-link flushes all the time. Results never depend on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// Log2 of the elements per chunk of the chunked stores.
    pub chunk_shift: u32,
    /// Account-link log entries below which no bulk flush happens.
    pub unindexed_min: usize,
    /// Transfers from which the invariant checks split the transfer store over two
    /// threads.
    pub parallel_check_min: usize,
}

impl Sizes {
    /// What the ledger runs with.
    pub const PRODUCTION: Sizes = Sizes {
        chunk_shift: crate::ledger::chunked::CHUNK_LEN_SHIFT,
        unindexed_min: links::UNINDEXED_MIN,
        parallel_check_min: PARALLEL_CHECK_TRANSFERS_MIN,
    };
    /// Chunks of 16 elements, flushes every 16 links.
    #[cfg(any(test, feature = "internals"))]
    pub const SMALL: Sizes = Sizes {
        chunk_shift: 4,
        unindexed_min: 16,
        parallel_check_min: 64,
    };
}

/// The production ledger state machine (see the module documentation).
pub struct LedgerState {
    accounts: ChunkedVec<AccountRecord>,
    account_index: IdIndex<u32>,
    links: AccountLinks,
    transfers: ChunkedVec<Transfer>,
    transfer_index: IdIndex<u32>,
    pending_statuses: ChunkedVec<PendingStatus>,
    history: ChunkedVec<HistoryRow>,
    expiry_queue: BTreeSet<ExpiryKey>,
    failed_ids: FailedIds,
    undo: UndoLog,
    /// Secondary indexes of the transfer store for `query_transfers`.
    transfer_query: secondary::QueryIndex,
    /// Secondary indexes of the account store for `query_accounts`.
    account_query: secondary::QueryIndex,
    /// See [`Sizes::parallel_check_min`].
    parallel_check_min: usize,
}

/// Transfers from which the invariant checks use two threads (below, one is faster).
const PARALLEL_CHECK_TRANSFERS_MIN: usize = 1 << 20;

impl Default for LedgerState {
    fn default() -> Self {
        Self {
            accounts: ChunkedVec::default(),
            account_index: IdIndex::default(),
            links: AccountLinks::default(),
            transfers: ChunkedVec::default(),
            transfer_index: IdIndex::default(),
            pending_statuses: ChunkedVec::default(),
            history: ChunkedVec::default(),
            expiry_queue: BTreeSet::default(),
            failed_ids: FailedIds::default(),
            undo: UndoLog::default(),
            transfer_query: secondary::QueryIndex::default(),
            account_query: secondary::QueryIndex::default(),
            parallel_check_min: PARALLEL_CHECK_TRANSFERS_MIN,
        }
    }
}

/// A transfer's values of the query filter fields, in `secondary::FIELDS` order.
fn transfer_query_values(transfer: Option<&Transfer>) -> secondary::FieldValues {
    transfer.map_or([0; secondary::FIELDS], |t| {
        [
            t.user_data_128,
            u128::from(t.user_data_64),
            u128::from(t.user_data_32),
            u128::from(t.ledger),
            u128::from(t.code),
        ]
    })
}

/// An account's values of the query filter fields, in `secondary::FIELDS` order.
fn account_query_values(account: Option<&AccountRecord>) -> secondary::FieldValues {
    account.map_or([0; secondary::FIELDS], |a| {
        [
            a.user_data_128,
            u128::from(a.user_data_64),
            u128::from(a.user_data_32),
            u128::from(a.ledger),
            u128::from(a.code),
        ]
    })
}

impl secondary::QueryIndex {
    /// Indexes the transfers not indexed yet.
    fn catch_up_transfers(&mut self, transfers: &ChunkedVec<Transfer>) {
        self.catch_up(transfers.len(), |p| transfer_query_values(transfers.get(p)));
    }

    /// Indexes the accounts not indexed yet.
    fn catch_up_accounts(&mut self, accounts: &ChunkedVec<AccountRecord>) {
        self.catch_up(accounts.len(), |p| account_query_values(accounts.get(p)));
    }
}

/// The most events (accounts or transfers, 128 bytes each) that `log_bytes` of logged
/// batches can hold.
fn events_max(log_bytes: u64) -> usize {
    usize::try_from(log_bytes / size_of::<Transfer>() as u64).unwrap_or(usize::MAX)
}

/// Returns true when `timestamp` is a valid timestamp, [1, 2^63 − 1].
fn timestamp_valid(timestamp: u64) -> bool {
    (TIMESTAMP_MIN..=TIMESTAMP_MAX).contains(&timestamp)
}

/// Returns the instant at which a pending transfer expires, if it can expire at all.
/// Computed in `u128` so that no input can overflow it.
fn expires_at(transfer: &Transfer) -> Option<u128> {
    if !transfer.flags.contains(TransferFlags::PENDING) || transfer.timeout == 0 {
        return None;
    }
    Some(
        u128::from(transfer.timestamp)
            + u128::from(transfer.timeout) * NANOSECONDS_PER_SECOND as u128,
    )
}

/// Returns the expiry-queue key of the transfer at `slot`, if it can expire. A stored
/// transfer passed the `overflows_timeout` check, so its expiry instant fits in a `u64`;
/// were it not to, it could never be due, which is the same as not being queued.
fn expiry_key(slot: u32, transfer: &Transfer) -> Option<ExpiryKey> {
    let instant = u64::try_from(expires_at(transfer)?).ok()?;
    Some((instant, transfer.timestamp, slot))
}

impl LedgerState {
    /// Returns an empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns an empty ledger whose internal structures have `sizes`.
    #[cfg(any(test, feature = "internals"))]
    pub fn with_sizes(sizes: Sizes) -> Self {
        let shift = sizes.chunk_shift;
        Self {
            accounts: ChunkedVec::with_chunk_shift(shift),
            links: AccountLinks::new(sizes.unindexed_min),
            parallel_check_min: sizes.parallel_check_min,
            transfers: ChunkedVec::with_chunk_shift(shift),
            pending_statuses: ChunkedVec::with_chunk_shift(shift),
            history: ChunkedVec::with_chunk_shift(shift),
            failed_ids: FailedIds::with_chunk_shift(shift),
            ..Self::default()
        }
    }

    /// Returns the number of stored accounts.
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// Returns the number of stored transfer records (post and void records included).
    pub fn transfer_count(&self) -> usize {
        self.transfers.len()
    }

    /// Creates a batch of accounts with batch timestamp `timestamp` (the timestamp of the
    /// batch's last event) and returns exactly one result per event, in order.
    ///
    /// # Panics
    ///
    /// Panics when the batch holds more than [`BATCH_EVENTS_MAX`] events: the engine rejects
    /// such a request before it reaches the state machine, so it is the caller's error.
    pub fn create_accounts(
        &mut self,
        events: &[Account],
        timestamp: u64,
    ) -> Vec<CreateAccountResult> {
        assert!(
            events.len() <= BATCH_EVENTS_MAX,
            "batch exceeds BATCH_EVENTS_MAX"
        );
        self.expire_pending(first_event_timestamp(events.len(), timestamp));
        let warm = |state: &Self, group: Range<usize>| {
            let ids = events.get(group).unwrap_or_default().iter();
            ids.fold(0, |value, a| value ^ state.account_index.warm(a.id))
        };
        let create = |state: &mut Self, _: usize, a: &Account, event_timestamp: u64| {
            state.create_account(a, event_timestamp)
        };
        let results = self
            .execute_batch(events, timestamp, warm, create)
            .into_iter()
            .map(|(status, timestamp)| CreateAccountResult { timestamp, status })
            .collect();
        self.index_for_queries();
        results
    }

    /// Brings the query indexes up to the stores: after a batch, once its chains are
    /// settled, so that they never need undoing.
    fn index_for_queries(&mut self) {
        self.account_query.catch_up_accounts(&self.accounts);
        self.transfer_query.catch_up_transfers(&self.transfers);
    }

    /// Creates a batch of transfers with batch timestamp `timestamp` (the timestamp of the
    /// batch's last event) and returns exactly one result per event, in order.
    ///
    /// # Panics
    ///
    /// Panics when the batch holds more than [`BATCH_EVENTS_MAX`] events (the caller's
    /// error, as for accounts), and when the store would exceed 2^32 − 1 transfers, which
    /// needs more than 512 GiB of memory and so cannot happen before allocation fails.
    pub fn create_transfers(
        &mut self,
        events: &[Transfer],
        timestamp: u64,
    ) -> Vec<CreateTransferResult> {
        assert!(
            events.len() <= BATCH_EVENTS_MAX,
            "batch exceeds BATCH_EVENTS_MAX"
        );
        self.expire_pending(first_event_timestamp(events.len(), timestamp));
        // No account is created or removed during a transfer batch, so both accounts of
        // every event can be looked up at once, in a tight loop whose cache misses overlap.
        let sides: Vec<[Option<u32>; 2]> = events
            .iter()
            .map(|t| {
                let debit = self.account_index.get(t.debit_account_id);
                [debit, self.account_index.get(t.credit_account_id)]
            })
            .collect();
        let warm = |state: &Self, group: Range<usize>| {
            let group_events = events.get(group.clone()).unwrap_or_default();
            state.warm_transfers(group_events, sides.get(group).unwrap_or_default())
        };
        let create = |state: &mut Self, index: usize, t: &Transfer, event_timestamp: u64| {
            let event_sides = sides.get(index).copied().unwrap_or_default();
            state.create_transfer(t, event_sides, event_timestamp)
        };
        let results = self
            .execute_batch(events, timestamp, warm, create)
            .into_iter()
            .map(|(status, timestamp)| CreateTransferResult { timestamp, status })
            .collect();
        self.links.flush_if_due();
        self.index_for_queries();
        results
    }

    /// Expires every pending transfer whose expiry instant is at or before `now`, in order
    /// of expiry instant and then of creation timestamp: each releases its full pending
    /// amount, reopens accounts it closed, and becomes `expired`. It creates no transfer
    /// record and no balance-history row.
    pub fn expire_pending(&mut self, now: u64) {
        while let Some(&(instant, _, slot)) = self.expiry_queue.first() {
            if instant > now {
                break;
            }
            self.expiry_queue.pop_first();
            self.apply_expiry(slot);
        }
    }

    /// Reads, without deciding anything, the id-index buckets and account records that
    /// creating `transfers` (whose account positions are `sides`) will touch, and returns a
    /// meaningless value to be passed to `black_box`. The reads form tight loops, so that
    /// their cache misses are in flight together instead of one after another inside the
    /// long validation code of each event.
    fn warm_transfers(&self, transfers: &[Transfer], sides: &[[Option<u32>; 2]]) -> u64 {
        let mut value = transfers.iter().fold(0, |value, transfer| {
            value ^ self.transfer_index.warm(transfer.id)
        });
        for index in sides.iter().flatten().flatten() {
            if let Some(account) = self.accounts.get(*index as usize) {
                value ^= u64::from(account.ledger);
            }
        }
        value
    }

    /// Returns the position of the account with this id and the account itself.
    #[inline]
    fn account_entry(&self, id: u128) -> Option<(u32, &Account)> {
        let index = self.account_index.get(id)?;
        Some((index, &self.accounts.get(index as usize)?.0))
    }

    /// Returns the stored account with this id.
    #[inline]
    fn account(&self, id: u128) -> Option<&Account> {
        self.account_entry(id).map(|(_, account)| account)
    }

    /// Sizes the transfer index for the transfers that `log_bytes` of logged batches can
    /// hold at most (every logged event takes at least a transfer's bytes), so that replay
    /// does not rebuild the index at every doubling.
    pub fn reserve_for_replay(&mut self, log_bytes: u64) {
        self.transfer_index.reserve(events_max(log_bytes));
    }

    /// Returns the slot and record of the stored transfer with this id.
    #[inline]
    fn transfer_by_id(&self, id: u128) -> Option<(u32, &Transfer)> {
        let slot = self.transfer_index.get(id)?;
        Some((slot, self.transfers.get(slot as usize)?))
    }

    /// Returns the estimated heap bytes held by each component.
    pub fn memory_bytes(&self) -> MemoryUsage {
        // A B-tree node holds up to 11 keys and is about two thirds full on average, with
        // some bytes of node header and child pointers per key.
        let expiry_entry_bytes = size_of::<ExpiryKey>() * 3 / 2 + 16;
        MemoryUsage {
            accounts_bytes: self.accounts.memory_bytes(),
            account_index_bytes: self.account_index.memory_bytes(),
            account_transfers_bytes: self.links.memory_bytes(),
            transfers_bytes: self.transfers.memory_bytes(),
            transfer_index_bytes: self.transfer_index.memory_bytes(),
            pending_statuses_bytes: self.pending_statuses.memory_bytes(),
            history_bytes: self.history.memory_bytes(),
            expiry_queue_bytes: self.expiry_queue.len() * expiry_entry_bytes,
            failed_ids_bytes: self.failed_ids.memory_bytes(),
            undo_log_bytes: self.undo.entries.capacity() * size_of::<UndoEntry>(),
            query_index_bytes: self.transfer_query.memory_bytes()
                + self.account_query.memory_bytes(),
        }
    }

    /// Overwrites an account's balances, bypassing every rule. TigerBeetle's table tests seed
    /// balances this way (their `setup` action); the result usually breaks the sum invariants.
    #[cfg(test)]
    pub(crate) fn set_balances_for_test(&mut self, id: u128, balances: [u128; 4]) {
        let Some(index) = self.account_index.get(id) else {
            return;
        };
        if let Some(account) = self.accounts.get_mut(index as usize) {
            account.debits_pending = balances[0];
            account.debits_posted = balances[1];
            account.credits_pending = balances[2];
            account.credits_posted = balances[3];
        }
    }
}

#[cfg(test)]
mod tests;
