//! The per-object rules of `create_accounts` (A1–A14) and `create_transfers` (T1–T6,
//! O1–O26, P1–P25), step for step as in the reference model and the specification, and the
//! effects of applying, resolving and expiring transfers on the production layout.
//!
//! Every rule validates completely before it changes anything, so a failing event leaves the
//! state untouched, and only successful events need undoing when a chain breaks. Every
//! overwrite goes through `update_account` or `set_status`, which log the old value while a
//! chain is open. Balance arithmetic is checked; the few saturating operations are on paths
//! that the invariants keep from saturating.
//!
//! Complexity: each event costs a constant number of expected-O(1) hash lookups. Imported
//! events add O(log n) binary searches for timestamp uniqueness. Resolving a pending
//! transfer with a timeout adds an O(log p) queue removal.

use super::{
    AccountRecord, HistoryRow, LedgerState, NANOSECONDS_PER_SECOND, PendingStatus, TIMESTAMP_MAX,
    UndoEntry, expires_at, expiry_key,
};
use crate::ledger::{
    AMOUNT_MAX, Account, AccountFlags, CreateAccountStatus, CreateTransferStatus, Transfer,
    TransferFlags,
};

/// Returns true when the exact (unbounded) sum of `values` exceeds `u128::MAX`.
fn sum_overflows(values: &[u128]) -> bool {
    exceeds(values, u128::MAX)
}

/// Steps O24–O25's condition: the exact sum of `parts` is greater than `limit`.
pub(super) fn exceeds(parts: &[u128], limit: u128) -> bool {
    parts
        .iter()
        .try_fold(0u128, |sum, part| sum.checked_add(*part))
        .is_none_or(|sum| sum > limit)
}

/// Step A5: compares a resubmitted account with the stored one in TigerBeetle's order.
/// Flags are compared in full against the current flags (so `closed` counts).
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

/// Steps A6–A12: the field checks of a new account, in order.
fn check_account_fields(a: &Account) -> Result<(), CreateAccountStatus> {
    use CreateAccountStatus as S;
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
    Ok(())
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

/// Step O17: the amount actually moved. A balancing flag clamps the amount so that the
/// account's debits stay within its credits (or its credits within its debits), whether or
/// not the account has a limit flag. The debit clamp applies first. The result may be 0.
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
    let timeout_nanoseconds = u128::from(t.timeout) * u128::from(NANOSECONDS_PER_SECOND);
    if u128::from(timestamp) + timeout_nanoseconds > u128::from(TIMESTAMP_MAX) {
        return Err(S::OverflowsTimeout);
    }
    Ok(())
}

/// Steps O24–O25: balance limits, counting pending amounts pessimistically.
fn check_limits(
    amount: u128,
    debit_account: &Account,
    credit_account: &Account,
) -> Result<(), CreateTransferStatus> {
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
        return Err(CreateTransferStatus::ExceedsCredits);
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
        return Err(CreateTransferStatus::ExceedsDebits);
    }
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

/// Steps P13–P16: the optional fields of a post/void must match the pending transfer.
fn check_post_or_void_matches(
    t: &Transfer,
    pending: &Transfer,
) -> Result<(), CreateTransferStatus> {
    use CreateTransferStatus as S;
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
    Ok(())
}

/// Steps P17–P19: the amount a post/void moves. A void's 0 and a post's AMOUNT_MAX mean the
/// full pending amount; a post's 0 posts nothing.
fn post_or_void_amount(t: &Transfer, pending: &Transfer) -> Result<u128, CreateTransferStatus> {
    let is_void = t.flags.contains(TransferFlags::VOID_PENDING_TRANSFER);
    let amount = match (is_void, t.amount) {
        (true, 0) => pending.amount,
        (false, AMOUNT_MAX) => pending.amount,
        (_, amount) => amount,
    };
    if amount > pending.amount {
        return Err(CreateTransferStatus::ExceedsPendingTransferAmount);
    }
    if is_void && amount < pending.amount {
        return Err(CreateTransferStatus::PendingTransferHasDifferentAmount);
    }
    Ok(amount)
}

/// A post/void's user-data field: its own value, or the pending transfer's when it is 0.
fn inherit<T: PartialEq + Default>(value: T, inherited: T) -> T {
    if value != T::default() {
        value
    } else {
        inherited
    }
}

