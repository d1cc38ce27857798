//! Steps P1–P25: posting and voiding pending transfers, and expiring them: field checks,
//! the exists comparison against the pending transfer, the amount moved, and the effects.

use super::*;

/// The exists comparison for a resubmitted post or void: zero fields mean "inherited from
/// the pending transfer" and match whatever was inherited.
pub(in crate::ledger::state) fn post_or_void_exists_status(
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
pub(in crate::ledger::state) fn inherited_field_differs<T: PartialEq + Default>(
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

/// Steps P1–P10: the post/void path's flag and field checks, in order.
pub(in crate::ledger::state) fn check_post_or_void_fields(
    t: &Transfer,
) -> Result<(), CreateTransferStatus> {
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
pub(in crate::ledger::state) fn check_post_or_void_matches(
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
pub(in crate::ledger::state) fn post_or_void_amount(
    t: &Transfer,
    pending: &Transfer,
) -> Result<u128, CreateTransferStatus> {
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
pub(in crate::ledger::state) fn inherit<T: PartialEq + Default>(value: T, inherited: T) -> T {
    if value != T::default() {
        value
    } else {
        inherited
    }
}

/// The stored record of a post/void: the pending transfer's accounts, ledger and code, and
/// its user data wherever the post/void leaves them 0.
pub(in crate::ledger::state) fn post_or_void_record(
    t: &Transfer,
    pending: &Transfer,
    amount: u128,
    timestamp: u64,
) -> Transfer {
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
    /// Steps P1–P25: a post or void of a pending transfer.
    pub(in crate::ledger::state) fn post_or_void_pending_transfer(
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
    pub(in crate::ledger::state) fn check_pending_unresolved(
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
    pub(in crate::ledger::state) fn apply_post_or_void(
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
    pub(in crate::ledger::state) fn apply_expiry(&mut self, slot: u32) {
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
