//! Steps A1–A14: the rules of `create_accounts`, one account at a time.

use super::*;

/// Step A5: compares a resubmitted account with the stored one in TigerBeetle's order.
/// Flags are compared in full against the current flags (so `closed` counts).
pub(in crate::ledger::state) fn account_exists_status(
    a: &Account,
    existing: &Account,
) -> CreateAccountStatus {
    use CreateAccountStatus as S;
    if a.flags != existing.flags {
        S::ExistsWithDifferentFlags
    } else if a.user_data_128 != existing.user_data_128 {
        S::ExistsWithDifferentUserData128
    } else if a.user_data_64 != existing.user_data_64 {
        S::ExistsWithDifferentUserData64
    } else if a.user_data_32 != existing.user_data_32 {
        S::ExistsWithDifferentUserData32
    } else if a.ledger != existing.ledger {
        S::ExistsWithDifferentLedger
    } else if a.code != existing.code {
        S::ExistsWithDifferentCode
    } else {
        S::Exists
    }
}

/// Steps A6–A12: the field checks of a new account, in order.
pub(in crate::ledger::state) fn check_account_fields(
    a: &Account,
) -> Result<(), CreateAccountStatus> {
    use CreateAccountStatus as S;
    if a.flags
        .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
        && a.flags
            .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
    {
        return Err(S::FlagsAreMutuallyExclusive);
    }
    if a.debits_pending != 0 {
        return Err(S::DebitsPendingMustBeZero);
    }
    if a.debits_posted != 0 {
        return Err(S::DebitsPostedMustBeZero);
    }
    if a.credits_pending != 0 {
        return Err(S::CreditsPendingMustBeZero);
    }
    if a.credits_posted != 0 {
        return Err(S::CreditsPostedMustBeZero);
    }
    if a.ledger == 0 {
        return Err(S::LedgerMustNotBeZero);
    }
    if a.code == 0 {
        return Err(S::CodeMustNotBeZero);
    }
    Ok(())
}

impl LedgerState {
    /// Steps A1–A14: validates and inserts one account with event timestamp `timestamp`.
    pub(in crate::ledger::state) fn create_account(
        &mut self,
        a: &Account,
        timestamp: u64,
    ) -> Result<(), CreateAccountStatus> {
        use CreateAccountStatus as S;
        // A1–A4: reserved field before padding flags, then the id.
        if a.reserved != 0 {
            return Err(S::ReservedField);
        }
        if a.flags.intersects(AccountFlags::PADDING) {
            return Err(S::ReservedFlag);
        }
        if a.id == 0 {
            return Err(S::IdMustNotBeZero);
        }
        if a.id == u128::MAX {
            return Err(S::IdMustNotBeIntMax);
        }
        // A5: idempotency comes before every semantic check.
        if let Some(existing) = self.account(a.id) {
            return Err(account_exists_status(a, existing));
        }
        // A6–A12: field checks.
        check_account_fields(a)?;
        // A13: an imported account must come after every account and share no transfer's
        // timestamp; deliberately after the idempotency checks, so imports can be resubmitted.
        if a.flags.contains(AccountFlags::IMPORTED)
            && self.imported_timestamp_regresses_account(timestamp)
        {
            return Err(S::ImportedEventTimestampMustNotRegress);
        }
        // A14: insert with zero balances and the flags exactly as submitted.
        let index = u32::try_from(self.accounts.len()).expect("account store exceeds 2^32 - 1");
        self.accounts.push(AccountRecord(Account {
            reserved: 0,
            timestamp,
            ..*a
        }));
        self.account_index.insert(a.id, index);
        self.links.add_account();
        Ok(())
    }

    /// Step A13's condition: `timestamp` is at or before the newest account, or equals a
    /// transfer's timestamp. Both stores are in timestamp order.
    pub(in crate::ledger::state) fn imported_timestamp_regresses_account(
        &self,
        timestamp: u64,
    ) -> bool {
        self.accounts
            .last()
            .is_some_and(|newest| timestamp <= newest.timestamp)
            || self.transfer_timestamp_exists(timestamp)
    }

    /// Returns true when a stored account has exactly this timestamp (binary search).
    pub(in crate::ledger::state) fn account_timestamp_exists(&self, timestamp: u64) -> bool {
        let position = self
            .accounts
            .partition_point(|account| account.timestamp < timestamp);
        self.accounts
            .get(position)
            .is_some_and(|account| account.timestamp == timestamp)
    }
}
