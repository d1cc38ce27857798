//! Lookups and queries of [`LedgerState`], with the same results as the reference model.
//!
//! Both stores are in timestamp order, so a filter's timestamp bounds become a range of
//! positions by binary search, and results come out already ordered. An invalid filter
//! returns nothing, and results are capped at `min(limit, 8189)`, exactly as in the model.
//!
//! Complexity: `lookup_*` is O(1) per id. `get_account_transfers` and `get_account_balances`
//! take O(log n) to find the range in the account's slot list, plus one pass over the short
//! log of not yet indexed transfers (see `links`), then scan the range until `limit` matches
//! are found. `get_account_balances` adds an O(log h) binary search over the history rows per
//! result. `query_accounts` and `query_transfers` take O(log n) to find the range, then read
//! the positions of the rarest filtered value from its secondary index (`secondary`):
//! O(log(count) + limit + 32) when every candidate matches; a filter on several fields
//! reads the rarest one's candidates and checks the others. A filter on no field, or whose
//! rarest value is common within a short range, scans the range instead.

use std::ops::Range;

use super::secondary::{Plan, QueryIndex};
use super::{LedgerState, QUERY_RESULTS_MAX, TIMESTAMP_MAX, TIMESTAMP_MIN, timestamp_valid};
use crate::ledger::chunked::ChunkedVec;
use crate::ledger::{
    Account, AccountBalance, AccountFilter, AccountFilterFlags, AccountFlags, QueryFilter,
    QueryFilterFlags, Transfer,
};

/// Returns true when the timestamp bounds are valid: each 0 or a valid timestamp, and
/// ordered when both are set.
fn timestamp_bounds_valid(timestamp_min: u64, timestamp_max: u64) -> bool {
    (timestamp_min == 0 || timestamp_valid(timestamp_min))
        && (timestamp_max == 0 || timestamp_valid(timestamp_max))
        && (timestamp_max == 0 || timestamp_min <= timestamp_max)
}

/// The positions of `store` (in timestamp order) whose timestamp lies within a filter's
/// `timestamp_min..=timestamp_max`, 0 meaning unbounded.
fn positions_in_time<T: Clone>(
    store: &ChunkedVec<T>,
    timestamp: impl Fn(&T) -> u64,
    timestamp_min: u64,
    timestamp_max: u64,
) -> Range<usize> {
    let (lower, upper) = timestamp_bounds(timestamp_min, timestamp_max);
    let start = store.partition_point(|item| timestamp(item) < lower);
    let end = store.partition_point(|item| timestamp(item) <= upper);
    start..end.max(start)
}

/// Returns the inclusive bounds `[lower, upper]`, 0 meaning unbounded.
fn timestamp_bounds(timestamp_min: u64, timestamp_max: u64) -> (u64, u64) {
    let lower = if timestamp_min == 0 {
        TIMESTAMP_MIN
    } else {
        timestamp_min
    };
    let upper = if timestamp_max == 0 {
        TIMESTAMP_MAX
    } else {
        timestamp_max
    };
    (lower, upper)
}

/// Returns true when a non-zero filter value is set and differs from the object's value.
fn filtered_out<T: PartialEq + Default>(filter_value: T, object_value: T) -> bool {
    filter_value != T::default() && filter_value != object_value
}

/// TigerBeetle's `AccountFilter` validity: an invalid filter yields an empty result.
fn account_filter_valid(filter: &AccountFilter) -> bool {
    filter.account_id != 0
        && filter.account_id != u128::MAX
        && timestamp_bounds_valid(filter.timestamp_min, filter.timestamp_max)
        && filter.limit != 0
        && filter
            .flags
            .intersects(AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS)
        && !filter.flags.intersects(AccountFilterFlags::PADDING)
        && filter.reserved.iter().all(|byte| *byte == 0)
}

/// TigerBeetle's `QueryFilter` validity: an invalid filter yields an empty result.
fn query_filter_valid(filter: &QueryFilter) -> bool {
    timestamp_bounds_valid(filter.timestamp_min, filter.timestamp_max)
        && filter.limit != 0
        && !filter.flags.intersects(QueryFilterFlags::PADDING)
        && filter.reserved.iter().all(|byte| *byte == 0)
}

