//! The reference rules of `create_accounts`: steps A1–A14.

use super::*;

/// Steps A1–A14: validates and inserts one account with event timestamp `timestamp`.
pub(super) fn create_account(
    state: &mut LedgerState,
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
    if let Some(existing) = state.accounts.get(&a.id) {
        return Err(account_exists_status(a, existing));
    }
    // A6–A12: field checks.
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
    // A13: an imported account must come after every account and share no transfer's
    // timestamp. Deliberately after the idempotency checks, so imports can be resubmitted.
    if a.flags.contains(AccountFlags::IMPORTED)
        && imported_timestamp_regresses_account(state, timestamp)
    {
        return Err(S::ImportedEventTimestampMustNotRegress);
    }
    // A14: insert with zero balances and the flags exactly as submitted.
    let account = Account {
        reserved: 0,
        timestamp,
        ..*a
    };
    state.accounts.insert(account.id, account);
    Ok(())
}

/// Step A5: compares a resubmitted account with the stored one in TigerBeetle's order.
/// Flags are compared in full against the current flags (so `closed` counts); balances and
/// timestamps are never compared.
pub(super) fn account_exists_status(a: &Account, existing: &Account) -> CreateAccountStatus {
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

/// Step A13's condition: `timestamp` is at or before the newest account, or equals a
/// transfer's timestamp.
pub(super) fn imported_timestamp_regresses_account(state: &LedgerState, timestamp: u64) -> bool {
    let newest_account = state
        .accounts
        .values()
        .map(|account| account.timestamp)
        .max();
    newest_account.is_some_and(|newest| timestamp <= newest)
        || state
            .transfers
            .values()
            .any(|transfer| transfer.timestamp == timestamp)
}
