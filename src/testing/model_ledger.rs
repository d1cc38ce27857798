//! `ModelLedger`: a small, deliberately slow and obviously correct reference model of the
//! TigerBeetle 0.17 state machine, used as the oracle for property tests and fuzzing of the
//! optimized ledger.
//!
//! The model keeps the whole ledger in ordered maps and answers every question by scanning
//! them, so that each rule reads as one straight line of code. The validation functions walk
//! TigerBeetle's precedence tables step by step, and every step is labelled with its name in
//! the syncpay semantics specification: B1–B7 for the batch-level checks, A1–A14 for
//! `create_account`, T1–T6 / O1–O26 / P1–P25 for `create_transfer`. The first failing step
//! decides the status, exactly as in TigerBeetle.
//!
//! Invariants kept at every batch boundary (checked by [`ModelLedger::check_invariants`]):
//! posted debits equal posted credits over all accounts; pending debits equal pending credits
//! and equal the amounts of the pending transfers that are still unresolved; no account
//! violates its balance-limit flag; every stored transfer references stored accounts; ids
//! burnt by transient failures never name a stored transfer.
//!
//! Linked chains are all-or-nothing: the model clones its whole ledger state when a chain
//! opens and restores the clone when the chain breaks. Only the set of burnt (orphaned)
//! transfer ids lives outside that state, because TigerBeetle records a burnt id after the
//! chain's rollback, so it survives it.
//!
//! Expiry of pending transfers is our deterministic choice, not TigerBeetle's mechanism.
//! TigerBeetle releases expired reservations in an internal, best-effort `pulse` operation
//! whose timing depends on the primary. This model instead runs the expiry at the start of
//! every `create_accounts` and `create_transfers` batch, before any event: each pending
//! transfer whose expiry instant (its timestamp plus `timeout` seconds, for `timeout > 0`) is
//! at or before the batch's first event timestamp `T - N + 1` is expired, in order of expiry
//! instant and then of creation timestamp. Expiring releases the pending amount from both
//! accounts, reopens an account closed by the expiring closing transfer, and marks the pending
//! transfer `expired`; like TigerBeetle it creates no transfer record and no balance-history
//! row. Independently of that, a post or void whose own timestamp is at or after the pending
//! transfer's expiry instant fails with `pending_transfer_expired` whether or not the release
//! has happened yet, exactly as in TigerBeetle. TigerBeetle explicitly allows a pending
//! balance to be observed after its expiry, so this schedule is one of the behaviours it
//! permits.

use std::collections::{BTreeMap, BTreeSet};

// One file per rulebook, read side by side with `ledger/state/`.
mod accounts;
mod invariants;
mod ordinary;
mod post_void;
mod query;

use accounts::*;
use ordinary::*;
use post_void::*;

use crate::ledger::{
    AMOUNT_MAX, Account, AccountBalance, AccountFilter, AccountFilterFlags, AccountFlags,
    BATCH_EVENTS_MAX, CreateAccountResult, CreateAccountStatus, CreateTransferResult,
    CreateTransferStatus, QueryFilter, QueryFilterFlags, Transfer, TransferFlags,
};

/// The greatest valid timestamp: 2^63 − 1, because TigerBeetle reserves the top bit of every
/// timestamp as a tombstone marker (`TimestampRange.timestamp_max` in
/// `src/lsm/timestamp_range.zig`).
pub const TIMESTAMP_MAX: u64 = (1 << 63) - 1;

/// The smallest valid timestamp (`TimestampRange.timestamp_min`).
pub const TIMESTAMP_MIN: u64 = 1;

/// Nanoseconds per second, to convert a transfer's `timeout` (seconds) to ledger time.
pub const NANOSECONDS_PER_SECOND: u64 = 1_000_000_000;

/// The most results one `get_account_transfers`, `get_account_balances`, `query_accounts` or
/// `query_transfers` filter can return, whatever its `limit`.
///
/// Every result record is 128 bytes, so a 1 MiB reply body (1_048_320 bytes) holds 8190 of
/// them, less one record's worth for the 0.17 multi-batch trailer: 8189
/// (`Operation.result_max` in TigerBeetle; the state machine silently caps `limit` at it).
pub const QUERY_RESULTS_MAX: usize = 8189;

/// Resolution state of a pending transfer (TigerBeetle's `TransferPendingStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PendingStatus {
    /// Reserved and not yet resolved.
    Pending,
    /// Resolved by a post.
    Posted,
    /// Resolved by a void.
    Voided,
    /// Released because its timeout passed.
    Expired,
}