/// Returns `limit` capped at [`QUERY_RESULTS_MAX`].
fn result_limit(limit: u32) -> usize {
    usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .min(QUERY_RESULTS_MAX)
}

/// Returns true when a transfer is selected by a valid account filter (ignoring the
/// timestamp bounds, which the caller applies as a range).
fn account_filter_matches(filter: &AccountFilter, transfer: &Transfer) -> bool {
    let debit_matches = filter.flags.contains(AccountFilterFlags::DEBITS)
        && transfer.debit_account_id == filter.account_id;
    let credit_matches = filter.flags.contains(AccountFilterFlags::CREDITS)
        && transfer.credit_account_id == filter.account_id;
    (debit_matches || credit_matches)
        && !filtered_out(filter.user_data_128, transfer.user_data_128)
        && !filtered_out(filter.user_data_64, transfer.user_data_64)
        && !filtered_out(filter.user_data_32, transfer.user_data_32)
        && !filtered_out(filter.code, transfer.code)
}

/// Returns true when an object's user data, ledger and code pass a query filter.
fn query_filter_matches(
    filter: &QueryFilter,
    user_data: (u128, u64, u32),
    ledger: u32,
    code: u16,
) -> bool {
    !filtered_out(filter.user_data_128, user_data.0)
        && !filtered_out(filter.user_data_64, user_data.1)
        && !filtered_out(filter.user_data_32, user_data.2)
        && !filtered_out(filter.ledger, ledger)
        && !filtered_out(filter.code, code)
}

/// Walks `positions` forward (or backward when `reversed`) and keeps the first `limit`
/// positions that `keep` accepts.
fn scan<T>(
    positions: impl DoubleEndedIterator<Item = T>,
    reversed: bool,
    limit: usize,
    keep: impl FnMut(&T) -> bool,
) -> Vec<T> {
    if reversed {
        positions.rev().filter(keep).take(limit).collect()
    } else {
        positions.filter(keep).take(limit).collect()
    }
}

impl LedgerState {
    /// Returns the stored accounts with these ids, in the order of the ids; ids not found
    /// are omitted and duplicate ids give duplicate results.
    pub fn lookup_accounts(&self, ids: &[u128]) -> Vec<Account> {
        ids.iter()
            .filter_map(|id| self.account(*id))
            .copied()
            .collect()
    }

    /// Returns the stored transfers with these ids, in the order of the ids; ids not found
    /// (including burnt ids) are omitted and duplicate ids give duplicate results.
    pub fn lookup_transfers(&self, ids: &[u128]) -> Vec<Transfer> {
        ids.iter()
            .filter_map(|id| self.transfer_by_id(*id))
            .map(|(_, transfer)| *transfer)
            .collect()
    }

    /// Returns the transfers selected by an account filter (empty for an invalid filter).
    pub fn get_account_transfers(&self, filter: &AccountFilter) -> Vec<Transfer> {
        self.account_filter_slots(filter)
            .into_iter()
            .filter_map(|slot| self.transfers.get(slot as usize).copied())
            .collect()
    }

    /// Returns the queried account's balance right after each transfer selected by the
    /// filter. Empty unless the filter is valid and the account exists with `history`.
    pub fn get_account_balances(&self, filter: &AccountFilter) -> Vec<AccountBalance> {
        let Some(account_index) = self.account_index.get(filter.account_id) else {
            return Vec::new();
        };
        let has_history = self
            .accounts
            .get(account_index as usize)
            .is_some_and(|account| account.flags.contains(AccountFlags::HISTORY));
        if !has_history {
            return Vec::new();
        }
        self.account_filter_slots(filter)
            .into_iter()
            .filter_map(|slot| self.balance_after(slot, account_index))
            .collect()
    }

