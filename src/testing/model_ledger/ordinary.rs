//! The reference rules of ordinary (single-phase and pending) transfers: steps O1–O26.

use super::*;

/// The exists comparison for a resubmitted ordinary (single-phase or pending) transfer.
pub(super) fn ordinary_exists_status(t: &Transfer, existing: &Transfer) -> CreateTransferStatus {
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
pub(super) fn create_ordinary_transfer(
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
pub(super) fn check_ordinary_fields(t: &Transfer) -> Result<(), CreateTransferStatus> {
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
pub(super) fn balancing_amount(
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
pub(super) fn check_ordinary_overflows(
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
pub(super) fn exceeds(parts: &[u128], limit: u128) -> bool {
    parts
        .iter()
        .try_fold(0u128, |sum, part| sum.checked_add(*part))
        .is_none_or(|sum| sum > limit)
}

/// Step O26: stores the transfer with the actual amount, moves the balances, closes accounts,
/// registers the pending status and records the balance history.
pub(super) fn apply_ordinary_transfer(
    state: &mut LedgerState,
    t: &Transfer,
    amount: u128,
    timestamp: u64,
) {
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