/// Both accounts' balances right after one transfer was applied (one balance-history entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HistoryEntry {
    debit_account_id: u128,
    debit_account_balance: AccountBalance,
    credit_account_id: u128,
    credit_account_balance: AccountBalance,
}

/// Everything a linked chain's rollback must restore.
#[derive(Clone, Debug, Default)]
struct LedgerState {
    /// Accounts by id, with current balances and flags.
    accounts: BTreeMap<u128, Account>,
    /// Stored transfer records by id: ordinary, pending, post and void records.
    transfers: BTreeMap<u128, Transfer>,
    /// Resolution state of every stored pending transfer, by the pending transfer's id.
    pending_statuses: BTreeMap<u128, PendingStatus>,
    /// Balance snapshots of both accounts after each stored transfer, by transfer timestamp.
    history: BTreeMap<u64, HistoryEntry>,
}

/// The reference model of the TigerBeetle 0.17 ledger state machine.
#[derive(Clone, Debug, Default)]
pub struct ModelLedger {
    /// The ledger proper; cloned when a linked chain opens and restored when it breaks.
    state: LedgerState,
    /// Transfer ids burnt by a transient failure. Never rolled back, never cleared.
    orphaned_ids: BTreeSet<u128>,
}

/// Returns the timestamp TigerBeetle reserves for event `index` of a batch of `count` events
/// with batch timestamp `batch_timestamp`: the batch takes the `count` consecutive
/// timestamps ending at `batch_timestamp`. Saturating arithmetic keeps out-of-contract inputs
/// from panicking.
fn event_timestamp(batch_timestamp: u64, count: usize, index: usize) -> u64 {
    let distance_from_last = count.saturating_sub(index + 1);
    batch_timestamp.saturating_sub(u64::try_from(distance_from_last).unwrap_or(u64::MAX))
}

/// Returns true when `timestamp` is a valid TigerBeetle timestamp, [1, 2^63 − 1].
fn timestamp_valid(timestamp: u64) -> bool {
    (TIMESTAMP_MIN..=TIMESTAMP_MAX).contains(&timestamp)
}

/// Returns true when the exact (unbounded) sum of `values` exceeds `u128::MAX`.
fn sum_overflows(values: &[u128]) -> bool {
    values
        .iter()
        .try_fold(0u128, |sum, value| sum.checked_add(*value))
        .is_none()
}

/// Returns the instant at which a pending transfer expires, if it can expire at all.
/// Computed in `u128` so that no input can overflow it.
fn expires_at(transfer: &Transfer) -> Option<u128> {
    if !transfer.flags.contains(TransferFlags::PENDING) || transfer.timeout == 0 {
        return None;
    }
    Some(transfer.timestamp as u128 + transfer.timeout as u128 * NANOSECONDS_PER_SECOND as u128)
}

