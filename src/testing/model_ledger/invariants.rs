//! The reference ledger's consistency checks.

use super::*;

/// A 256-bit accumulator, so that sums of u128 balances over many accounts are exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct WideSum {
    high: u128,
    low: u128,
}

impl WideSum {
    pub(super) fn add(self, value: u128) -> Self {
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
    pub(super) fn check_balance_sums(&self) -> Result<(), String> {
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
    pub(super) fn unresolved_pending(&self) -> impl Iterator<Item = &Transfer> {
        self.state
            .pending_statuses
            .iter()
            .filter(|(_, status)| **status == PendingStatus::Pending)
            .filter_map(|(id, _)| self.state.transfers.get(id))
    }

    /// Each account's pending balances equal the unresolved pending amounts it takes part in.
    pub(super) fn check_per_account_pending(&self) -> Result<(), String> {
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
    pub(super) fn check_accounts(&self) -> Result<(), String> {
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
    pub(super) fn check_transfers(&self) -> Result<(), String> {
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
    pub(super) fn check_timestamps_unique(&self) -> Result<(), String> {
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
