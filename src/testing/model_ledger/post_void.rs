//! The reference rules of posting, voiding and expiring pending transfers: steps P1–P25.

use super::*;

/// The exists comparison for a resubmitted post or void: zero fields mean "inherited from
/// the pending transfer" and match whatever was inherited.
pub(super) fn post_or_void_exists_status(
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
pub(super) fn inherited_field_differs<T: PartialEq + Default>(
    submitted: T,
    existing: T,
    pending: T,
) -> bool {
    if submitted == T::default() {
        existing != pending
    } else {
        submitted != existing
    }
}

/// Steps P1–P25: a post or void of a pending transfer.
pub(super) fn post_or_void_pending_transfer(
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
pub(super) fn check_post_or_void_fields(t: &Transfer) -> Result<(), CreateTransferStatus> {
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
pub(super) fn check_pending_unresolved(
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

/// Step P25: stores the post/void record (inheriting `pending`'s accounts, ledger, code and
/// unset user data), resolves the pending transfer, releases its full pending amount, posts
/// `amount` when posting, reopens accounts closed by a voided closing transfer, and records
/// the balance history.
pub(super) fn apply_post_or_void(
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
pub(super) fn apply_expiry(state: &mut LedgerState, pending: &Transfer) {
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
