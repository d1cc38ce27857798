//! The reference lookups and queries: filters, ordering and limits, by full scans.

use super::*;

/// Returns true when `filter`'s timestamp bounds are valid: each 0 or a valid timestamp, and
/// ordered when both are set.
pub(super) fn timestamp_bounds_valid(timestamp_min: u64, timestamp_max: u64) -> bool {
    (timestamp_min == 0 || timestamp_valid(timestamp_min))
        && (timestamp_max == 0 || timestamp_valid(timestamp_max))
        && (timestamp_max == 0 || timestamp_min <= timestamp_max)
}

/// Returns true when `timestamp` lies within the inclusive bounds, 0 meaning unbounded.
pub(super) fn timestamp_within(timestamp: u64, timestamp_min: u64, timestamp_max: u64) -> bool {
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
    (lower..=upper).contains(&timestamp)
}

/// Returns true when a non-zero filter value is set and differs from the object's value.
pub(super) fn filtered_out<T: PartialEq + Default>(filter_value: T, object_value: T) -> bool {
    filter_value != T::default() && filter_value != object_value
}

/// TigerBeetle's `AccountFilter` validity: an invalid filter yields an empty result.
pub(super) fn account_filter_valid(filter: &AccountFilter) -> bool {
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
pub(super) fn query_filter_valid(filter: &QueryFilter) -> bool {
    timestamp_bounds_valid(filter.timestamp_min, filter.timestamp_max)
        && filter.limit != 0
        && !filter.flags.intersects(QueryFilterFlags::PADDING)
        && filter.reserved.iter().all(|byte| *byte == 0)
}

/// Sorts objects by timestamp (newest first when `reversed`) and keeps at most `limit`,
/// itself capped at [`QUERY_RESULTS_MAX`].
pub(super) fn order_and_limit<T>(
    mut objects: Vec<T>,
    timestamp_of: impl Fn(&T) -> u64,
    reversed: bool,
    limit: u32,
) -> Vec<T> {
    objects.sort_by_key(|object| timestamp_of(object));
    if reversed {
        objects.reverse();
    }
    let limit = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .min(QUERY_RESULTS_MAX);
    objects.truncate(limit);
    objects
}

impl ModelLedger {
    /// Expires every pending transfer whose expiry instant is at or before `now`, in order of
    /// expiry instant and then of creation timestamp (see the module documentation).
    pub fn expire_pending(&mut self, now: u64) {
        let mut due: Vec<(u128, u64, Transfer)> = self
            .state
            .pending_statuses
            .iter()
            .filter(|(_, status)| **status == PendingStatus::Pending)
            .filter_map(|(id, _)| self.state.transfers.get(id))
            .filter_map(|pending| Some((expires_at(pending)?, pending.timestamp, *pending)))
            .filter(|(instant, _, _)| *instant <= now as u128)
            .collect();
        due.sort_by_key(|(instant, timestamp, _)| (*instant, *timestamp));
        for (_, _, pending) in due {
            apply_expiry(&mut self.state, &pending);
        }
    }

    /// Returns the stored accounts with these ids, in the order of the ids; ids not found are
    /// omitted and duplicate ids give duplicate results.
    pub fn lookup_accounts(&self, ids: &[u128]) -> Vec<Account> {
        ids.iter()
            .filter_map(|id| self.state.accounts.get(id).copied())
            .collect()
    }

    /// Returns the stored transfers with these ids, in the order of the ids; ids not found
    /// (including burnt ids) are omitted and duplicate ids give duplicate results.
    pub fn lookup_transfers(&self, ids: &[u128]) -> Vec<Transfer> {
        ids.iter()
            .filter_map(|id| self.state.transfers.get(id).copied())
            .collect()
    }

    /// Returns the transfers selected by an account filter (empty for an invalid filter).
    pub fn get_account_transfers(&self, filter: &AccountFilter) -> Vec<Transfer> {
        if !account_filter_valid(filter) {
            return Vec::new();
        }
        let selected: Vec<Transfer> = self
            .state
            .transfers
            .values()
            .filter(|transfer| account_filter_matches(filter, transfer))
            .copied()
            .collect();
        order_and_limit(
            selected,
            |transfer| transfer.timestamp,
            filter.flags.contains(AccountFilterFlags::REVERSED),
            filter.limit,
        )
    }

    /// Returns the queried account's balance right after each transfer selected by the
    /// filter. Empty unless the filter is valid and the account exists with `history`.
    pub fn get_account_balances(&self, filter: &AccountFilter) -> Vec<AccountBalance> {
        let has_history = self
            .state
            .accounts
            .get(&filter.account_id)
            .is_some_and(|account| account.flags.contains(AccountFlags::HISTORY));
        if !has_history {
            return Vec::new();
        }
        self.get_account_transfers(filter)
            .iter()
            .filter_map(|transfer| self.state.history.get(&transfer.timestamp))
            .map(|entry| {
                if entry.debit_account_id == filter.account_id {
                    entry.debit_account_balance
                } else {
                    entry.credit_account_balance
                }
            })
            .collect()
    }

    /// Returns the accounts selected by a query filter, with current balances and flags.
    pub fn query_accounts(&self, filter: &QueryFilter) -> Vec<Account> {
        if !query_filter_valid(filter) {
            return Vec::new();
        }
        let selected: Vec<Account> = self
            .state
            .accounts
            .values()
            .filter(|account| {
                !filtered_out(filter.user_data_128, account.user_data_128)
                    && !filtered_out(filter.user_data_64, account.user_data_64)
                    && !filtered_out(filter.user_data_32, account.user_data_32)
                    && !filtered_out(filter.ledger, account.ledger)
                    && !filtered_out(filter.code, account.code)
                    && timestamp_within(
                        account.timestamp,
                        filter.timestamp_min,
                        filter.timestamp_max,
                    )
            })
            .copied()
            .collect();
        order_and_limit(
            selected,
            |account| account.timestamp,
            filter.flags.contains(QueryFilterFlags::REVERSED),
            filter.limit,
        )
    }

    /// Returns the stored transfer records (post and void records included) selected by a
    /// query filter.
    pub fn query_transfers(&self, filter: &QueryFilter) -> Vec<Transfer> {
        if !query_filter_valid(filter) {
            return Vec::new();
        }
        let selected: Vec<Transfer> = self
            .state
            .transfers
            .values()
            .filter(|transfer| {
                !filtered_out(filter.user_data_128, transfer.user_data_128)
                    && !filtered_out(filter.user_data_64, transfer.user_data_64)
                    && !filtered_out(filter.user_data_32, transfer.user_data_32)
                    && !filtered_out(filter.ledger, transfer.ledger)
                    && !filtered_out(filter.code, transfer.code)
                    && timestamp_within(
                        transfer.timestamp,
                        filter.timestamp_min,
                        filter.timestamp_max,
                    )
            })
            .copied()
            .collect();
        order_and_limit(
            selected,
            |transfer| transfer.timestamp,
            filter.flags.contains(QueryFilterFlags::REVERSED),
            filter.limit,
        )
    }
}

/// Returns true when a transfer is selected by a (valid) account filter: it debits the
/// account and debits are asked for, or credits it and credits are asked for; and every set
/// user-data and code filter matches; and its timestamp is within the bounds.
pub(super) fn account_filter_matches(filter: &AccountFilter, transfer: &Transfer) -> bool {
    let debit_matches = filter.flags.contains(AccountFilterFlags::DEBITS)
        && transfer.debit_account_id == filter.account_id;
    let credit_matches = filter.flags.contains(AccountFilterFlags::CREDITS)
        && transfer.credit_account_id == filter.account_id;
    (debit_matches || credit_matches)
        && !filtered_out(filter.user_data_128, transfer.user_data_128)
        && !filtered_out(filter.user_data_64, transfer.user_data_64)
        && !filtered_out(filter.user_data_32, transfer.user_data_32)
        && !filtered_out(filter.code, transfer.code)
        && timestamp_within(
            transfer.timestamp,
            filter.timestamp_min,
            filter.timestamp_max,
        )
}