/// The stored record of a post/void: the pending transfer's accounts, ledger and code, and
/// its user data wherever the post/void leaves them 0.
fn post_or_void_record(t: &Transfer, pending: &Transfer, amount: u128, timestamp: u64) -> Transfer {
    Transfer {
        id: t.id,
        debit_account_id: pending.debit_account_id,
        credit_account_id: pending.credit_account_id,
        amount,
        pending_id: t.pending_id,
        user_data_128: inherit(t.user_data_128, pending.user_data_128),
        user_data_64: inherit(t.user_data_64, pending.user_data_64),
        user_data_32: inherit(t.user_data_32, pending.user_data_32),
        timeout: 0,
        ledger: pending.ledger,
        code: pending.code,
        flags: t.flags,
        timestamp,
    }
}

impl LedgerState {
    /// Steps A1–A14: validates and inserts one account with event timestamp `timestamp`.
    pub(super) fn create_account(
        &mut self,
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
        if let Some(existing) = self.account(a.id) {
            return Err(account_exists_status(a, existing));
        }
        // A6–A12: field checks.
        check_account_fields(a)?;
        // A13: an imported account must come after every account and share no transfer's
        // timestamp; deliberately after the idempotency checks, so imports can be resubmitted.
        if a.flags.contains(AccountFlags::IMPORTED)
            && self.imported_timestamp_regresses_account(timestamp)
        {
            return Err(S::ImportedEventTimestampMustNotRegress);
        }
        // A14: insert with zero balances and the flags exactly as submitted.
        let index = u32::try_from(self.accounts.len()).expect("account store exceeds 2^32 - 1");
        self.accounts.push(AccountRecord(Account {
            reserved: 0,
            timestamp,
            ..*a
        }));
        self.account_index.insert(a.id, index);
        self.links.add_account();
        Ok(())
    }

    /// Step A13's condition: `timestamp` is at or before the newest account, or equals a
    /// transfer's timestamp. Both stores are in timestamp order.
    fn imported_timestamp_regresses_account(&self, timestamp: u64) -> bool {
        self.accounts
            .last()
            .is_some_and(|newest| timestamp <= newest.timestamp)
            || self.transfer_timestamp_exists(timestamp)
    }

    /// Steps O14a and P22's condition: `timestamp` is at or before the newest transfer (post
    /// and void records included), or equals an account's timestamp.
    fn imported_timestamp_regresses_transfer(&self, timestamp: u64) -> bool {
        self.transfers
            .last()
            .is_some_and(|newest| timestamp <= newest.timestamp)
            || self.account_timestamp_exists(timestamp)
    }

    /// Returns true when a stored transfer has exactly this timestamp (binary search).
    fn transfer_timestamp_exists(&self, timestamp: u64) -> bool {
        let position = self
            .transfers
            .partition_point(|transfer| transfer.timestamp < timestamp);
        self.transfers
            .get(position)
            .is_some_and(|transfer| transfer.timestamp == timestamp)
    }

    /// Returns true when a stored account has exactly this timestamp (binary search).
    fn account_timestamp_exists(&self, timestamp: u64) -> bool {
        let position = self
            .accounts
            .partition_point(|account| account.timestamp < timestamp);
        self.accounts
            .get(position)
            .is_some_and(|account| account.timestamp == timestamp)
    }

    /// Steps T1–T6: the checks common to every transfer, then the ordinary or post/void path.
    ///
    /// `sides` are the positions of the event's debit and credit accounts, looked up by the
    /// caller for the whole batch.
    pub(super) fn create_transfer(
        &mut self,
        t: &Transfer,
        sides: [Option<u32>; 2],
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
        if let Some((_, existing)) = self.transfer_by_id(t.id) {
            return Err(self.transfer_exists_status(t, existing));
        }
        // T5: an id burnt by an earlier transient failure can never be used again.
        if self.failed_ids.contains(t.id) {
            return Err(S::IdAlreadyFailed);
        }
        // T6: choose the path.
        if t.flags
            .intersects(TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER)
        {
            self.post_or_void_pending_transfer(t, timestamp)
        } else {
            self.create_ordinary_transfer(t, sides, timestamp)
        }
    }

