//! [`LedgerState::check_invariants`]: the reference model's ledger invariants plus the
//! consistency of every derived index with the stores, in O(n) time and O(accounts) extra
//! memory (plus the hash lookups per object).
//!
//! `restore` relies on these checks to reject images that decode but do not describe a
//! reachable ledger. Each check therefore also covers what later operations assume without
//! checking: sorted stores, in-range slots and positions, and at most one resolving record
//! per pending transfer.

use std::ops::Range;

use super::create::exceeds;
use super::{LedgerState, PendingStatus, TIMESTAMP_MAX, expires_at, expiry_key, timestamp_valid};
use crate::ledger::{Account, AccountFlags, Transfer, TransferFlags};

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

    fn of(value: u128) -> Self {
        Self::default().add(value)
    }

    /// The sum of two sums.
    fn merge(self, other: Self) -> Self {
        let with_low = self.add(other.low);
        Self {
            high: with_low.high.wrapping_add(other.high),
            low: with_low.low,
        }
    }
}

/// What checking a range of the transfer store found: per-account pending totals, and
/// the slot each resolving transfer resolves.
struct TransferRangeCheck {
    totals: Vec<PendingTotals>,
    resolved_slots: Vec<u32>,
}

/// What the unresolved pending transfers add up to for one account.
#[derive(Clone, Copy, Debug, Default)]
struct PendingTotals {
    debits: WideSum,
    credits: WideSum,
    closing: u32,
}