/// Returns the balance part of an account as a history row stamped with `timestamp`.
fn balance_of(account: &Account, timestamp: u64) -> AccountBalance {
    AccountBalance {
        debits_pending: account.debits_pending,
        debits_posted: account.debits_posted,
        credits_pending: account.credits_pending,
        credits_posted: account.credits_posted,
        timestamp,
    }
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
        state.accounts.get(&id).map(|account| account.timestamp)
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
        state.transfers.get(&id).map(|transfer| transfer.timestamp)
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

/// The linked chain currently open in a batch, with the state to restore if it breaks.
struct OpenChain {
    start_index: usize,
    snapshot: LedgerState,
    broken: bool,
}

impl ModelLedger {
    /// Returns an empty ledger.
    pub fn new() -> Self {
        Self::default()
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
        self.expire_pending(Self::first_event_timestamp(events.len(), timestamp));
        self.execute_batch(
            events,
            timestamp,
            |state, _orphaned_ids, account, event_timestamp| {
                create_account(state, account, event_timestamp)
            },
        )
        .into_iter()
        .map(|(status, timestamp)| CreateAccountResult { timestamp, status })
        .collect()
    }

    /// Creates a batch of transfers with batch timestamp `timestamp` (the timestamp of the
    /// batch's last event) and returns exactly one result per event, in order.
    ///
    /// # Panics
    ///
    /// Panics when the batch holds more than [`BATCH_EVENTS_MAX`] events: the engine rejects
    /// such a request before it reaches the state machine, so it is the caller's error.
    pub fn create_transfers(
        &mut self,
        events: &[Transfer],
        timestamp: u64,
    ) -> Vec<CreateTransferResult> {
        assert!(
            events.len() <= BATCH_EVENTS_MAX,
            "batch exceeds BATCH_EVENTS_MAX"
        );
        self.expire_pending(Self::first_event_timestamp(events.len(), timestamp));
        self.execute_batch(events, timestamp, create_transfer)
            .into_iter()
            .map(|(status, timestamp)| CreateTransferResult { timestamp, status })
            .collect()
    }

    /// The instant used for the expiry run before a batch: the first event's timestamp, or
    /// the batch timestamp itself for an empty batch (which has no first event).
    fn first_event_timestamp(count: usize, batch_timestamp: u64) -> u64 {
        if count == 0 {
            batch_timestamp
        } else {
            event_timestamp(batch_timestamp, count, 0)
        }
    }

    /// Runs the batch-level steps B1–B7 and the linked-chain rules for every event, applying
    /// each event with `create`, and returns `(status, result timestamp)` per event.
    fn execute_batch<E, S>(
        &mut self,
        events: &[E],
        batch_timestamp: u64,
        create: impl Fn(&mut LedgerState, &BTreeSet<u128>, &E, u64) -> Result<(), S>,
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
            let assigned_timestamp = event_timestamp(batch_timestamp, count, index);

            // B1: a linked event with no open chain opens one; remember the state to restore.
            if event.is_linked() && chain.is_none() {
                chain = Some(OpenChain {
                    start_index: index,
                    snapshot: self.state.clone(),
                    broken: false,
                });
            }
            let chain_broken = chain.as_ref().is_some_and(|open| open.broken);

            let outcome = self.evaluate_event(
                event,
                EventPosition {
                    index,
                    count,
                    assigned_timestamp,
                    batch_timestamp,
                    batch_imported,
                    chain_broken,
                },
                &create,
            );
            let status = match outcome {
                Ok(_) => S::CREATED,
                Err(status) => status,
            };
            let result_timestamp = self.result_timestamp(event, assigned_timestamp, &outcome);

            if status != S::CREATED {
                // The first failure inside a chain breaks it: undo every effect of the chain's
                // earlier events and report them as `linked_event_failed`, keeping the
                // timestamps they were created with.
                if let Some(open) = chain.as_mut().filter(|open| !open.broken) {
                    open.broken = true;
                    self.state = open.snapshot.clone();
                    for earlier in &mut results[open.start_index..index] {
                        earlier.0 = S::LINKED_EVENT_FAILED;
                    }
                }
                // A transient failure burns the id. TigerBeetle records it after the chain's
                // rollback, so the burnt id survives the rollback.
                if status.burns_id() {
                    self.orphaned_ids.insert(event.id());
                }
            }
            results.push((status, result_timestamp));

            // The chain ends at its first unlinked event, or at the batch's end.
            if !event.is_linked() || status == S::LINKED_EVENT_CHAIN_OPEN {
                chain = None;
            }
        }
        results
    }

    /// Decides one event's outcome (steps B2–B7): `Ok(timestamp)` when it was applied.
    fn evaluate_event<E, S>(
        &mut self,
        event: &E,
        position: EventPosition,
        create: &impl Fn(&mut LedgerState, &BTreeSet<u128>, &E, u64) -> Result<(), S>,
    ) -> Result<u64, S>
    where
        E: CreateEvent,
        S: CreateStatus,
    {
        // B2: the batch must not end inside a chain. Checked before B3, so the last event of an
        // open chain reports this even when the chain already broke.
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
            // B5: an imported timestamp must be valid and strictly before the batch timestamp.
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
        create(&mut self.state, &self.orphaned_ids, event, event_timestamp)?;
        Ok(event_timestamp)
    }

    /// Returns the timestamp TigerBeetle 0.17 reports with an event's dense result. It is
    /// called before a breaking chain is rolled back, so `exists` can still see an object
    /// created earlier in the same chain.
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
            // `created`: the stored object's timestamp (user-supplied when imported).
            Ok(event_timestamp) => *event_timestamp,
            // `exists`: the existing object's timestamp.
            Err(status) if *status == S::EXISTS => {
                E::stored_timestamp(&self.state, event.id()).unwrap_or(assigned_timestamp)
            }
            // `linked_event_failed` for an event after the break: the timestamp the event would
            // have had, i.e. its own timestamp when imported, otherwise its assigned one.
            Err(status) if *status == S::LINKED_EVENT_FAILED => {
                if event.is_imported() && event.user_timestamp() != 0 {
                    event.user_timestamp()
                } else {
                    assigned_timestamp
                }
            }
            // Every other failure: the event's assigned timestamp.
            Err(_) => assigned_timestamp,
        }
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

