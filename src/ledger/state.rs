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
//! range and then scan the store: O(log n + scanned). That is O(n) in the worst case for a
//! selective filter. This is deliberate, because secondary indexes on user data would cost
//! memory per transfer. [`LedgerState::image`] is O(number of chunks + chunk length).

use std::collections::BTreeSet;
use std::ops::Range;

use crate::ledger::chunked::ChunkedVec;
use crate::ledger::dedup::{FailedIds, IdIndex};
use links::AccountLinks;

use crate::ledger::{
    Account, AccountFlags, BATCH_EVENTS_MAX, CreateAccountResult, CreateAccountStatus,
    CreateTransferResult, CreateTransferStatus, Transfer, TransferFlags,
};

mod create;
mod image;
mod invariants;
mod links;
mod query;

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

/// The store lengths when the open chain began; appends beyond them are the chain's.
#[derive(Clone, Copy, Debug, Default)]
struct UndoMark {
    accounts_len: usize,
    transfers_len: usize,
    history_len: usize,
}

/// One overwrite made by the open chain, with the value it replaced.
#[derive(Clone, Copy, Debug)]
enum UndoEntry {
    /// An account's balances or flags changed.
    Account { index: u32, before: Account },
    /// A pending transfer's resolution changed.
    Status { slot: u32, before: PendingStatus },
}

/// The undo log of the open linked chain.
#[derive(Clone, Debug, Default)]
struct UndoLog {
    active: bool,
    mark: UndoMark,
    entries: Vec<UndoEntry>,
}

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
}

impl Sizes {
    /// What the ledger runs with.
    pub const PRODUCTION: Sizes = Sizes {
        chunk_shift: crate::ledger::chunked::CHUNK_LEN_SHIFT,
        unindexed_min: links::UNINDEXED_MIN,
    };
    /// Chunks of 16 elements, flushes every 16 links.
    #[cfg(any(test, feature = "internals"))]
    pub const SMALL: Sizes = Sizes {
        chunk_shift: 4,
        unindexed_min: 16,
    };
}

/// The production ledger state machine (see the module documentation).
#[derive(Default)]
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
}

/// Returns the timestamp of event `index` of a batch of `count` events with batch timestamp
/// `batch_timestamp`: the batch takes the `count` consecutive timestamps ending at
/// `batch_timestamp`. Saturates at 0 for out-of-contract inputs instead of panicking.
fn event_timestamp(batch_timestamp: u64, count: usize, index: usize) -> u64 {
    let distance_from_last = count.saturating_sub(index + 1);
    batch_timestamp.saturating_sub(u64::try_from(distance_from_last).unwrap_or(u64::MAX))
}

/// The most events (accounts or transfers, 128 bytes each) that `log_bytes` of logged
/// batches can hold.
fn events_max(log_bytes: u64) -> usize {
    usize::try_from(log_bytes / size_of::<Transfer>() as u64).unwrap_or(usize::MAX)
}

