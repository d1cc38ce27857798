//! The undo log of an open linked chain: the marks and overwrites a broken chain rolls
//! back, and the rollback itself (TigerBeetle's chain semantics: a failing event undoes
//! every earlier event of its chain).

use super::*;

/// The store lengths when the open chain began; appends beyond them are the chain's.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct UndoMark {
    pub(super) accounts_len: usize,
    pub(super) transfers_len: usize,
    pub(super) history_len: usize,
}

/// One overwrite made by the open chain, with the value it replaced.
#[derive(Clone, Copy, Debug)]
pub(super) enum UndoEntry {
    /// An account's balances or flags changed.
    Account { index: u32, before: Account },
    /// A pending transfer's resolution changed.
    Status { slot: u32, before: PendingStatus },
}

/// The undo log of the open linked chain.
#[derive(Clone, Debug, Default)]
pub(super) struct UndoLog {
    pub(super) active: bool,
    pub(super) mark: UndoMark,
    pub(super) entries: Vec<UndoEntry>,
}

impl LedgerState {
    /// Opens the undo log for a new chain.
    pub(super) fn begin_chain(&mut self) {
        self.undo.active = true;
        self.undo.entries.clear();
        self.undo.mark = UndoMark {
            accounts_len: self.accounts.len(),
            transfers_len: self.transfers.len(),
            history_len: self.history.len(),
        };
    }

    /// Keeps the chain's effects and closes the undo log.
    pub(super) fn commit_chain(&mut self) {
        self.undo.active = false;
        self.undo.entries.clear();
    }

    /// Undoes every effect of the open chain: first the logged overwrites, newest first, then
    /// the appends beyond the undo mark with the index entries that point at them.
    pub(super) fn rollback_chain(&mut self) {
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
    pub(super) fn restore_status(&mut self, slot: u32, before: PendingStatus) {
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
    pub(super) fn pop_transfer(&mut self) {
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
}