/// Steps O14a and P22's condition: `timestamp` is at or before the newest transfer (post and
/// void records included), or equals an account's timestamp.
fn imported_timestamp_regresses_transfer(state: &LedgerState, timestamp: u64) -> bool {
    let newest_transfer = state
        .transfers
        .values()
        .map(|transfer| transfer.timestamp)
        .max();
    newest_transfer.is_some_and(|newest| timestamp <= newest)
        || state
            .accounts
            .values()
            .any(|account| account.timestamp == timestamp)
}

/// Steps T1–T6: the checks common to every transfer, then the ordinary or post/void path.
fn create_transfer(
    state: &mut LedgerState,
    orphaned_ids: &BTreeSet<u128>,
    t: &Transfer,
    timestamp: u64,
) -> Result<(), CreateTransferStatus> {
    use CreateTransferStatus as S;
    // T1–T3: padding flags, then the id.
    if t.flags.intersects(TransferFlags::PADDING) {
        return Err(S::ReservedFlag);
    }
    if t.id == 0 {
        return Err(S::IdMustNotBeZero);
    }
    if t.id == u128::MAX {
        return Err(S::IdMustNotBeIntMax);
    }
    // T4: idempotency comes before every semantic check.
    if let Some(existing) = state.transfers.get(&t.id) {
        return Err(transfer_exists_status(state, t, existing));
    }
    // T5: an id burnt by an earlier transient failure can never be used again.
    if orphaned_ids.contains(&t.id) {
        return Err(S::IdAlreadyFailed);
    }
    // T6: choose the path.
    if t.flags
        .intersects(TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER)
    {
        post_or_void_pending_transfer(state, orphaned_ids, t, timestamp)
    } else {
        create_ordinary_transfer(state, t, timestamp)
    }
}

/// Step T4: compares a resubmitted transfer with the stored one in TigerBeetle's order.
/// Flags come first because they change the meaning of the other fields.
fn transfer_exists_status(
    state: &LedgerState,
    t: &Transfer,
    existing: &Transfer,
) -> CreateTransferStatus {
    use CreateTransferStatus as S;
    if t.flags != existing.flags {
        return S::ExistsWithDifferentFlags;
    }
    if t.pending_id != existing.pending_id {
        return S::ExistsWithDifferentPendingId;
    }
    if t.timeout != existing.timeout {
        return S::ExistsWithDifferentTimeout;
    }
    if t.flags
        .intersects(TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER)
    {
        // The flags are equal, so `existing` is a post/void of the same pending transfer, and
        // a stored post/void always references a stored pending transfer.
        let Some(pending) = state.transfers.get(&t.pending_id) else {
            return S::ExistsWithDifferentPendingId;
        };
        post_or_void_exists_status(t, existing, pending)
    } else {
        ordinary_exists_status(t, existing)
    }
}

/// Records both accounts' balances after `transfer` was applied. TigerBeetle records this
/// for every transfer, whatever the accounts' `history` flags; `get_account_balances` then
/// shows it only for accounts with `history`.
fn record_history(state: &mut LedgerState, transfer: &Transfer) {
    let debit_account = state
        .accounts
        .get(&transfer.debit_account_id)
        .copied()
        .unwrap_or_default();
    let credit_account = state
        .accounts
        .get(&transfer.credit_account_id)
        .copied()
        .unwrap_or_default();
    state.history.insert(
        transfer.timestamp,
        HistoryEntry {
            debit_account_id: transfer.debit_account_id,
            debit_account_balance: balance_of(&debit_account, transfer.timestamp),
            credit_account_id: transfer.credit_account_id,
            credit_account_balance: balance_of(&credit_account, transfer.timestamp),
        },
    );
}

/// Returns true when the account exists and is closed.
fn account_closed(state: &LedgerState, account_id: u128) -> bool {
    state
        .accounts
        .get(&account_id)
        .is_some_and(|account| account.flags.contains(AccountFlags::CLOSED))
}

#[cfg(test)]
mod tests;
