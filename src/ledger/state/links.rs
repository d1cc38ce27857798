//! `AccountLinks`: for every account, the slots of the transfers that debit or credit it, in
//! increasing slot order, as `get_account_transfers` and `get_account_balances` need them.
//!
//! Appending every new transfer to two per-account lists at once would write to two random
//! list tails per transfer, and with thousands of accounts those writes miss the cache. So
//! the newest transfers are only logged, as the account positions of their two sides, in a
//! compact `unindexed` log of 8 bytes per transfer. Once the log holds enough transfers, it is
//! bulk-indexed at the end of a batch: a counting sort by account groups the slots, and each
//! account's list then receives its whole run with one append. This touches each list tail
//! about once per flush instead of once per transfer.
//!
//! Invariants: the lists hold exactly the slots below `indexed_len`, each strictly
//! increasing. `unindexed[i]` holds the (debit, credit) account positions of slot
//! `indexed_len + i`. Every slot is therefore listed for both of its accounts, either in the
//! lists or in the log.
//!
//! Complexity: `link` is O(1). A flush is O(entries in the log + number of accounts). It runs
//! at the end of a batch once the log holds at least `max(UNINDEXED_MIN, accounts)`
//! transfers, which makes it amortized O(1) per transfer. Reading an account's slots in a
//! slot range costs O(log list length + results) for the lists, plus one linear pass over the
//! log. The log holds fewer than `max(UNINDEXED_MIN, accounts) + 8189` entries (about 320 KiB
//! at the minimum).

use std::ops::Range;

// Spreads slot numbers so that sums of them identify multisets.
use crate::rng::mix64 as mix;

/// Makes room for `additional` more slots in `list`, growing it by a factor
/// between 1.5 and 2.5 that depends on the account. With uniform traffic all
/// lists reach the same lengths together; plain doubling would then
/// reallocate (and copy) every list in the same flush, one long pause each
/// time the transfer count doubles. Per-account factors spread those
/// reallocations over many flushes.
fn reserve_staggered(list: &mut Vec<u32>, additional: usize, account: usize) {
    let needed = list.len() + additional;
    if needed <= list.capacity() {
        return;
    }
    let eighths = 12 + (mix(account as u64) % 9) as usize; // 12..=20 eighths
    let grown = list.capacity().saturating_mul(eighths) / 8;
    list.reserve_exact(grown.max(needed).max(4) - list.len());
}

/// The log length below which no flush happens, in production. Random walks choose a tiny
/// value (`Sizes::SMALL`) so that they flush all the time, with rollbacks and queries on both
/// sides of a flush.
pub(super) const UNINDEXED_MIN: usize = 32 * 1024;

/// Per-account transfer lists with a bulk-indexed log of the newest transfers.
#[derive(Clone, Debug)]
pub(super) struct AccountLinks {
    lists: Vec<Vec<u32>>,
    indexed_len: usize,
    unindexed: Vec<[u32; 2]>,
    /// The log length below which no flush happens (a parameter).
    unindexed_min: usize,
}

impl Default for AccountLinks {
    fn default() -> Self {
        Self::new(UNINDEXED_MIN)
    }
}

impl AccountLinks {
    /// Empty links that flush once the log holds `unindexed_min` entries (or one per
    /// account, if there are more accounts).
    pub(super) fn new(unindexed_min: usize) -> Self {
        Self {
            lists: Vec::new(),
            indexed_len: 0,
            unindexed: Vec::new(),
            unindexed_min,
        }
    }

    /// Builds fully indexed links for `accounts_len` accounts from every transfer's account
    /// positions, in slot order; every list gets exactly the capacity it needs.
    pub(super) fn build(accounts_len: usize, sides: Vec<[u32; 2]>, unindexed_min: usize) -> Self {
        let mut links = Self {
            lists: vec![Vec::new(); accounts_len],
            indexed_len: 0,
            unindexed: sides,
            unindexed_min,
        };
        links.flush();
        links.unindexed = Vec::new();
        links
    }

    /// Adds an empty list for a new account.
    pub(super) fn add_account(&mut self) {
        self.lists.push(Vec::new());
    }

    /// Drops the lists of accounts at positions `accounts_len..` (their transfers must
    /// already be gone).
    pub(super) fn truncate_accounts(&mut self, accounts_len: usize) {
        self.lists.truncate(accounts_len);
    }

    /// Returns the number of account lists.
    pub(super) fn accounts_len(&self) -> usize {
        self.lists.len()
    }

    /// Records the transfer at the next slot, between the accounts at these positions.
    pub(super) fn link(&mut self, sides: [u32; 2]) {
        self.unindexed.push(sides);
    }

    /// Forgets every slot at or above `transfers_len` (a chain's rollback).
    pub(super) fn truncate_transfers(&mut self, transfers_len: usize) {
        if transfers_len >= self.indexed_len {
            self.unindexed.truncate(transfers_len - self.indexed_len);
            return;
        }
        // Flushes happen only between batches, so a rollback never reaches indexed slots.
        // Kept correct anyway, at O(accounts) cost.
        self.unindexed.clear();
        for list in &mut self.lists {
            let keep = list.partition_point(|slot| (*slot as usize) < transfers_len);
            list.truncate(keep);
        }
        self.indexed_len = transfers_len;
    }

