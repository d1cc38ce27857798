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

/// Steps A1–A14: validates and inserts one account with event timestamp `timestamp`.
fn create_account(
    state: &mut LedgerState,
    a: &Account,
    timestamp: u64,
) -> Result<(), CreateAccountStatus> {
    use CreateAccountStatus as S;
    // A1–A4: reserved field before padding flags, then the id.
    if a.reserved != 0 {
        return Err(S::ReservedField);
    }
    if a.flags.intersects(AccountFlags::PADDING) {
        return Err(S::ReservedFlag);
    }
    if a.id == 0 {
        return Err(S::IdMustNotBeZero);
    }
    if a.id == u128::MAX {
        return Err(S::IdMustNotBeIntMax);
    }
    // A5: idempotency comes before every semantic check.
    if let Some(existing) = state.accounts.get(&a.id) {
        return Err(account_exists_status(a, existing));
    }
    // A6–A12: field checks.
    if a.flags
        .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
        && a.flags
            .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
    {
        return Err(S::FlagsAreMutuallyExclusive);
    }
    if a.debits_pending != 0 {
        return Err(S::DebitsPendingMustBeZero);
    }
    if a.debits_posted != 0 {
        return Err(S::DebitsPostedMustBeZero);
    }
    if a.credits_pending != 0 {
        return Err(S::CreditsPendingMustBeZero);
    }
    if a.credits_posted != 0 {
        return Err(S::CreditsPostedMustBeZero);
    }
    if a.ledger == 0 {
        return Err(S::LedgerMustNotBeZero);
    }
    if a.code == 0 {
        return Err(S::CodeMustNotBeZero);
    }
    // A13: an imported account must come after every account and share no transfer's
    // timestamp. Deliberately after the idempotency checks, so imports can be resubmitted.
    if a.flags.contains(AccountFlags::IMPORTED)
        && imported_timestamp_regresses_account(state, timestamp)
    {
        return Err(S::ImportedEventTimestampMustNotRegress);
    }
    // A14: insert with zero balances and the flags exactly as submitted.
    let account = Account {
        reserved: 0,
        timestamp,
        ..*a
    };
    state.accounts.insert(account.id, account);
    Ok(())
}

/// Step A5: compares a resubmitted account with the stored one in TigerBeetle's order.
/// Flags are compared in full against the current flags (so `closed` counts); balances and
/// timestamps are never compared.
fn account_exists_status(a: &Account, existing: &Account) -> CreateAccountStatus {
    use CreateAccountStatus as S;
    if a.flags != existing.flags {
        S::ExistsWithDifferentFlags
    } else if a.user_data_128 != existing.user_data_128 {
        S::ExistsWithDifferentUserData128
    } else if a.user_data_64 != existing.user_data_64 {
        S::ExistsWithDifferentUserData64
    } else if a.user_data_32 != existing.user_data_32 {
        S::ExistsWithDifferentUserData32
    } else if a.ledger != existing.ledger {
        S::ExistsWithDifferentLedger
    } else if a.code != existing.code {
        S::ExistsWithDifferentCode
    } else {
        S::Exists
    }
}