    /// Step T4: compares a resubmitted transfer with the stored one in TigerBeetle's order.
    fn transfer_exists_status(&self, t: &Transfer, existing: &Transfer) -> CreateTransferStatus {
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
            // A stored post/void always references a stored pending transfer.
            let Some((_, pending)) = self.transfer_by_id(t.pending_id) else {
                return S::ExistsWithDifferentPendingId;
            };
            post_or_void_exists_status(t, existing, pending)
        } else {
            ordinary_exists_status(t, existing)
        }
    }

    /// Steps O1–O26: a single-phase or pending transfer.
    fn create_ordinary_transfer(
        &mut self,
        t: &Transfer,
        [debit, credit]: [Option<u32>; 2],
        timestamp: u64,
    ) -> Result<(), CreateTransferStatus> {
        use CreateTransferStatus as S;
        // O1–O13: field checks, account lookups and ledgers.
        check_ordinary_fields(t)?;
        let account_at = |index: Option<u32>| {
            let index = index?;
            Some((index, &self.accounts.get(index as usize)?.0))
        };
        let (debit_index, debit_account) = account_at(debit).ok_or(S::DebitAccountNotFound)?;
        let (credit_index, credit_account) = account_at(credit).ok_or(S::CreditAccountNotFound)?;
        if debit_account.ledger != credit_account.ledger {
            return Err(S::AccountsMustHaveTheSameLedger);
        }
        if t.ledger != debit_account.ledger {
            return Err(S::TransferMustHaveTheSameLedgerAsAccounts);
        }
        // O14: imported transfers must not regress and must postdate both accounts.
        if t.flags.contains(TransferFlags::IMPORTED) {
            self.check_imported_ordinary(t, timestamp, debit_account, credit_account)?;
        }
        // O15–O16: closed accounts accept no new transfers.
        if debit_account.flags.contains(AccountFlags::CLOSED) {
            return Err(S::DebitAccountAlreadyClosed);
        }
        if credit_account.flags.contains(AccountFlags::CLOSED) {
            return Err(S::CreditAccountAlreadyClosed);
        }
        // O17–O25: the balancing clamp, exact overflow checks, balance limits.
        let amount = balancing_amount(t, debit_account, credit_account);
        check_ordinary_overflows(t, amount, debit_account, credit_account, timestamp)?;
        check_limits(amount, debit_account, credit_account)?;
        // O26: apply.
        self.apply_ordinary_transfer(t, amount, timestamp, [debit_index, credit_index]);
        Ok(())
    }

    /// Step O14: the imported-transfer timestamp and timeout checks, in order.
    fn check_imported_ordinary(
        &self,
        t: &Transfer,
        timestamp: u64,
        debit_account: &Account,
        credit_account: &Account,
    ) -> Result<(), CreateTransferStatus> {
        use CreateTransferStatus as S;
        if self.imported_timestamp_regresses_transfer(timestamp) {
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
        Ok(())
    }

    /// Returns the slot the next transfer record will take.
    fn next_transfer_slot(&self) -> u32 {
        u32::try_from(self.transfers.len()).expect("transfer store exceeds 2^32 - 1")
    }

    /// Step O26: stores the transfer with the actual amount, moves the balances, closes
    /// accounts, registers the pending status and expiry, and records the balance history.
    fn apply_ordinary_transfer(
        &mut self,
        t: &Transfer,
        amount: u128,
        timestamp: u64,
        [debit_index, credit_index]: [u32; 2],
    ) {
        let slot = self.next_transfer_slot();
        let transfer = Transfer {
            amount,
            timestamp,
            ..*t
        };
        let is_pending = t.flags.contains(TransferFlags::PENDING);
        self.transfers.push(transfer);
        self.pending_statuses.push(if is_pending {
            PendingStatus::Pending
        } else {
            PendingStatus::None
        });
        self.transfer_index.insert(transfer.id, slot);
        if let Some(key) = expiry_key(slot, &transfer) {
            self.expiry_queue.insert(key);
        }
        let closing_debit = t.flags.contains(TransferFlags::CLOSING_DEBIT);
        self.update_account(debit_index, |account| {
            if is_pending {
                account.debits_pending = account.debits_pending.saturating_add(amount);
            } else {
                account.debits_posted = account.debits_posted.saturating_add(amount);
            }
            if closing_debit {
                account.flags = account.flags | AccountFlags::CLOSED;
            }
        });
        let closing_credit = t.flags.contains(TransferFlags::CLOSING_CREDIT);
        self.update_account(credit_index, |account| {
            if is_pending {
                account.credits_pending = account.credits_pending.saturating_add(amount);
            } else {
                account.credits_posted = account.credits_posted.saturating_add(amount);
            }
            if closing_credit {
                account.flags = account.flags | AccountFlags::CLOSED;
            }
        });
        self.link_transfer(slot, [debit_index, credit_index]);
    }

    /// Changes one account, logging its old value first while a chain is open.
    #[inline]
    fn update_account(&mut self, index: u32, change: impl FnOnce(&mut Account)) {
        let Some(account) = self.accounts.get_mut(index as usize) else {
            return;
        };
        if self.undo.active {
            self.undo.entries.push(UndoEntry::Account {
                index,
                before: account.0,
            });
        }
        change(account);
    }

    /// Sets the resolution of the pending transfer at `slot`, logging the old one while a
    /// chain is open, and takes it off the expiry queue.
    fn set_status(&mut self, slot: u32, pending: &Transfer, status: PendingStatus) {
        if let Some(current) = self.pending_statuses.get_mut(slot as usize) {
            if self.undo.active {
                self.undo.entries.push(UndoEntry::Status {
                    slot,
                    before: *current,
                });
            }
            *current = status;
        }
        if let Some(key) = expiry_key(slot, pending) {
            self.expiry_queue.remove(&key);
        }
    }

    /// Links the new transfer at `slot` to both accounts, and records the balance history
    /// of each side whose account keeps history. Called after both balances moved.
    fn link_transfer(&mut self, slot: u32, account_indexes: [u32; 2]) {
        self.links.link(account_indexes);
        for index in account_indexes {
            let Some(account) = self.accounts.get(index as usize) else {
                continue;
            };
            if account.flags.contains(AccountFlags::HISTORY) {
                let row = HistoryRow {
                    slot,
                    account: index,
                    balances: [
                        account.debits_pending,
                        account.debits_posted,
                        account.credits_pending,
                        account.credits_posted,
                    ],
                };
                self.history.push(row);
            }
        }
    }

    /// Steps P1–P25: a post or void of a pending transfer.
    fn post_or_void_pending_transfer(
        &mut self,
        t: &Transfer,
        timestamp: u64,
    ) -> Result<(), CreateTransferStatus> {
        use CreateTransferStatus as S;
        let is_void = t.flags.contains(TransferFlags::VOID_PENDING_TRANSFER);
        // P1–P10: flag combinations and the pending id.
        check_post_or_void_fields(t)?;
        // P11–P12: the pending transfer. A burnt id names no transfer.
        let (pending_slot, pending) = match self.transfer_by_id(t.pending_id) {
            Some((slot, pending)) if !self.failed_ids.contains(pending.id) => (slot, *pending),
            _ => return Err(S::PendingTransferNotFound),
        };
        if !pending.flags.contains(TransferFlags::PENDING) {
            return Err(S::PendingTransferNotPending);
        }
        // P13–P19: optional fields and the amount.
        check_post_or_void_matches(t, &pending)?;
        let amount = post_or_void_amount(t, &pending)?;
        // P20–P21: the pending transfer must still be unresolved and not overdue.
        self.check_pending_unresolved(pending_slot, &pending, timestamp)?;
        // P22: imported posts/voids must not regress (no postdate or timeout checks here).
        if t.flags.contains(TransferFlags::IMPORTED)
            && self.imported_timestamp_regresses_transfer(timestamp)
        {
            return Err(S::ImportedEventTimestampMustNotRegress);
        }
        // P23–P24: a closed account allows no movement except a void.
        let debit = self.account_entry(pending.debit_account_id);
        let credit = self.account_entry(pending.credit_account_id);
        let closed = |entry: Option<(u32, &Account)>| {
            entry.is_some_and(|(_, account)| account.flags.contains(AccountFlags::CLOSED))
        };
        if closed(debit) && !is_void {
            return Err(S::DebitAccountAlreadyClosed);
        }
        if closed(credit) && !is_void {
            return Err(S::CreditAccountAlreadyClosed);
        }
        let debit = debit.map(|(index, _)| index);
        let credit = credit.map(|(index, _)| index);
        // P25: apply. A stored pending transfer's accounts always exist.
        if let (Some(debit_index), Some(credit_index)) = (debit, credit) {
            let record = post_or_void_record(t, &pending, amount, timestamp);
            self.apply_post_or_void(&record, pending_slot, &pending, [debit_index, credit_index]);
        }
        Ok(())
    }

    /// Steps P20–P21: fails when the pending transfer was already resolved, or when its
    /// expiry instant is at or before the post/void's own timestamp (even if not yet
    /// released).
    fn check_pending_unresolved(
        &self,
        pending_slot: u32,
        pending: &Transfer,
        timestamp: u64,
    ) -> Result<(), CreateTransferStatus> {
        use CreateTransferStatus as S;
        match self.pending_statuses.get(pending_slot as usize) {
            Some(PendingStatus::Posted) => return Err(S::PendingTransferAlreadyPosted),
            Some(PendingStatus::Voided) => return Err(S::PendingTransferAlreadyVoided),
            Some(PendingStatus::Expired) => return Err(S::PendingTransferExpired),
            Some(PendingStatus::Pending | PendingStatus::None) | None => {}
        }
        if expires_at(pending).is_some_and(|instant| instant <= u128::from(timestamp)) {
            return Err(S::PendingTransferExpired);
        }
        Ok(())
    }

    /// Step P25: stores the post/void record, resolves the pending transfer, releases its
    /// full pending amount, posts the record's amount when posting, reopens accounts closed
    /// by a voided closing transfer, and records the balance history.
    fn apply_post_or_void(
        &mut self,
        record: &Transfer,
        pending_slot: u32,
        pending: &Transfer,
        [debit_index, credit_index]: [u32; 2],
    ) {
        let is_post = record.flags.contains(TransferFlags::POST_PENDING_TRANSFER);
        let slot = self.next_transfer_slot();
        self.transfers.push(*record);
        self.pending_statuses.push(PendingStatus::None);
        self.transfer_index.insert(record.id, slot);
        let resolution = if is_post {
            PendingStatus::Posted
        } else {
            PendingStatus::Voided
        };
        self.set_status(pending_slot, pending, resolution);
        let (released, posted) = (pending.amount, record.amount);
        let reopen_debit = !is_post && pending.flags.contains(TransferFlags::CLOSING_DEBIT);
        self.update_account(debit_index, |account| {
            account.debits_pending = account.debits_pending.saturating_sub(released);
            if is_post {
                account.debits_posted = account.debits_posted.saturating_add(posted);
            } else if reopen_debit {
                account.flags = account.flags.without(AccountFlags::CLOSED);
            }
        });
        let reopen_credit = !is_post && pending.flags.contains(TransferFlags::CLOSING_CREDIT);
        self.update_account(credit_index, |account| {
            account.credits_pending = account.credits_pending.saturating_sub(released);
            if is_post {
                account.credits_posted = account.credits_posted.saturating_add(posted);
            } else if reopen_credit {
                account.flags = account.flags.without(AccountFlags::CLOSED);
            }
        });
        self.link_transfer(slot, [debit_index, credit_index]);
    }

    /// Releases one expired pending transfer: no transfer record and no balance-history row,
    /// the full pending amount released, closing flags undone, the status set to `expired`.
    /// The caller has already taken it off the expiry queue.
    pub(super) fn apply_expiry(&mut self, slot: u32) {
        let Some(pending) = self.transfers.get(slot as usize).copied() else {
            return;
        };
        self.set_status(slot, &pending, PendingStatus::Expired);
        let released = pending.amount;
        for (account_id, is_debit) in [
            (pending.debit_account_id, true),
            (pending.credit_account_id, false),
        ] {
            let Some(index) = self.account_index.get(account_id) else {
                continue;
            };
            let reopen = pending.flags.contains(if is_debit {
                TransferFlags::CLOSING_DEBIT
            } else {
                TransferFlags::CLOSING_CREDIT
            });
            self.update_account(index, |account| {
                if is_debit {
                    account.debits_pending = account.debits_pending.saturating_sub(released);
                } else {
                    account.credits_pending = account.credits_pending.saturating_sub(released);
                }
                if reopen {
                    account.flags = account.flags.without(AccountFlags::CLOSED);
                }
            });
        }
    }
}