impl LedgerState {
    /// Checks the ledger's invariants and returns a description of the first violation.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_invariants_with(true)
    }

    /// Checks the invariants; `check_id_indexes` adds the checks of the derived indexes: that
    /// the id indexes point at every object's own position, and that the account transfer
    /// lists and the query indexes agree with the stores. `restore` skips those, because it
    /// has just built the indexes from the stores.
    pub(super) fn check_invariants_with(&self, check_id_indexes: bool) -> Result<(), String> {
        if self.undo.active || !self.undo.entries.is_empty() {
            return Err("a linked chain is still open".to_string());
        }
        self.check_accounts(check_id_indexes)?;
        self.check_timestamps_disjoint()?;
        let totals = self.check_transfers(check_id_indexes)?;
        self.check_balances(&totals)?;
        if check_id_indexes {
            // Restore builds the lists from the transfers it just resolved, by construction.
            self.check_account_transfers()?;
        }
        self.check_history()?;
        self.check_expiry_queue()?;
        self.check_failed_ids()?;
        if check_id_indexes {
            // Restore builds them from the stores by construction, like the id indexes.
            self.check_query_indexes()?;
        }
        Ok(())
    }

    /// The query indexes cover every object with its values.
    fn check_query_indexes(&self) -> Result<(), String> {
        let transfers = &self.transfers;
        self.transfer_query.check(transfers.len(), |p| {
            super::transfer_query_values(transfers.get(p))
        })?;
        let accounts = &self.accounts;
        self.account_query.check(accounts.len(), |p| {
            super::account_query_values(accounts.get(p))
        })
    }

    /// Account records: valid ids found at their own position by the index, valid fields,
    /// strictly increasing valid timestamps, no overflowing totals, limits respected.
    fn check_accounts(&self, check_id_indexes: bool) -> Result<(), String> {
        if self.account_index.len() != self.accounts.len()
            || self.links.accounts_len() != self.accounts.len()
        {
            return Err("account index sizes disagree with the account store".to_string());
        }
        let mut previous_timestamp = 0;
        for (position, account) in self.accounts.iter().enumerate() {
            let id = account.id;
            if id == 0 || id == u128::MAX {
                return Err(format!("account {id} has a bad id"));
            }
            if check_id_indexes
                && self.account_index.get(id).map(|index| index as usize) != Some(position)
            {
                return Err(format!("account {id} is not indexed at its position"));
            }
            check_account_fields(account)?;
            if !timestamp_valid(account.timestamp) || account.timestamp <= previous_timestamp {
                return Err(format!("account {id} timestamp is out of order"));
            }
            previous_timestamp = account.timestamp;
        }
        Ok(())
    }

    /// No account shares a timestamp with a transfer (both stores are sorted, so a merge
    /// walk finds any tie).
    fn check_timestamps_disjoint(&self) -> Result<(), String> {
        let mut accounts = self.accounts.iter().map(|a| a.timestamp).peekable();
        for transfer in self.transfers.iter() {
            while accounts.next_if(|ts| *ts < transfer.timestamp).is_some() {}
            if accounts.peek() == Some(&transfer.timestamp) {
                return Err(format!(
                    "transfer {} shares a timestamp with an account",
                    transfer.id
                ));
            }
        }
        Ok(())
    }

    /// Transfer records: indexed at their slot, strictly increasing timestamps, existing and
    /// different accounts on the same ledger, a status that matches the flags, and a valid
    /// link from every post/void to the pending transfer it resolved. Returns each account's
    /// unresolved pending totals.
    fn check_transfers(&self, check_id_indexes: bool) -> Result<Vec<PendingTotals>, String> {
        if self.transfer_index.len() != self.transfers.len()
            || self.pending_statuses.len() != self.transfers.len()
        {
            return Err("transfer index sizes disagree with the transfer store".to_string());
        }
        let len = self.transfers.len();
        // Two halves on two threads for a large store (restores check every transfer);
        // the halves are merged in order, so the result and the first violation reported
        // are those of one pass.
        let (first, second) = if len >= self.parallel_check_min.max(2) {
            let middle = len / 2;
            std::thread::scope(|scope| {
                let worker = std::thread::Builder::new()
                    .name("syncpay-check".into())
                    .spawn_scoped(scope, || {
                        self.check_transfer_range(middle..len, check_id_indexes)
                    });
                let first = self.check_transfer_range(0..middle, check_id_indexes);
                let second = match worker {
                    Ok(handle) => handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    Err(_) => self.check_transfer_range(middle..len, check_id_indexes),
                };
                (first, Some(second))
            })
        } else {
            (self.check_transfer_range(0..len, check_id_indexes), None)
        };
        let mut merged = first?;
        if let Some(second) = second {
            let second = second?;
            for (total, other) in merged.totals.iter_mut().zip(second.totals) {
                total.debits = total.debits.merge(other.debits);
                total.credits = total.credits.merge(other.credits);
                total.closing += other.closing;
            }
            merged.resolved_slots.extend(second.resolved_slots);
        }
        let mut resolutions = vec![0u8; len];
        for slot in merged.resolved_slots {
            if let Some(count) = resolutions.get_mut(slot as usize) {
                *count = count.saturating_add(1);
            }
        }
        self.check_resolution_counts(&resolutions)?;
        Ok(merged.totals)
    }

    /// The per-transfer checks of `check_transfers` over the slots `range`, including the
    /// timestamp order with the transfer before the range.
    fn check_transfer_range(
        &self,
        range: Range<usize>,
        check_id_indexes: bool,
    ) -> Result<TransferRangeCheck, String> {
        let mut totals = vec![PendingTotals::default(); self.accounts.len()];
        let mut resolved_slots = Vec::new();
        let mut previous_timestamp = range
            .start
            .checked_sub(1)
            .and_then(|slot| self.transfers.get(slot))
            .map_or(0, |transfer| transfer.timestamp);
        for slot in range {
            let Some(transfer) = self.transfers.get(slot) else {
                return Err(format!("transfer slot {slot} is missing"));
            };
            let id = transfer.id;
            if check_id_indexes && self.transfer_index.get(id).map(|s| s as usize) != Some(slot) {
                return Err(format!("transfer {id} is not indexed at its slot"));
            }
            if !timestamp_valid(transfer.timestamp) || transfer.timestamp <= previous_timestamp {
                return Err(format!("transfer {id} timestamp is out of order"));
            }
            previous_timestamp = transfer.timestamp;
            let [debit, credit] = self.check_transfer_fields(transfer)?;
            let status = self.pending_statuses.get(slot).copied();
            let is_pending = transfer.flags.contains(TransferFlags::PENDING);
            if is_pending == (status == Some(PendingStatus::None)) || status.is_none() {
                return Err(format!("transfer {id} status disagrees with its flags"));
            }
            if status == Some(PendingStatus::Pending) {
                add_pending(&mut totals, transfer, debit, credit);
            }
            if transfer.pending_id != 0 {
                resolved_slots.push(self.check_resolution(slot, transfer)?);
            }
        }
        Ok(TransferRangeCheck {
            totals,
            resolved_slots,
        })
    }

    fn check_transfer_fields(&self, transfer: &Transfer) -> Result<[u32; 2], String> {
        let id = transfer.id;
        if id == 0 || id == u128::MAX || transfer.flags.intersects(TransferFlags::PADDING) {
            return Err(format!("transfer {id} has a bad id or flags"));
        }
        let debit = self.account_index.get(transfer.debit_account_id);
        let credit = self.account_index.get(transfer.credit_account_id);
        let (Some(debit), Some(credit)) = (debit, credit) else {
            return Err(format!("transfer {id} references a missing account"));
        };
        let ledgers = [debit, credit].map(|index| {
            self.accounts
                .get(index as usize)
                .map(|account| account.ledger)
        });
        if debit == credit || ledgers != [Some(transfer.ledger); 2] {
            return Err(format!("transfer {id} has bad accounts or ledger"));
        }
        let is_resolution = transfer.flags.intersects(
            TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER,
        );
        if is_resolution != (transfer.pending_id != 0) {
            return Err(format!("transfer {id} pending_id disagrees with its flags"));
        }
        let timeout_fits =
            expires_at(transfer).is_none_or(|instant| instant <= u128::from(TIMESTAMP_MAX));
        if transfer.timeout != 0
            && (!transfer.flags.contains(TransferFlags::PENDING) || !timeout_fits)
        {
            return Err(format!("transfer {id} has a bad timeout"));
        }
        Ok([debit, credit])
    }

    /// A post/void resolves an earlier pending transfer between the same accounts, for at
    /// most its amount, and that transfer's status records the resolution. Returns the
    /// pending transfer's slot.
    fn check_resolution(&self, slot: usize, record: &Transfer) -> Result<u32, String> {
        let id = record.id;
        let Some((pending_slot, pending)) = self.transfer_by_id(record.pending_id) else {
            return Err(format!("transfer {id} resolves a missing transfer"));
        };
        let expected = if record.flags.contains(TransferFlags::POST_PENDING_TRANSFER) {
            PendingStatus::Posted
        } else {
            PendingStatus::Voided
        };
        let status = self.pending_statuses.get(pending_slot as usize).copied();
        if pending_slot as usize >= slot
            || !pending.flags.contains(TransferFlags::PENDING)
            || pending.amount < record.amount
            || status != Some(expected)
            || pending.debit_account_id != record.debit_account_id
            || pending.credit_account_id != record.credit_account_id
        {
            return Err(format!(
                "transfer {id} does not resolve its pending transfer"
            ));
        }
        Ok(pending_slot)
    }

    /// A posted or voided pending transfer has exactly one resolving record, any other has
    /// none.
    fn check_resolution_counts(&self, resolutions: &[u8]) -> Result<(), String> {
        for (slot, status) in self.pending_statuses.iter().enumerate() {
            let resolved = matches!(status, PendingStatus::Posted | PendingStatus::Voided);
            if resolutions.get(slot).copied() != Some(u8::from(resolved)) {
                return Err(format!(
                    "pending transfer at slot {slot} has bad resolutions"
                ));
            }
        }
        Ok(())
    }

    /// Posted sums balance, pending balances equal the unresolved pending amounts per
    /// account, and each account has at most one unresolved closing transfer, which must have
    /// closed it.
    fn check_balances(&self, totals: &[PendingTotals]) -> Result<(), String> {
        let mut debits_posted = WideSum::default();
        let mut credits_posted = WideSum::default();
        for (account, total) in self.accounts.iter().zip(totals) {
            debits_posted = debits_posted.add(account.debits_posted);
            credits_posted = credits_posted.add(account.credits_posted);
            if total.debits != WideSum::of(account.debits_pending)
                || total.credits != WideSum::of(account.credits_pending)
            {
                return Err(format!(
                    "account {} pending balances disagree with its pending transfers",
                    account.id
                ));
            }
            let closed = account.flags.contains(AccountFlags::CLOSED);
            if total.closing > 1 || (total.closing == 1 && !closed) {
                return Err(format!(
                    "account {} closing transfers disagree with its closed flag",
                    account.id
                ));
            }
        }
        if debits_posted != credits_posted {
            return Err("posted debits and credits differ".to_string());
        }
        Ok(())
    }

    /// Every transfer is linked to both of its accounts, and to nothing else.
    fn check_account_transfers(&self) -> Result<(), String> {
        let position = |id: u128| self.account_index.get(id).unwrap_or(u32::MAX);
        self.links.check(
            self.transfers
                .iter()
                .map(|t| [position(t.debit_account_id), position(t.credit_account_id)]),
        )
    }

    /// History rows are in strictly increasing (slot, side) order, belong to accounts with
    /// `history` that take part in the transfer, and every such side has its row.
    fn check_history(&self) -> Result<(), String> {
        let mut previous: Option<(u32, u32)> = None;
        for row in self.history.iter() {
            let transfer = self.transfers.get(row.slot as usize);
            let account = self.accounts.get(row.account as usize);
            let (Some(transfer), Some(account)) = (transfer, account) else {
                return Err(format!("history row at slot {} is dangling", row.slot));
            };
            let side = if transfer.debit_account_id == account.id {
                0
            } else if transfer.credit_account_id == account.id {
                1
            } else {
                return Err(format!("history row at slot {} names a stranger", row.slot));
            };
            if !account.flags.contains(AccountFlags::HISTORY)
                || previous.is_some_and(|key| key >= (row.slot, side))
            {
                return Err(format!("history row at slot {} is misplaced", row.slot));
            }
            previous = Some((row.slot, side));
        }
        let expected: usize = self
            .transfers
            .iter()
            .map(|t| {
                [t.debit_account_id, t.credit_account_id]
                    .iter()
                    .filter(|id| self.account(**id).is_some_and(keeps_history))
                    .count()
            })
            .sum();
        if expected != self.history.len() {
            return Err("history rows are missing".to_string());
        }
        Ok(())
    }

    /// The expiry queue holds exactly the unresolved pending transfers with a timeout, and
    /// only transfers with a timeout can have expired.
    fn check_expiry_queue(&self) -> Result<(), String> {
        let mut due = 0usize;
        for (slot, (transfer, status)) in self
            .transfers
            .iter()
            .zip(self.pending_statuses.iter())
            .enumerate()
        {
            if *status == PendingStatus::Expired && expiry_key(slot as u32, transfer).is_none() {
                return Err(format!(
                    "transfer {} expired without a timeout",
                    transfer.id
                ));
            }
            if *status != PendingStatus::Pending {
                continue;
            }
            if let Some(key) = expiry_key(slot as u32, transfer) {
                if !self.expiry_queue.contains(&key) {
                    return Err(format!(
                        "transfer {} is missing from the queue",
                        transfer.id
                    ));
                }
                due += 1;
            }
        }
        if due != self.expiry_queue.len() {
            return Err("the expiry queue holds resolved transfers".to_string());
        }
        Ok(())
    }

    /// Burnt ids are valid ids and name no stored transfer.
    fn check_failed_ids(&self) -> Result<(), String> {
        for id in self.failed_ids.log().iter() {
            if *id == 0 || *id == u128::MAX || self.transfer_index.contains(*id) {
                return Err(format!("burnt id {id} is invalid or names a transfer"));
            }
        }
        Ok(())
    }
}