/// Step A13's condition: `timestamp` is at or before the newest account, or equals a
/// transfer's timestamp.
fn imported_timestamp_regresses_account(state: &LedgerState, timestamp: u64) -> bool {
    let newest_account = state
        .accounts
        .values()
        .map(|account| account.timestamp)
        .max();
    newest_account.is_some_and(|newest| timestamp <= newest)
        || state
            .transfers
            .values()
            .any(|transfer| transfer.timestamp == timestamp)
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

/// The exists comparison for a resubmitted post or void: zero fields mean "inherited from
/// the pending transfer" and match whatever was inherited.
fn post_or_void_exists_status(
    t: &Transfer,
    existing: &Transfer,
    pending: &Transfer,
) -> CreateTransferStatus {
    use CreateTransferStatus as S;
    if t.debit_account_id != 0 && t.debit_account_id != existing.debit_account_id {
        return S::ExistsWithDifferentDebitAccountId;
    }
    if t.credit_account_id != 0 && t.credit_account_id != existing.credit_account_id {
        return S::ExistsWithDifferentCreditAccountId;
    }
    // A void's 0 and a post's AMOUNT_MAX both mean "the full pending amount".
    let means_full_amount = if t.flags.contains(TransferFlags::VOID_PENDING_TRANSFER) {
        t.amount == 0
    } else {
        t.amount == AMOUNT_MAX
    };
    let amount_differs = if means_full_amount {
        existing.amount != pending.amount
    } else {
        t.amount != existing.amount
    };
    if amount_differs {
        return S::ExistsWithDifferentAmount;
    }
    if inherited_field_differs(
        t.user_data_128,
        existing.user_data_128,
        pending.user_data_128,
    ) {
        return S::ExistsWithDifferentUserData128;
    }
    if inherited_field_differs(t.user_data_64, existing.user_data_64, pending.user_data_64) {
        return S::ExistsWithDifferentUserData64;
    }
    if inherited_field_differs(t.user_data_32, existing.user_data_32, pending.user_data_32) {
        return S::ExistsWithDifferentUserData32;
    }
    if t.ledger != 0 && t.ledger != existing.ledger {
        return S::ExistsWithDifferentLedger;
    }
    if t.code != 0 && t.code != existing.code {
        return S::ExistsWithDifferentCode;
    }
    S::Exists
}

/// A user-data field of a resubmitted post/void differs when it is set and differs from the
/// stored value, or when it is 0 (inherit) and the stored value is not the pending one.
fn inherited_field_differs<T: PartialEq + Default>(submitted: T, existing: T, pending: T) -> bool {
    if submitted == T::default() {
        existing != pending
    } else {
        submitted != existing
    }
}

/// The exists comparison for a resubmitted ordinary (single-phase or pending) transfer.
fn ordinary_exists_status(t: &Transfer, existing: &Transfer) -> CreateTransferStatus {
    use CreateTransferStatus as S;
    if t.debit_account_id != existing.debit_account_id {
        return S::ExistsWithDifferentDebitAccountId;
    }
    if t.credit_account_id != existing.credit_account_id {
        return S::ExistsWithDifferentCreditAccountId;
    }
    // A balancing transfer's amount is an upper bound: any bound at least the amount that
    // actually moved describes the same transfer.
    let amount_differs = if t
        .flags
        .intersects(TransferFlags::BALANCING_DEBIT | TransferFlags::BALANCING_CREDIT)
    {
        t.amount < existing.amount
    } else {
        t.amount != existing.amount
    };
    if amount_differs {
        return S::ExistsWithDifferentAmount;
    }
    if t.user_data_128 != existing.user_data_128 {
        return S::ExistsWithDifferentUserData128;
    }
    if t.user_data_64 != existing.user_data_64 {
        return S::ExistsWithDifferentUserData64;
    }
    if t.user_data_32 != existing.user_data_32 {
        return S::ExistsWithDifferentUserData32;
    }
    if t.ledger != existing.ledger {
        return S::ExistsWithDifferentLedger;
    }
    if t.code != existing.code {
        return S::ExistsWithDifferentCode;
    }
    S::Exists
}

/// Steps O1–O26: a single-phase or pending transfer.
fn create_ordinary_transfer(
    state: &mut LedgerState,
    t: &Transfer,
    timestamp: u64,
) -> Result<(), CreateTransferStatus> {
    use CreateTransferStatus as S;
    // O1–O13: field checks, account lookups and ledgers.
    check_ordinary_fields(t)?;
    let debit_account = *state
        .accounts
        .get(&t.debit_account_id)
        .ok_or(S::DebitAccountNotFound)?;
    let credit_account = *state
        .accounts
        .get(&t.credit_account_id)
        .ok_or(S::CreditAccountNotFound)?;
    if debit_account.ledger != credit_account.ledger {
        return Err(S::AccountsMustHaveTheSameLedger);
    }
    if t.ledger != debit_account.ledger {
        return Err(S::TransferMustHaveTheSameLedgerAsAccounts);
    }
    // O14: imported transfers must not regress and must postdate both accounts.
    if t.flags.contains(TransferFlags::IMPORTED) {
        if imported_timestamp_regresses_transfer(state, timestamp) {
            return Err(S::ImportedEventTimestampMustNotRegress);
        }
        if timestamp <= debit_account.timestamp {
            return Err(S::ImportedEventTimestampMustPostdateDebitAccount);
        }
        if timestamp <= credit_account.timestamp {
            return Err(S::ImportedEventTimestampMustPostdateCreditAccount);
        }
        if t.timeout != 0 {
            return Err(S::ImportedEventTimeoutMustBeZero);
        }
    }
    // O15–O16: closed accounts accept no new transfers.
    if debit_account.flags.contains(AccountFlags::CLOSED) {
        return Err(S::DebitAccountAlreadyClosed);
    }
    if credit_account.flags.contains(AccountFlags::CLOSED) {
        return Err(S::CreditAccountAlreadyClosed);
    }
    // O17: the balancing clamp.
    let amount = balancing_amount(t, &debit_account, &credit_account);
    // O18–O23: exact overflow checks.
    check_ordinary_overflows(t, amount, &debit_account, &credit_account, timestamp)?;
    // O24–O25: balance limits, counting pending amounts pessimistically.
    if debit_account
        .flags
        .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
        && exceeds(
            &[
                debit_account.debits_pending,
                debit_account.debits_posted,
                amount,
            ],
            debit_account.credits_posted,
        )
    {
        return Err(S::ExceedsCredits);
    }
    if credit_account
        .flags
        .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
        && exceeds(
            &[
                credit_account.credits_pending,
                credit_account.credits_posted,
                amount,
            ],
            credit_account.debits_posted,
        )
    {
        return Err(S::ExceedsDebits);
    }
    // O26: apply.
    apply_ordinary_transfer(state, t, amount, timestamp);
    Ok(())
}

/// Steps O1–O9: the ordinary path's field checks, in order.
fn check_ordinary_fields(t: &Transfer) -> Result<(), CreateTransferStatus> {
    use CreateTransferStatus as S;
    if t.debit_account_id == 0 {
        return Err(S::DebitAccountIdMustNotBeZero);
    }
    if t.debit_account_id == u128::MAX {
        return Err(S::DebitAccountIdMustNotBeIntMax);
    }
    if t.credit_account_id == 0 {
        return Err(S::CreditAccountIdMustNotBeZero);
    }
    if t.credit_account_id == u128::MAX {
        return Err(S::CreditAccountIdMustNotBeIntMax);
    }
    if t.credit_account_id == t.debit_account_id {
        return Err(S::AccountsMustBeDifferent);
    }
    if t.pending_id != 0 {
        return Err(S::PendingIdMustBeZero);
    }
    if !t.flags.contains(TransferFlags::PENDING) {
        if t.timeout != 0 {
            return Err(S::TimeoutReservedForPendingTransfer);
        }
        if t.flags
            .intersects(TransferFlags::CLOSING_DEBIT | TransferFlags::CLOSING_CREDIT)
        {
            return Err(S::ClosingTransferMustBePending);
        }
    }
    if t.ledger == 0 {
        return Err(S::LedgerMustNotBeZero);
    }
    if t.code == 0 {
        return Err(S::CodeMustNotBeZero);
    }
    Ok(())
}

/// Step O17: the amount actually moved. A balancing flag clamps the amount to what keeps the
/// account's debits within its credits (or credits within debits), whether or not the
/// account has a limit flag; the debit clamp applies first. The result may be 0.
fn balancing_amount(t: &Transfer, debit_account: &Account, credit_account: &Account) -> u128 {
    let mut amount = t.amount;
    if t.flags.contains(TransferFlags::BALANCING_DEBIT) {
        let debits = debit_account
            .debits_posted
            .saturating_add(debit_account.debits_pending);
        amount = amount.min(debit_account.credits_posted.saturating_sub(debits));
    }
    if t.flags.contains(TransferFlags::BALANCING_CREDIT) {
        let credits = credit_account
            .credits_posted
            .saturating_add(credit_account.credits_pending);
        amount = amount.min(credit_account.debits_posted.saturating_sub(credits));
    }
    amount
}

/// Steps O18–O23: every overflow check of the ordinary path, exact, in order.
fn check_ordinary_overflows(
    t: &Transfer,
    amount: u128,
    debit_account: &Account,
    credit_account: &Account,
    timestamp: u64,
) -> Result<(), CreateTransferStatus> {
    use CreateTransferStatus as S;
    if t.flags.contains(TransferFlags::PENDING) {
        if sum_overflows(&[amount, debit_account.debits_pending]) {
            return Err(S::OverflowsDebitsPending);
        }
        if sum_overflows(&[amount, credit_account.credits_pending]) {
            return Err(S::OverflowsCreditsPending);
        }
    }
    // The posted checks apply to pending transfers too, as in TigerBeetle.
    if sum_overflows(&[amount, debit_account.debits_posted]) {
        return Err(S::OverflowsDebitsPosted);
    }
    if sum_overflows(&[amount, credit_account.credits_posted]) {
        return Err(S::OverflowsCreditsPosted);
    }
    if sum_overflows(&[
        amount,
        debit_account.debits_pending,
        debit_account.debits_posted,
    ]) {
        return Err(S::OverflowsDebits);
    }
    if sum_overflows(&[
        amount,
        credit_account.credits_pending,
        credit_account.credits_posted,
    ]) {
        return Err(S::OverflowsCredits);
    }
    // TigerBeetle computes `timestamp + timeout` in u63; u128 has room for the exact sum.
    let timeout_nanoseconds = t.timeout as u128 * NANOSECONDS_PER_SECOND as u128;
    if timestamp as u128 + timeout_nanoseconds > TIMESTAMP_MAX as u128 {
        return Err(S::OverflowsTimeout);
    }
    Ok(())
}

/// Steps O24–O25's condition: the exact sum of `parts` is greater than `limit`.
fn exceeds(parts: &[u128], limit: u128) -> bool {
    parts
        .iter()
        .try_fold(0u128, |sum, part| sum.checked_add(*part))
        .is_none_or(|sum| sum > limit)
}

/// Step O26: stores the transfer with the actual amount, moves the balances, closes accounts,
/// registers the pending status and records the balance history.
fn apply_ordinary_transfer(state: &mut LedgerState, t: &Transfer, amount: u128, timestamp: u64) {
    let transfer = Transfer {
        amount,
        timestamp,
        ..*t
    };
    state.transfers.insert(transfer.id, transfer);
    let is_pending = t.flags.contains(TransferFlags::PENDING);
    if is_pending {
        state
            .pending_statuses
            .insert(transfer.id, PendingStatus::Pending);
    }
    if let Some(debit_account) = state.accounts.get_mut(&t.debit_account_id) {
        if is_pending {
            debit_account.debits_pending = debit_account.debits_pending.saturating_add(amount);
        } else {
            debit_account.debits_posted = debit_account.debits_posted.saturating_add(amount);
        }
        if t.flags.contains(TransferFlags::CLOSING_DEBIT) {
            debit_account.flags = debit_account.flags | AccountFlags::CLOSED;
        }
    }
    if let Some(credit_account) = state.accounts.get_mut(&t.credit_account_id) {
        if is_pending {
            credit_account.credits_pending = credit_account.credits_pending.saturating_add(amount);
        } else {
            credit_account.credits_posted = credit_account.credits_posted.saturating_add(amount);
        }
        if t.flags.contains(TransferFlags::CLOSING_CREDIT) {
            credit_account.flags = credit_account.flags | AccountFlags::CLOSED;
        }
    }
    record_history(state, &transfer);
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

/// Steps P1–P25: a post or void of a pending transfer.
fn post_or_void_pending_transfer(
    state: &mut LedgerState,
    orphaned_ids: &BTreeSet<u128>,
    t: &Transfer,
    timestamp: u64,
) -> Result<(), CreateTransferStatus> {
    use CreateTransferStatus as S;
    let is_void = t.flags.contains(TransferFlags::VOID_PENDING_TRANSFER);
    // P1–P10: flag combinations and the pending id.
    check_post_or_void_fields(t)?;
    // P11–P12: the pending transfer. A burnt id names no transfer.
    let pending = match state.transfers.get(&t.pending_id) {
        Some(pending) if !orphaned_ids.contains(&pending.id) => *pending,
        _ => return Err(S::PendingTransferNotFound),
    };
    if !pending.flags.contains(TransferFlags::PENDING) {
        return Err(S::PendingTransferNotPending);
    }
    // P13–P16: optional fields must match the pending transfer.
    if t.debit_account_id != 0 && t.debit_account_id != pending.debit_account_id {
        return Err(S::PendingTransferHasDifferentDebitAccountId);
    }
    if t.credit_account_id != 0 && t.credit_account_id != pending.credit_account_id {
        return Err(S::PendingTransferHasDifferentCreditAccountId);
    }
    if t.ledger != 0 && t.ledger != pending.ledger {
        return Err(S::PendingTransferHasDifferentLedger);
    }
    if t.code != 0 && t.code != pending.code {
        return Err(S::PendingTransferHasDifferentCode);
    }
    // P17–P19: the amount. A void's 0 and a post's AMOUNT_MAX mean the full pending amount;
    // a post's 0 posts nothing.
    let amount = match (is_void, t.amount) {
        (true, 0) => pending.amount,
        (false, AMOUNT_MAX) => pending.amount,
        (_, amount) => amount,
    };
    if amount > pending.amount {
        return Err(S::ExceedsPendingTransferAmount);
    }
    if is_void && amount < pending.amount {
        return Err(S::PendingTransferHasDifferentAmount);
    }
    // P20–P21: the pending transfer must still be unresolved and not overdue.
    check_pending_unresolved(state, &pending, timestamp)?;
    // P22: imported posts/voids must not regress (no postdate or timeout checks here).
    if t.flags.contains(TransferFlags::IMPORTED)
        && imported_timestamp_regresses_transfer(state, timestamp)
    {
        return Err(S::ImportedEventTimestampMustNotRegress);
    }
    // P23–P24: a closed account allows no movement except a void.
    let debit_closed = account_closed(state, pending.debit_account_id);
    let credit_closed = account_closed(state, pending.credit_account_id);
    if debit_closed && !is_void {
        return Err(S::DebitAccountAlreadyClosed);
    }
    if credit_closed && !is_void {
        return Err(S::CreditAccountAlreadyClosed);
    }
    // P25: apply.
    apply_post_or_void(state, t, &pending, amount, timestamp);
    Ok(())
}

/// Steps P1–P10: the post/void path's flag and field checks, in order.
fn check_post_or_void_fields(t: &Transfer) -> Result<(), CreateTransferStatus> {
    use CreateTransferStatus as S;
    let exclusive_with_post_or_void = [
        TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER,
        TransferFlags::PENDING,
        TransferFlags::BALANCING_DEBIT,
        TransferFlags::BALANCING_CREDIT,
        TransferFlags::CLOSING_DEBIT,
        TransferFlags::CLOSING_CREDIT,
    ];
    if exclusive_with_post_or_void
        .iter()
        .any(|flags| t.flags.contains(*flags))
    {
        return Err(S::FlagsAreMutuallyExclusive);
    }
    if t.pending_id == 0 {
        return Err(S::PendingIdMustNotBeZero);
    }
    if t.pending_id == u128::MAX {
        return Err(S::PendingIdMustNotBeIntMax);
    }
    if t.pending_id == t.id {
        return Err(S::PendingIdMustBeDifferent);
    }
    if t.timeout != 0 {
        return Err(S::TimeoutReservedForPendingTransfer);
    }
    Ok(())
}

/// Steps P20–P21: fails when the pending transfer was already resolved, or when its expiry
/// instant is at or before the post/void's own timestamp (even if not yet released).
fn check_pending_unresolved(
    state: &LedgerState,
    pending: &Transfer,
    timestamp: u64,
) -> Result<(), CreateTransferStatus> {
    use CreateTransferStatus as S;
    match state
        .pending_statuses
        .get(&pending.id)
        .copied()
        .unwrap_or(PendingStatus::Pending)
    {
        PendingStatus::Pending => {}
        PendingStatus::Posted => return Err(S::PendingTransferAlreadyPosted),
        PendingStatus::Voided => return Err(S::PendingTransferAlreadyVoided),
        PendingStatus::Expired => return Err(S::PendingTransferExpired),
    }
    if expires_at(pending).is_some_and(|instant| instant <= timestamp as u128) {
        return Err(S::PendingTransferExpired);
    }
    Ok(())
}

/// Returns true when the account exists and is closed.
fn account_closed(state: &LedgerState, account_id: u128) -> bool {
    state
        .accounts
        .get(&account_id)
        .is_some_and(|account| account.flags.contains(AccountFlags::CLOSED))
}

/// Step P25: stores the post/void record (inheriting `pending`'s accounts, ledger, code and
/// unset user data), resolves the pending transfer, releases its full pending amount, posts
/// `amount` when posting, reopens accounts closed by a voided closing transfer, and records
/// the balance history.
fn apply_post_or_void(
    state: &mut LedgerState,
    t: &Transfer,
    pending: &Transfer,
    amount: u128,
    timestamp: u64,
) {
    let is_post = t.flags.contains(TransferFlags::POST_PENDING_TRANSFER);
    let record = Transfer {
        id: t.id,
        debit_account_id: pending.debit_account_id,
        credit_account_id: pending.credit_account_id,
        amount,
        pending_id: t.pending_id,
        user_data_128: if t.user_data_128 != 0 {
            t.user_data_128
        } else {
            pending.user_data_128
        },
        user_data_64: if t.user_data_64 != 0 {
            t.user_data_64
        } else {
            pending.user_data_64
        },
        user_data_32: if t.user_data_32 != 0 {
            t.user_data_32
        } else {
            pending.user_data_32
        },
        timeout: 0,
        ledger: pending.ledger,
        code: pending.code,
        flags: t.flags,
        timestamp,
    };
    state.transfers.insert(record.id, record);
    let resolution = if is_post {
        PendingStatus::Posted
    } else {
        PendingStatus::Voided
    };
    state.pending_statuses.insert(pending.id, resolution);
    if let Some(debit_account) = state.accounts.get_mut(&pending.debit_account_id) {
        debit_account.debits_pending = debit_account.debits_pending.saturating_sub(pending.amount);
        if is_post {
            debit_account.debits_posted = debit_account.debits_posted.saturating_add(amount);
        } else if pending.flags.contains(TransferFlags::CLOSING_DEBIT) {
            debit_account.flags = debit_account.flags.without(AccountFlags::CLOSED);
        }
    }
    if let Some(credit_account) = state.accounts.get_mut(&pending.credit_account_id) {
        credit_account.credits_pending = credit_account
            .credits_pending
            .saturating_sub(pending.amount);
        if is_post {
            credit_account.credits_posted = credit_account.credits_posted.saturating_add(amount);
        } else if pending.flags.contains(TransferFlags::CLOSING_CREDIT) {
            credit_account.flags = credit_account.flags.without(AccountFlags::CLOSED);
        }
    }
    record_history(state, &record);
}

/// Releases one expired pending transfer exactly as TigerBeetle's expiry does: no transfer
/// record and no balance-history entry, the full pending amount released, closing flags
/// undone, and the pending status set to `expired`.
fn apply_expiry(state: &mut LedgerState, pending: &Transfer) {
    state
        .pending_statuses
        .insert(pending.id, PendingStatus::Expired);
    if let Some(debit_account) = state.accounts.get_mut(&pending.debit_account_id) {
        debit_account.debits_pending = debit_account.debits_pending.saturating_sub(pending.amount);
        if pending.flags.contains(TransferFlags::CLOSING_DEBIT) {
            debit_account.flags = debit_account.flags.without(AccountFlags::CLOSED);
        }
    }
    if let Some(credit_account) = state.accounts.get_mut(&pending.credit_account_id) {
        credit_account.credits_pending = credit_account
            .credits_pending
            .saturating_sub(pending.amount);
        if pending.flags.contains(TransferFlags::CLOSING_CREDIT) {
            credit_account.flags = credit_account.flags.without(AccountFlags::CLOSED);
        }
    }
}

/// Returns true when `filter`'s timestamp bounds are valid: each 0 or a valid timestamp, and
/// ordered when both are set.
fn timestamp_bounds_valid(timestamp_min: u64, timestamp_max: u64) -> bool {
    (timestamp_min == 0 || timestamp_valid(timestamp_min))
        && (timestamp_max == 0 || timestamp_valid(timestamp_max))
        && (timestamp_max == 0 || timestamp_min <= timestamp_max)
}

/// Returns true when `timestamp` lies within the inclusive bounds, 0 meaning unbounded.
fn timestamp_within(timestamp: u64, timestamp_min: u64, timestamp_max: u64) -> bool {
    let lower = if timestamp_min == 0 {
        TIMESTAMP_MIN
    } else {
        timestamp_min
    };
    let upper = if timestamp_max == 0 {
        TIMESTAMP_MAX
    } else {
        timestamp_max
    };
    (lower..=upper).contains(&timestamp)
}

/// Returns true when a non-zero filter value is set and differs from the object's value.
fn filtered_out<T: PartialEq + Default>(filter_value: T, object_value: T) -> bool {
    filter_value != T::default() && filter_value != object_value
}

/// TigerBeetle's `AccountFilter` validity: an invalid filter yields an empty result.
fn account_filter_valid(filter: &AccountFilter) -> bool {
    filter.account_id != 0
        && filter.account_id != u128::MAX
        && timestamp_bounds_valid(filter.timestamp_min, filter.timestamp_max)
        && filter.limit != 0
        && filter
            .flags
            .intersects(AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS)
        && !filter.flags.intersects(AccountFilterFlags::PADDING)
        && filter.reserved.iter().all(|byte| *byte == 0)
}

/// TigerBeetle's `QueryFilter` validity: an invalid filter yields an empty result.
fn query_filter_valid(filter: &QueryFilter) -> bool {
    timestamp_bounds_valid(filter.timestamp_min, filter.timestamp_max)
        && filter.limit != 0
        && !filter.flags.intersects(QueryFilterFlags::PADDING)
        && filter.reserved.iter().all(|byte| *byte == 0)
}

/// Sorts objects by timestamp (newest first when `reversed`) and keeps at most `limit`,
/// itself capped at [`QUERY_RESULTS_MAX`].
fn order_and_limit<T>(
    mut objects: Vec<T>,
    timestamp_of: impl Fn(&T) -> u64,
    reversed: bool,
    limit: u32,
) -> Vec<T> {
    objects.sort_by_key(|object| timestamp_of(object));
    if reversed {
        objects.reverse();
    }
    let limit = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .min(QUERY_RESULTS_MAX);
    objects.truncate(limit);
    objects
}

impl ModelLedger {
    /// Expires every pending transfer whose expiry instant is at or before `now`, in order of
    /// expiry instant and then of creation timestamp (see the module documentation).
    pub fn expire_pending(&mut self, now: u64) {
        let mut due: Vec<(u128, u64, Transfer)> = self
            .state
            .pending_statuses
            .iter()
            .filter(|(_, status)| **status == PendingStatus::Pending)
            .filter_map(|(id, _)| self.state.transfers.get(id))
            .filter_map(|pending| Some((expires_at(pending)?, pending.timestamp, *pending)))
            .filter(|(instant, _, _)| *instant <= now as u128)
            .collect();
        due.sort_by_key(|(instant, timestamp, _)| (*instant, *timestamp));
        for (_, _, pending) in due {
            apply_expiry(&mut self.state, &pending);
        }
    }

    /// Returns the stored accounts with these ids, in the order of the ids; ids not found are
    /// omitted and duplicate ids give duplicate results.
    pub fn lookup_accounts(&self, ids: &[u128]) -> Vec<Account> {
        ids.iter()
            .filter_map(|id| self.state.accounts.get(id).copied())
            .collect()
    }

    /// Returns the stored transfers with these ids, in the order of the ids; ids not found
    /// (including burnt ids) are omitted and duplicate ids give duplicate results.
    pub fn lookup_transfers(&self, ids: &[u128]) -> Vec<Transfer> {
        ids.iter()
            .filter_map(|id| self.state.transfers.get(id).copied())
            .collect()
    }

    /// Returns the transfers selected by an account filter (empty for an invalid filter).
    pub fn get_account_transfers(&self, filter: &AccountFilter) -> Vec<Transfer> {
        if !account_filter_valid(filter) {
            return Vec::new();
        }
        let selected: Vec<Transfer> = self
            .state
            .transfers
            .values()
            .filter(|transfer| account_filter_matches(filter, transfer))
            .copied()
            .collect();
        order_and_limit(
            selected,
            |transfer| transfer.timestamp,
            filter.flags.contains(AccountFilterFlags::REVERSED),
            filter.limit,
        )
    }

    /// Returns the queried account's balance right after each transfer selected by the
    /// filter. Empty unless the filter is valid and the account exists with `history`.
    pub fn get_account_balances(&self, filter: &AccountFilter) -> Vec<AccountBalance> {
        let has_history = self
            .state
            .accounts
            .get(&filter.account_id)
            .is_some_and(|account| account.flags.contains(AccountFlags::HISTORY));
        if !has_history {
            return Vec::new();
        }
        self.get_account_transfers(filter)
            .iter()
            .filter_map(|transfer| self.state.history.get(&transfer.timestamp))
            .map(|entry| {
                if entry.debit_account_id == filter.account_id {
                    entry.debit_account_balance
                } else {
                    entry.credit_account_balance
                }
            })
            .collect()
    }

    /// Returns the accounts selected by a query filter, with current balances and flags.
    pub fn query_accounts(&self, filter: &QueryFilter) -> Vec<Account> {
        if !query_filter_valid(filter) {
            return Vec::new();
        }
        let selected: Vec<Account> = self
            .state
            .accounts
            .values()
            .filter(|account| {
                !filtered_out(filter.user_data_128, account.user_data_128)
                    && !filtered_out(filter.user_data_64, account.user_data_64)
                    && !filtered_out(filter.user_data_32, account.user_data_32)
                    && !filtered_out(filter.ledger, account.ledger)
                    && !filtered_out(filter.code, account.code)
                    && timestamp_within(
                        account.timestamp,
                        filter.timestamp_min,
                        filter.timestamp_max,
                    )
            })
            .copied()
            .collect();
        order_and_limit(
            selected,
            |account| account.timestamp,
            filter.flags.contains(QueryFilterFlags::REVERSED),
            filter.limit,
        )
    }

    /// Returns the stored transfer records (post and void records included) selected by a
    /// query filter.
    pub fn query_transfers(&self, filter: &QueryFilter) -> Vec<Transfer> {
        if !query_filter_valid(filter) {
            return Vec::new();
        }
        let selected: Vec<Transfer> = self
            .state
            .transfers
            .values()
            .filter(|transfer| {
                !filtered_out(filter.user_data_128, transfer.user_data_128)
                    && !filtered_out(filter.user_data_64, transfer.user_data_64)
                    && !filtered_out(filter.user_data_32, transfer.user_data_32)
                    && !filtered_out(filter.ledger, transfer.ledger)
                    && !filtered_out(filter.code, transfer.code)
                    && timestamp_within(
                        transfer.timestamp,
                        filter.timestamp_min,
                        filter.timestamp_max,
                    )
            })
            .copied()
            .collect();
        order_and_limit(
            selected,
            |transfer| transfer.timestamp,
            filter.flags.contains(QueryFilterFlags::REVERSED),
            filter.limit,
        )
    }
}

/// Returns true when a transfer is selected by a (valid) account filter: it debits the
/// account and debits are asked for, or credits it and credits are asked for; and every set
/// user-data and code filter matches; and its timestamp is within the bounds.
fn account_filter_matches(filter: &AccountFilter, transfer: &Transfer) -> bool {
    let debit_matches = filter.flags.contains(AccountFilterFlags::DEBITS)
        && transfer.debit_account_id == filter.account_id;
    let credit_matches = filter.flags.contains(AccountFilterFlags::CREDITS)
        && transfer.credit_account_id == filter.account_id;
    (debit_matches || credit_matches)
        && !filtered_out(filter.user_data_128, transfer.user_data_128)
        && !filtered_out(filter.user_data_64, transfer.user_data_64)
        && !filtered_out(filter.user_data_32, transfer.user_data_32)
        && !filtered_out(filter.code, transfer.code)
        && timestamp_within(
            transfer.timestamp,
            filter.timestamp_min,
            filter.timestamp_max,
        )
}

/// A 256-bit accumulator, so that sums of u128 balances over many accounts are exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct WideSum {
    high: u128,
    low: u128,
}

impl WideSum {
    fn add(self, value: u128) -> Self {
        let (low, carried) = self.low.overflowing_add(value);
        Self {
            high: self.high.wrapping_add(u128::from(carried)),
            low,
        }
    }
}

impl ModelLedger {
    /// Checks the ledger's invariants and returns a description of the first violation.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_balance_sums()?;
        self.check_per_account_pending()?;
        self.check_accounts()?;
        self.check_transfers()?;
        self.check_timestamps_unique()
    }

    /// Σ debits_posted = Σ credits_posted, and Σ debits_pending = Σ credits_pending = Σ of
    /// the amounts of the still-unresolved pending transfers.
    fn check_balance_sums(&self) -> Result<(), String> {
        let accounts = self.state.accounts.values();
        let sum = |field: fn(&Account) -> u128| {
            accounts
                .clone()
                .fold(WideSum::default(), |acc, a| acc.add(field(a)))
        };
        let debits_posted = sum(|account| account.debits_posted);
        let credits_posted = sum(|account| account.credits_posted);
        if debits_posted != credits_posted {
            return Err(format!(
                "posted debits {debits_posted:?} != posted credits {credits_posted:?}"
            ));
        }
        let debits_pending = sum(|account| account.debits_pending);
        let credits_pending = sum(|account| account.credits_pending);
        let unresolved = self
            .unresolved_pending()
            .fold(WideSum::default(), |acc, t| acc.add(t.amount));
        if debits_pending != credits_pending || debits_pending != unresolved {
            return Err(format!(
                "pending debits {debits_pending:?}, pending credits {credits_pending:?} and \
                 unresolved pending amounts {unresolved:?} differ"
            ));
        }
        Ok(())
    }

    /// Returns the pending transfers that are neither posted, voided nor expired.
    fn unresolved_pending(&self) -> impl Iterator<Item = &Transfer> {
        self.state
            .pending_statuses
            .iter()
            .filter(|(_, status)| **status == PendingStatus::Pending)
            .filter_map(|(id, _)| self.state.transfers.get(id))
    }

    /// Each account's pending balances equal the unresolved pending amounts it takes part in.
    fn check_per_account_pending(&self) -> Result<(), String> {
        for account in self.state.accounts.values() {
            let debits = self
                .unresolved_pending()
                .filter(|t| t.debit_account_id == account.id)
                .fold(WideSum::default(), |acc, t| acc.add(t.amount));
            let credits = self
                .unresolved_pending()
                .filter(|t| t.credit_account_id == account.id)
                .fold(WideSum::default(), |acc, t| acc.add(t.amount));
            if debits != WideSum::default().add(account.debits_pending)
                || credits != WideSum::default().add(account.credits_pending)
            {
                return Err(format!(
                    "account {} pending balances disagree with its pending transfers",
                    account.id
                ));
            }
        }
        Ok(())
    }

    /// Account-level rules: valid ids and fields, limit flags respected, and at most one
    /// unresolved closing transfer per account (a closed account cannot be closed again), which
    /// must have closed it.
    fn check_accounts(&self) -> Result<(), String> {
        for (id, account) in &self.state.accounts {
            let debits = [account.debits_pending, account.debits_posted];
            let credits = [account.credits_pending, account.credits_posted];
            if *id != account.id || account.id == 0 || account.id == u128::MAX {
                return Err(format!("account {id} has a bad id"));
            }
            if account.reserved != 0 || account.flags.intersects(AccountFlags::PADDING) {
                return Err(format!("account {id} has reserved bits set"));
            }
            if sum_overflows(&debits) || sum_overflows(&credits) {
                return Err(format!("account {id} total debits or credits overflow"));
            }
            if account
                .flags
                .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
                && exceeds(&debits, account.credits_posted)
            {
                return Err(format!("account {id} debits exceed its credits"));
            }
            if account
                .flags
                .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
                && exceeds(&credits, account.debits_posted)
            {
                return Err(format!("account {id} credits exceed its debits"));
            }
            let closing = self
                .unresolved_pending()
                .filter(|t| {
                    (t.flags.contains(TransferFlags::CLOSING_DEBIT) && t.debit_account_id == *id)
                        || (t.flags.contains(TransferFlags::CLOSING_CREDIT)
                            && t.credit_account_id == *id)
                })
                .count();
            if closing > 1 || (closing == 1 && !account.flags.contains(AccountFlags::CLOSED)) {
                return Err(format!(
                    "account {id} closing transfers disagree with its closed flag"
                ));
            }
        }
        Ok(())
    }

    /// Transfer-level rules: accounts exist, pending statuses belong to pending transfers,
    /// every post/void resolves its pending transfer accordingly, burnt ids are unused, and
    /// every transfer has a balance-history entry.
    fn check_transfers(&self) -> Result<(), String> {
        for (id, transfer) in &self.state.transfers {
            let accounts_exist = self.state.accounts.contains_key(&transfer.debit_account_id)
                && self
                    .state
                    .accounts
                    .contains_key(&transfer.credit_account_id);
            if *id != transfer.id
                || !accounts_exist
                || transfer.debit_account_id == transfer.credit_account_id
            {
                return Err(format!("transfer {id} has bad ids"));
            }
            if !self.state.history.contains_key(&transfer.timestamp) {
                return Err(format!("transfer {id} has no balance-history entry"));
            }
            if transfer.flags.contains(TransferFlags::PENDING)
                != self.state.pending_statuses.contains_key(id)
            {
                return Err(format!(
                    "transfer {id} pending status bookkeeping is inconsistent"
                ));
            }
            let expected = if transfer
                .flags
                .contains(TransferFlags::POST_PENDING_TRANSFER)
            {
                Some(PendingStatus::Posted)
            } else if transfer
                .flags
                .contains(TransferFlags::VOID_PENDING_TRANSFER)
            {
                Some(PendingStatus::Voided)
            } else {
                None
            };
            if let Some(expected) = expected {
                let pending = self.state.transfers.get(&transfer.pending_id);
                let resolved =
                    self.state.pending_statuses.get(&transfer.pending_id) == Some(&expected);
                if pending
                    .is_none_or(|p| p.timestamp >= transfer.timestamp || p.amount < transfer.amount)
                    || !resolved
                {
                    return Err(format!(
                        "transfer {id} does not resolve its pending transfer"
                    ));
                }
            }
        }
        if let Some(id) = self
            .orphaned_ids
            .iter()
            .find(|id| self.state.transfers.contains_key(id))
        {
            return Err(format!("burnt id {id} names a stored transfer"));
        }
        if self.state.history.len() != self.state.transfers.len() {
            return Err("balance-history entries without a transfer".to_string());
        }
        Ok(())
    }

    /// Timestamps are unique across all accounts and transfers and valid.
    fn check_timestamps_unique(&self) -> Result<(), String> {
        let timestamps: Vec<u64> = self
            .state
            .accounts
            .values()
            .map(|account| account.timestamp)
            .chain(
                self.state
                    .transfers
                    .values()
                    .map(|transfer| transfer.timestamp),
            )
            .collect();
        let unique: BTreeSet<u64> = timestamps.iter().copied().collect();
        if unique.len() != timestamps.len() {
            return Err("two objects share a timestamp".to_string());
        }
        if unique.first().is_some_and(|first| *first == 0) {
            return Err("an object has timestamp 0".to_string());
        }
        Ok(())
    }

    /// Overwrites an account's balances, bypassing every rule. TigerBeetle's table tests seed
    /// balances this way (their `setup` action); the result usually breaks the sum invariants.
    #[cfg(test)]
    pub(crate) fn set_balances_for_test(&mut self, id: u128, balances: [u128; 4]) {
        if let Some(account) = self.state.accounts.get_mut(&id) {
            account.debits_pending = balances[0];
            account.debits_posted = balances[1];
            account.credits_pending = balances[2];
            account.credits_posted = balances[3];
        }
    }
}

#[cfg(test)]
mod tests;
