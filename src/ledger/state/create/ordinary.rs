//! Steps O1–O26: ordinary (single-phase and pending) transfers: field checks, exists
//! comparison, overflow and balance-limit checks, and the effects of applying one.

use super::*;

/// The exists comparison for a resubmitted ordinary (single-phase or pending) transfer.
pub(in crate::ledger::state) fn ordinary_exists_status(
    t: &Transfer,
    existing: &Transfer,
) -> CreateTransferStatus {
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
pub(in crate::ledger::state) fn check_ordinary_fields(
    t: &Transfer,
) -> Result<(), CreateTransferStatus> {
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
pub(in crate::ledger::state) fn balancing_amount(
    t: &Transfer,
    debit_account: &Account,
    credit_account: &Account,
) -> u128 {
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
pub(in crate::ledger::state) fn check_ordinary_overflows(
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
pub(in crate::ledger::state) fn check_limits(
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

impl LedgerState {
    /// Steps O1–O26: a single-phase or pending transfer.
    pub(in crate::ledger::state) fn create_ordinary_transfer(
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
    pub(in crate::ledger::state) fn check_imported_ordinary(
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

    /// Step O26: stores the transfer with the actual amount, moves the balances, closes
    /// accounts, registers the pending status and expiry, and records the balance history.
    pub(in crate::ledger::state) fn apply_ordinary_transfer(
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
}