/// Returns true when the account keeps balance history.
fn keeps_history(account: &Account) -> bool {
    account.flags.contains(AccountFlags::HISTORY)
}

/// One account's own rules: reserved bits clear, valid fields, totals that do not
/// overflow, and limit flags respected.
fn check_account_fields(account: &Account) -> Result<(), String> {
    let id = account.id;
    let both_limits =
        AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS;
    if account.reserved != 0
        || account.flags.intersects(AccountFlags::PADDING)
        || account.flags.contains(both_limits)
        || account.ledger == 0
        || account.code == 0
    {
        return Err(format!("account {id} has bad fields or flags"));
    }
    let debits = [account.debits_pending, account.debits_posted];
    let credits = [account.credits_pending, account.credits_posted];
    if exceeds(&debits, u128::MAX) || exceeds(&credits, u128::MAX) {
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
    Ok(())
}

/// Adds an unresolved pending transfer to both accounts' totals.
fn add_pending(totals: &mut [PendingTotals], transfer: &Transfer, debit: u32, credit: u32) {
    if let Some(total) = totals.get_mut(debit as usize) {
        total.debits = total.debits.add(transfer.amount);
        total.closing += u32::from(transfer.flags.contains(TransferFlags::CLOSING_DEBIT));
    }
    if let Some(total) = totals.get_mut(credit as usize) {
        total.credits = total.credits.add(transfer.amount);
        total.closing += u32::from(transfer.flags.contains(TransferFlags::CLOSING_CREDIT));
    }
}