    /// Bulk-indexes the log once it is long enough; call between batches only.
    pub(super) fn flush_if_due(&mut self) {
        if self.unindexed.len() >= self.unindexed_min.max(self.lists.len()) {
            self.flush();
        }
    }

    /// Moves every logged slot into its accounts' lists with a counting sort by account.
    pub(super) fn flush(&mut self) {
        let accounts = self.lists.len();
        // starts[a] becomes the position of account a's run in `sorted`.
        let mut starts = vec![0usize; accounts + 1];
        for sides in &self.unindexed {
            for side in sides {
                if let Some(count) = starts.get_mut(*side as usize + 1) {
                    *count += 1;
                }
            }
        }
        for account in 0..accounts {
            starts[account + 1] += starts[account];
        }
        let mut sorted = vec![0u32; starts[accounts]];
        let mut next = starts.clone();
        for (offset, sides) in self.unindexed.iter().enumerate() {
            let slot = (self.indexed_len + offset) as u32;
            for side in sides {
                if let Some(position) = next.get_mut(*side as usize) {
                    if let Some(entry) = sorted.get_mut(*position) {
                        *entry = slot;
                    }
                    *position += 1;
                }
            }
        }
        for (account, list) in self.lists.iter_mut().enumerate() {
            let run = sorted
                .get(starts[account]..starts[account + 1])
                .unwrap_or_default();
            reserve_staggered(list, run.len(), account);
            list.extend_from_slice(run);
        }
        self.indexed_len += self.unindexed.len();
        self.unindexed.clear();
    }

    /// Returns, in increasing order, the slots within `slots` of the transfers of the
    /// account at `account`.
    pub(super) fn slots_in(
        &self,
        account: u32,
        slots: Range<usize>,
    ) -> impl DoubleEndedIterator<Item = u32> + '_ {
        let list = self
            .lists
            .get(account as usize)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let start = list.partition_point(|slot| (*slot as usize) < slots.start);
        let end = list.partition_point(|slot| (*slot as usize) < slots.end);
        let indexed = list.get(start..end).unwrap_or_default().iter().copied();
        let first = slots.start.max(self.indexed_len);
        let last = slots.end.max(first);
        let offsets = first - self.indexed_len..last - self.indexed_len;
        let logged = self.unindexed.get(offsets).unwrap_or_default();
        let unindexed = (first..first + logged.len())
            .zip(logged)
            .filter(move |(_, sides)| sides.contains(&account))
            .map(|(slot, _)| slot as u32);
        indexed.chain(unindexed)
    }

    /// Checks the invariants against the transfers' account positions, given in slot order.
    ///
    /// The lists must be strictly increasing and below `indexed_len`, and must hold, per
    /// account, the same multiset of slots as the transfers name. The multisets are compared
    /// by count and by a sum of mixed slot values, in one sequential pass. That misses a
    /// difference with probability about 2^-64, which is enough for lists that are always
    /// derived by this module and never read from untrusted input. The log is compared
    /// entry by entry.
    pub(super) fn check(&self, sides: impl Iterator<Item = [u32; 2]>) -> Result<(), String> {
        let mut expected = vec![(0usize, 0u64); self.lists.len()];
        let mut transfers_len = 0;
        for (slot, sides) in sides.enumerate() {
            transfers_len += 1;
            if let Some(offset) = slot.checked_sub(self.indexed_len) {
                if self.unindexed.get(offset) != Some(&sides) {
                    return Err(format!("transfer at slot {slot} is not logged"));
                }
                continue;
            }
            for account in sides {
                let Some(entry) = expected.get_mut(account as usize) else {
                    return Err(format!("transfer at slot {slot} names no account"));
                };
                entry.0 += 1;
                entry.1 = entry.1.wrapping_add(mix(slot as u64));
            }
        }
        if transfers_len != self.indexed_len + self.unindexed.len() {
            return Err("the transfer log has foreign entries".to_string());
        }
        for (account, (list, expected)) in self.lists.iter().zip(&expected).enumerate() {
            let ordered = list.windows(2).all(|pair| pair[0] < pair[1])
                && list
                    .last()
                    .is_none_or(|last| (*last as usize) < self.indexed_len);
            let sum = list
                .iter()
                .fold(0u64, |sum, slot| sum.wrapping_add(mix(u64::from(*slot))));
            if !ordered || (list.len(), sum) != *expected {
                return Err(format!("transfer list of account {account} is wrong"));
            }
        }
        Ok(())
    }

    /// Returns the estimated heap bytes held.
    pub(super) fn memory_bytes(&self) -> usize {
        let lists: usize = self
            .lists
            .iter()
            .map(|list| list.capacity() * size_of::<u32>())
            .sum();
        lists
            + self.lists.capacity() * size_of::<Vec<u32>>()
            + self.unindexed.capacity() * size_of::<[u32; 2]>()
    }
}