/// The instant used for the expiry run before a batch: the first event's timestamp, or the
/// batch timestamp itself for an empty batch.
fn first_event_timestamp(count: usize, batch_timestamp: u64) -> u64 {
    event_timestamp(batch_timestamp, count, 0)
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

/// The parts of an event that the batch-level steps (B1–B7) look at.
trait CreateEvent {
    fn id(&self) -> u128;
    fn is_linked(&self) -> bool;
    fn is_imported(&self) -> bool;
    fn user_timestamp(&self) -> u64;
    /// The timestamp of the stored object of this kind with this id, if any.
    fn stored_timestamp(state: &LedgerState, id: u128) -> Option<u64>;
}

impl CreateEvent for Account {
    fn id(&self) -> u128 {
        self.id
    }
    fn is_linked(&self) -> bool {
        self.flags.contains(AccountFlags::LINKED)
    }
    fn is_imported(&self) -> bool {
        self.flags.contains(AccountFlags::IMPORTED)
    }
    fn user_timestamp(&self) -> u64 {
        self.timestamp
    }
    fn stored_timestamp(state: &LedgerState, id: u128) -> Option<u64> {
        state.account(id).map(|account| account.timestamp)
    }
}

impl CreateEvent for Transfer {
    fn id(&self) -> u128 {
        self.id
    }
    fn is_linked(&self) -> bool {
        self.flags.contains(TransferFlags::LINKED)
    }
    fn is_imported(&self) -> bool {
        self.flags.contains(TransferFlags::IMPORTED)
    }
    fn user_timestamp(&self) -> u64 {
        self.timestamp
    }
    fn stored_timestamp(state: &LedgerState, id: u128) -> Option<u64> {
        state
            .transfer_by_id(id)
            .map(|(_, transfer)| transfer.timestamp)
    }
}

/// The statuses that the batch-level steps produce, common to accounts and transfers.
trait CreateStatus: Copy + Eq {
    const CREATED: Self;
    const EXISTS: Self;
    const LINKED_EVENT_FAILED: Self;
    const LINKED_EVENT_CHAIN_OPEN: Self;
    const IMPORTED_EVENT_EXPECTED: Self;
    const IMPORTED_EVENT_NOT_EXPECTED: Self;
    const TIMESTAMP_MUST_BE_ZERO: Self;
    const IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE: Self;
    const IMPORTED_EVENT_TIMESTAMP_MUST_NOT_ADVANCE: Self;
    /// Whether a failure with this status burns the event's id (transfers only).
    fn burns_id(self) -> bool;
}

impl CreateStatus for CreateAccountStatus {
    const CREATED: Self = Self::Created;
    const EXISTS: Self = Self::Exists;
    const LINKED_EVENT_FAILED: Self = Self::LinkedEventFailed;
    const LINKED_EVENT_CHAIN_OPEN: Self = Self::LinkedEventChainOpen;
    const IMPORTED_EVENT_EXPECTED: Self = Self::ImportedEventExpected;
    const IMPORTED_EVENT_NOT_EXPECTED: Self = Self::ImportedEventNotExpected;
    const TIMESTAMP_MUST_BE_ZERO: Self = Self::TimestampMustBeZero;
    const IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE: Self = Self::ImportedEventTimestampOutOfRange;
    const IMPORTED_EVENT_TIMESTAMP_MUST_NOT_ADVANCE: Self =
        Self::ImportedEventTimestampMustNotAdvance;

    /// Account statuses never depend on transient state, so no account id is ever burnt.
    fn burns_id(self) -> bool {
        false
    }
}

impl CreateStatus for CreateTransferStatus {
    const CREATED: Self = Self::Created;
    const EXISTS: Self = Self::Exists;
    const LINKED_EVENT_FAILED: Self = Self::LinkedEventFailed;
    const LINKED_EVENT_CHAIN_OPEN: Self = Self::LinkedEventChainOpen;
    const IMPORTED_EVENT_EXPECTED: Self = Self::ImportedEventExpected;
    const IMPORTED_EVENT_NOT_EXPECTED: Self = Self::ImportedEventNotExpected;
    const TIMESTAMP_MUST_BE_ZERO: Self = Self::TimestampMustBeZero;
    const IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE: Self = Self::ImportedEventTimestampOutOfRange;
    const IMPORTED_EVENT_TIMESTAMP_MUST_NOT_ADVANCE: Self =
        Self::ImportedEventTimestampMustNotAdvance;

    fn burns_id(self) -> bool {
        self.is_transient()
    }
}

/// Where an event sits in its batch, as the batch-level steps need it.
#[derive(Clone, Copy)]
struct EventPosition {
    index: usize,
    count: usize,
    assigned_timestamp: u64,
    batch_timestamp: u64,
    batch_imported: bool,
    chain_broken: bool,
}

/// The linked chain currently open in a batch.
struct OpenChain {
    start_index: usize,
    broken: bool,
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
        self.execute_batch(events, timestamp, warm, create)
            .into_iter()
            .map(|(status, timestamp)| CreateAccountResult { timestamp, status })
            .collect()
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

    /// Runs the batch-level steps B1–B7 and the linked-chain rules for every event, applying
    /// each event with `create`, and returns `(status, result timestamp)` per event.
    ///
    /// Before each group of [`WARM_GROUP_LEN`] events, `warm` reads the memory the group will
    /// touch (see `warm_transfers`). `create` gets the event's index in the batch.
    fn execute_batch<E, S>(
        &mut self,
        events: &[E],
        batch_timestamp: u64,
        warm: impl Fn(&Self, Range<usize>) -> u64,
        create: impl Fn(&mut Self, usize, &E, u64) -> Result<(), S>,
    ) -> Vec<(S, u64)>
    where
        E: CreateEvent,
        S: CreateStatus,
    {
        let count = events.len();
        // The first event decides whether the whole batch is imported, even if it fails.
        let batch_imported = events.first().is_some_and(CreateEvent::is_imported);
        let mut results: Vec<(S, u64)> = Vec::with_capacity(count);
        let mut chain: Option<OpenChain> = None;
        for (index, event) in events.iter().enumerate() {
            if index % WARM_GROUP_LEN == 0 {
                let group_end = (index + WARM_GROUP_LEN).min(count);
                std::hint::black_box(warm(self, index..group_end));
            }
            let assigned_timestamp = event_timestamp(batch_timestamp, count, index);
            // B1: a linked event with no open chain opens one.
            if event.is_linked() && chain.is_none() {
                chain = Some(OpenChain {
                    start_index: index,
                    broken: false,
                });
                self.begin_chain();
            }
            let position = EventPosition {
                index,
                count,
                assigned_timestamp,
                batch_timestamp,
                batch_imported,
                chain_broken: chain.as_ref().is_some_and(|open| open.broken),
            };
            let outcome = self.evaluate_event(event, position, &create);
            let status = outcome.err().unwrap_or(S::CREATED);
            // Computed before a rollback, so `exists` still sees an object created earlier
            // in the same chain.
            let result_timestamp = self.result_timestamp(event, assigned_timestamp, &outcome);
            if status != S::CREATED {
                self.fail_event(&mut chain, &mut results, index);
                // A transient failure burns the id after the rollback, so it survives it.
                if status.burns_id() {
                    self.failed_ids.insert(event.id());
                }
            }
            results.push((status, result_timestamp));
            // The chain ends at its first unlinked event, or at the batch's end.
            if (!event.is_linked() || status == S::LINKED_EVENT_CHAIN_OPEN)
                && chain.take().is_some_and(|open| !open.broken)
            {
                self.commit_chain();
            }
        }
        if chain.is_some_and(|open| !open.broken) {
            self.commit_chain();
        }
        results
    }

    /// The first failure inside a chain breaks it: undo every effect of the chain's earlier
    /// events and report them as `linked_event_failed`, keeping their timestamps.
    fn fail_event<S: CreateStatus>(
        &mut self,
        chain: &mut Option<OpenChain>,
        results: &mut [(S, u64)],
        index: usize,
    ) {
        if let Some(open) = chain.as_mut().filter(|open| !open.broken) {
            open.broken = true;
            self.rollback_chain();
            for earlier in results.get_mut(open.start_index..index).unwrap_or_default() {
                earlier.0 = S::LINKED_EVENT_FAILED;
            }
        }
    }

    /// Decides one event's outcome (steps B2–B7): `Ok(timestamp)` when it was applied.
    fn evaluate_event<E, S>(
        &mut self,
        event: &E,
        position: EventPosition,
        create: &impl Fn(&mut Self, usize, &E, u64) -> Result<(), S>,
    ) -> Result<u64, S>
    where
        E: CreateEvent,
        S: CreateStatus,
    {
        // B2: the batch must not end inside a chain; checked before B3.
        if event.is_linked() && position.index + 1 == position.count {
            return Err(S::LINKED_EVENT_CHAIN_OPEN);
        }
        // B3: once a chain broke, its remaining events are not evaluated.
        if position.chain_broken {
            return Err(S::LINKED_EVENT_FAILED);
        }
        // B4: every event must agree with the first one on being imported.
        if event.is_imported() != position.batch_imported {
            return Err(if event.is_imported() {
                S::IMPORTED_EVENT_NOT_EXPECTED
            } else {
                S::IMPORTED_EVENT_EXPECTED
            });
        }
        let event_timestamp = if event.is_imported() {
            // B5: an imported timestamp must be valid and strictly before the batch's.
            if !timestamp_valid(event.user_timestamp()) {
                return Err(S::IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE);
            }
            if event.user_timestamp() >= position.batch_timestamp {
                return Err(S::IMPORTED_EVENT_TIMESTAMP_MUST_NOT_ADVANCE);
            }
            event.user_timestamp()
        } else {
            // B6: a non-imported event must leave its timestamp to the ledger.
            if event.user_timestamp() != 0 {
                return Err(S::TIMESTAMP_MUST_BE_ZERO);
            }
            position.assigned_timestamp
        };
        // B7: the per-object rules.
        create(self, position.index, event, event_timestamp)?;
        Ok(event_timestamp)
    }

    /// Returns the timestamp TigerBeetle 0.17 reports with an event's dense result.
    fn result_timestamp<E, S>(
        &self,
        event: &E,
        assigned_timestamp: u64,
        outcome: &Result<u64, S>,
    ) -> u64
    where
        E: CreateEvent,
        S: CreateStatus,
    {
        match outcome {
            Ok(event_timestamp) => *event_timestamp,
            Err(status) if *status == S::EXISTS => {
                E::stored_timestamp(self, event.id()).unwrap_or(assigned_timestamp)
            }
            Err(status) if *status == S::LINKED_EVENT_FAILED => {
                if event.is_imported() && event.user_timestamp() != 0 {
                    event.user_timestamp()
                } else {
                    assigned_timestamp
                }
            }
            Err(_) => assigned_timestamp,
        }
    }

    /// Opens the undo log for a new chain.
    fn begin_chain(&mut self) {
        self.undo.active = true;
        self.undo.entries.clear();
        self.undo.mark = UndoMark {
            accounts_len: self.accounts.len(),
            transfers_len: self.transfers.len(),
            history_len: self.history.len(),
        };
    }

    /// Keeps the chain's effects and closes the undo log.
    fn commit_chain(&mut self) {
        self.undo.active = false;
        self.undo.entries.clear();
    }

    /// Undoes every effect of the open chain: first the logged overwrites, newest first, then
    /// the appends beyond the undo mark with the index entries that point at them.
    fn rollback_chain(&mut self) {
        self.undo.active = false;
        let mut entries = std::mem::take(&mut self.undo.entries);
        for entry in entries.iter().rev() {
            match *entry {
                UndoEntry::Account { index, before } => {
                    if let Some(account) = self.accounts.get_mut(index as usize) {
                        account.0 = before;
                    }
                }
                UndoEntry::Status { slot, before } => self.restore_status(slot, before),
            }
        }
        entries.clear();
        self.undo.entries = entries;
        let mark = self.undo.mark;
        while self.transfers.len() > mark.transfers_len {
            self.pop_transfer();
        }
        self.links.truncate_transfers(mark.transfers_len);
        self.pending_statuses.truncate(mark.transfers_len);
        self.history.truncate(mark.history_len);
        while self.accounts.len() > mark.accounts_len {
            let last = self.accounts.len() - 1;
            if let Some(account) = self.accounts.get(last) {
                self.account_index.remove(account.id);
            }
            self.links.truncate_accounts(last);
            self.accounts.truncate(last);
        }
    }

    /// Puts a pending status back as it was, re-queueing the transfer when it becomes
    /// pending again.
    fn restore_status(&mut self, slot: u32, before: PendingStatus) {
        if let Some(status) = self.pending_statuses.get_mut(slot as usize) {
            *status = before;
        }
        if before == PendingStatus::Pending {
            let key = self
                .transfers
                .get(slot as usize)
                .and_then(|transfer| expiry_key(slot, transfer));
            if let Some(key) = key {
                self.expiry_queue.insert(key);
            }
        }
    }

    /// Removes the newest transfer record with its id-index and expiry-queue entries.
    fn pop_transfer(&mut self) {
        let slot = self.transfers.len().saturating_sub(1);
        let Some(transfer) = self.transfers.last().copied() else {
            return;
        };
        self.transfer_index.remove(transfer.id);
        if let Some(key) = expiry_key(slot as u32, &transfer) {
            self.expiry_queue.remove(&key);
        }
        self.transfers.truncate(slot);
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