    /// Returns the slots selected by an account filter, in result order, at most the limit.
    fn account_filter_slots(&self, filter: &AccountFilter) -> Vec<u32> {
        if !account_filter_valid(filter) {
            return Vec::new();
        }
        let Some(account_index) = self.account_index.get(filter.account_id) else {
            return Vec::new();
        };
        let slots = positions_in_time(
            &self.transfers,
            |t| t.timestamp,
            filter.timestamp_min,
            filter.timestamp_max,
        );
        let candidates = self.links.slots_in(account_index, slots);
        scan(
            candidates,
            filter.flags.contains(AccountFilterFlags::REVERSED),
            result_limit(filter.limit),
            |slot| {
                self.transfers
                    .get(*slot as usize)
                    .is_some_and(|transfer| account_filter_matches(filter, transfer))
            },
        )
    }

    /// Returns the balance of the account at `account_index` right after the transfer at
    /// `slot`, from its history row. Rows are in slot order with at most two per slot.
    fn balance_after(&self, slot: u32, account_index: u32) -> Option<AccountBalance> {
        let first = self.history.partition_point(|row| row.slot < slot);
        let row = [first, first + 1]
            .into_iter()
            .filter_map(|position| self.history.get(position))
            .find(|row| row.slot == slot && row.account == account_index)?;
        let [
            debits_pending,
            debits_posted,
            credits_pending,
            credits_posted,
        ] = row.balances;
        Some(AccountBalance {
            debits_pending,
            debits_posted,
            credits_pending,
            credits_posted,
            timestamp: self.transfers.get(slot as usize)?.timestamp,
        })
    }

    /// Returns the accounts selected by a query filter, with current balances and flags.
    pub fn query_accounts(&self, filter: &QueryFilter) -> Vec<Account> {
        if !query_filter_valid(filter) {
            return Vec::new();
        }
        let range = positions_in_time(
            &self.accounts,
            |a| a.timestamp,
            filter.timestamp_min,
            filter.timestamp_max,
        );
        let positions = select(&self.account_query, filter, range, |position| {
            self.accounts.get(position).is_some_and(|a| {
                let user_data = (a.user_data_128, a.user_data_64, a.user_data_32);
                query_filter_matches(filter, user_data, a.ledger, a.code)
            })
        });
        positions
            .into_iter()
            .filter_map(|position| self.accounts.get(position).map(|record| record.0))
            .collect()
    }

    /// Returns the stored transfer records (post and void records included) selected by a
    /// query filter.
    pub fn query_transfers(&self, filter: &QueryFilter) -> Vec<Transfer> {
        if !query_filter_valid(filter) {
            return Vec::new();
        }
        let range = positions_in_time(
            &self.transfers,
            |t| t.timestamp,
            filter.timestamp_min,
            filter.timestamp_max,
        );
        let positions = select(&self.transfer_query, filter, range, |position| {
            self.transfers.get(position).is_some_and(|t| {
                let user_data = (t.user_data_128, t.user_data_64, t.user_data_32);
                query_filter_matches(filter, user_data, t.ledger, t.code)
            })
        });
        positions
            .into_iter()
            .filter_map(|position| self.transfers.get(position).copied())
            .collect()
    }
}

/// The positions within `range` that `matches` accepts, in result order, at most the
/// filter's limit: read from the rarest filtered value's index chain, or by scanning the
/// range when that is cheaper (see `secondary`).
fn select(
    index: &QueryIndex,
    filter: &QueryFilter,
    range: Range<usize>,
    matches: impl Fn(usize) -> bool,
) -> Vec<usize> {
    let reversed = filter.flags.contains(QueryFilterFlags::REVERSED);
    let limit = result_limit(filter.limit);
    let wanted = [
        filter.user_data_128,
        u128::from(filter.user_data_64),
        u128::from(filter.user_data_32),
        u128::from(filter.ledger),
        u128::from(filter.code),
    ];
    match index.plan(&wanted, range.len()) {
        Plan::Empty => Vec::new(),
        Plan::Scan => scan(range, reversed, limit, |position| matches(*position)),
        Plan::Field { field, value } => {
            let mut selected = Vec::new();
            index.visit(field, value, range, reversed, &mut |position| {
                if matches(position as usize) {
                    selected.push(position as usize);
                }
                selected.len() < limit
            });
            selected
        }
    }
}
