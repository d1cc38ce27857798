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
//!
//! One file per rulebook, each read side by side with the reference model: `accounts.rs`
//! (A1–A14), `ordinary.rs` (O1–O26), `post_void.rs` (P1–P25 and expiry); this file holds
//! T1–T6, which choose between them, and the effects every path shares (`update_account`,
//! `set_status`, `link_transfer`, timestamp uniqueness of imported events).

mod accounts;
mod ordinary;
mod post_void;

use ordinary::ordinary_exists_status;
use post_void::post_or_void_exists_status;

use super::{
    AccountRecord, HistoryRow, LedgerState, NANOSECONDS_PER_SECOND, PendingStatus, TIMESTAMP_MAX,
    UndoEntry, expires_at, expiry_key,
};
use crate::ledger::{
    AMOUNT_MAX, Account, AccountFlags, CreateAccountStatus, CreateTransferStatus, Transfer,
    TransferFlags,
};

/// Returns true when the exact (unbounded) sum of `values` exceeds `u128::MAX`.
pub(in crate::ledger::state) fn sum_overflows(values: &[u128]) -> bool {
    exceeds(values, u128::MAX)
}

/// Steps O24–O25's condition: the exact sum of `parts` is greater than `limit`.
pub(in crate::ledger::state) fn exceeds(parts: &[u128], limit: u128) -> bool {
    parts
        .iter()
        .try_fold(0u128, |sum, part| sum.checked_add(*part))
        .is_none_or(|sum| sum > limit)
}

impl LedgerState {
    /// Steps O14a and P22's condition: `timestamp` is at or before the newest transfer (post
    /// and void records included), or equals an account's timestamp.
    pub(in crate::ledger::state) fn imported_timestamp_regresses_transfer(
        &self,
        timestamp: u64,
    ) -> bool {
        self.transfers
            .last()
            .is_some_and(|newest| timestamp <= newest.timestamp)
            || self.account_timestamp_exists(timestamp)
    }

    /// Returns true when a stored transfer has exactly this timestamp (binary search).
    pub(in crate::ledger::state) fn transfer_timestamp_exists(&self, timestamp: u64) -> bool {
        let position = self
            .transfers
            .partition_point(|transfer| transfer.timestamp < timestamp);
        self.transfers
            .get(position)
            .is_some_and(|transfer| transfer.timestamp == timestamp)
    }

    /// Steps T1–T6: the checks common to every transfer, then the ordinary or post/void path.
    ///
    /// `sides` are the positions of the event's debit and credit accounts, looked up by the
    /// caller for the whole batch.
    pub(in crate::ledger::state) fn create_transfer(
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
    pub(in crate::ledger::state) fn transfer_exists_status(
        &self,
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
            // A stored post/void always references a stored pending transfer.
            let Some((_, pending)) = self.transfer_by_id(t.pending_id) else {
                return S::ExistsWithDifferentPendingId;
            };
            post_or_void_exists_status(t, existing, pending)
        } else {
            ordinary_exists_status(t, existing)
        }
    }

    /// Returns the slot the next transfer record will take.
    pub(in crate::ledger::state) fn next_transfer_slot(&self) -> u32 {
        u32::try_from(self.transfers.len()).expect("transfer store exceeds 2^32 - 1")
    }

    /// Changes one account, logging its old value first while a chain is open.
    #[inline]
    pub(in crate::ledger::state) fn update_account(
        &mut self,
        index: u32,
        change: impl FnOnce(&mut Account),
    ) {
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
    pub(in crate::ledger::state) fn set_status(
        &mut self,
        slot: u32,
        pending: &Transfer,
        status: PendingStatus,
    ) {
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
    pub(in crate::ledger::state) fn link_transfer(&mut self, slot: u32, account_indexes: [u32; 2]) {
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
}
