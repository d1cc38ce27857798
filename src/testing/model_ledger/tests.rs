//! Tests of the reference model: TigerBeetle 0.17's table tests ported one to one (in
//! `tigerbeetle_tables`), targeted tests of the model's documented decisions (below), and a
//! seeded random walk that checks the invariants (in `random_walk`).

use crate::ledger as types;

mod random_walk;
mod table;
mod tigerbeetle_tables;

use super::{ModelLedger, QUERY_RESULTS_MAX, TIMESTAMP_MAX};
use types::{
    AMOUNT_MAX, Account, AccountFilter, AccountFilterFlags, AccountFlags, BATCH_EVENTS_MAX,
    CreateAccountResult, CreateAccountStatus, CreateTransferResult, CreateTransferStatus,
    QueryFilter, Transfer, TransferFlags,
};

fn account(id: u128) -> Account {
    Account {
        id,
        ledger: 1,
        code: 1,
        ..Account::default()
    }
}

fn transfer(id: u128, debit_account_id: u128, credit_account_id: u128, amount: u128) -> Transfer {
    Transfer {
        id,
        debit_account_id,
        credit_account_id,
        amount,
        ledger: 1,
        code: 1,
        ..Transfer::default()
    }
}

fn pending(id: u128, amount: u128, timeout: u32) -> Transfer {
    Transfer {
        timeout,
        flags: TransferFlags::PENDING,
        ..transfer(id, 1, 2, amount)
    }
}

fn post(id: u128, pending_id: u128, amount: u128) -> Transfer {
    Transfer {
        pending_id,
        flags: TransferFlags::POST_PENDING_TRANSFER,
        ..transfer(id, 0, 0, amount)
    }
}

fn void(id: u128, pending_id: u128) -> Transfer {
    Transfer {
        pending_id,
        flags: TransferFlags::VOID_PENDING_TRANSFER,
        ..transfer(id, 0, 0, 0)
    }
}

/// A ledger with accounts 1 and 2 created at timestamps 1 and 2.
fn two_accounts() -> ModelLedger {
    let mut ledger = ModelLedger::new();
    let results = ledger.create_accounts(&[account(1), account(2)], 2);
    assert!(
        results
            .iter()
            .all(|result| result.status == CreateAccountStatus::Created)
    );
    ledger
}

fn statuses(results: &[CreateTransferResult]) -> Vec<CreateTransferStatus> {
    results.iter().map(|result| result.status).collect()
}

const SECOND: u64 = 1_000_000_000;

// Goal: a batch above BATCH_EVENTS_MAX is the caller's error and panics.
#[test]
#[should_panic(expected = "BATCH_EVENTS_MAX")]
fn batch_above_maximum_panics() {
    let mut ledger = ModelLedger::new();
    let events = vec![account(1); BATCH_EVENTS_MAX + 1];
    ledger.create_accounts(&events, 1_000_000);
}

// Goal: a batch of exactly BATCH_EVENTS_MAX events is accepted with one result per event.
#[test]
fn batch_at_maximum_is_accepted() {
    let mut ledger = ModelLedger::new();
    let events: Vec<Account> = (1..=BATCH_EVENTS_MAX as u128).map(account).collect();
    let results = ledger.create_accounts(&events, 1_000_000);
    assert_eq!(results.len(), BATCH_EVENTS_MAX);
    assert_eq!(
        results[0].timestamp,
        1_000_000 - BATCH_EVENTS_MAX as u64 + 1
    );
    assert_eq!(results[BATCH_EVENTS_MAX - 1].timestamp, 1_000_000);
    assert!(ledger.check_invariants().is_ok());
}

// Goal: an empty batch returns nothing and still runs the expiry at the batch timestamp.
#[test]
fn empty_batch_runs_expiry_at_batch_timestamp() {
    let mut ledger = two_accounts();
    ledger.create_transfers(&[pending(10, 5, 1)], 10);
    assert!(ledger.create_transfers(&[], 10 + SECOND - 1).is_empty());
    assert_eq!(ledger.lookup_accounts(&[1])[0].debits_pending, 5);
    assert!(ledger.create_accounts(&[], 10 + SECOND).is_empty());
    assert_eq!(ledger.lookup_accounts(&[1])[0].debits_pending, 0);
}

// Goal: expiry runs before a batch for transfers due at or before its first event's timestamp.
#[test]
fn expiry_runs_before_batch_up_to_first_event_timestamp() {
    let mut ledger = two_accounts();
    ledger.create_transfers(&[pending(10, 5, 1), pending(11, 7, 2)], 11);
    // Transfer 10 expires at 10 + 1 s. A two-event batch whose first event is at that instant
    // releases it first; transfer 11 (due at 11 + 2 s) stays.
    let results = ledger.create_accounts(&[account(3), account(4)], 10 + SECOND + 1);
    assert_eq!(results[0].timestamp, 10 + SECOND);
    let debit_account = ledger.lookup_accounts(&[1])[0];
    assert_eq!(debit_account.debits_pending, 7);
    assert!(ledger.check_invariants().is_ok());
}

// Goal: a post at or after the expiry instant fails even before the release ran, and the
// release still happens at the next batch; the failure burns no id.
#[test]
fn post_after_expiry_instant_fails_before_release() {
    let mut ledger = two_accounts();
    ledger.create_transfers(&[pending(10, 5, 1)], 10);
    // Event 0 at 10 + 1 s - 1 is before expiry: nothing is released. Event 1 (the post) is at
    // the expiry instant itself.
    let results = ledger.create_transfers(
        &[transfer(11, 1, 2, 1), post(12, 10, AMOUNT_MAX)],
        10 + SECOND,
    );
    assert_eq!(
        statuses(&results),
        vec![
            CreateTransferStatus::Created,
            CreateTransferStatus::PendingTransferExpired
        ]
    );
    assert_eq!(ledger.lookup_accounts(&[1])[0].debits_pending, 5);
    let results = ledger.create_transfers(&[post(12, 10, AMOUNT_MAX), void(13, 10)], 20 * SECOND);
    assert_eq!(
        statuses(&results),
        vec![
            CreateTransferStatus::PendingTransferExpired,
            CreateTransferStatus::PendingTransferExpired
        ]
    );
    assert_eq!(ledger.lookup_accounts(&[1])[0].debits_pending, 0);
    assert!(ledger.check_invariants().is_ok());
}

// Goal: expiry of a closing pending transfer releases it and reopens the closed account.
#[test]
fn expiry_of_closing_transfer_reopens_account() {
    let mut ledger = two_accounts();
    let closing = Transfer {
        flags: TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT,
        ..pending(11, 3, 1)
    };
    ledger.create_transfers(&[pending(10, 4, 3), closing], 11);
    assert!(
        ledger.lookup_accounts(&[1])[0]
            .flags
            .contains(AccountFlags::CLOSED)
    );
    ledger.expire_pending(11 + SECOND);
    let debit_account = ledger.lookup_accounts(&[1])[0];
    assert_eq!(debit_account.debits_pending, 4);
    assert!(!debit_account.flags.contains(AccountFlags::CLOSED));
    let results = ledger.create_transfers(&[void(12, 11)], 11 + 2 * SECOND);
    assert_eq!(
        statuses(&results),
        vec![CreateTransferStatus::PendingTransferExpired]
    );
    assert!(ledger.check_invariants().is_ok());
}

// Goal: a transient failure inside a linked chain burns the id, the rolled-back members'
// ids stay usable, and the breaking event reports its own status with its slot.
#[test]
fn transient_failure_in_chain_burns_only_the_breaking_id() {
    let mut ledger = two_accounts();
    let linked = |t: Transfer| Transfer {
        flags: t.flags | TransferFlags::LINKED,
        ..t
    };
    let results =
        ledger.create_transfers(&[linked(transfer(10, 1, 2, 1)), transfer(11, 1, 9, 1)], 20);
    assert_eq!(
        results,
        vec![
            CreateTransferResult {
                timestamp: 19,
                status: CreateTransferStatus::LinkedEventFailed
            },
            CreateTransferResult {
                timestamp: 20,
                status: CreateTransferStatus::CreditAccountNotFound
            },
        ]
    );
    let results = ledger.create_transfers(&[transfer(10, 1, 2, 1), transfer(11, 1, 2, 1)], 30);
    assert_eq!(
        statuses(&results),
        vec![
            CreateTransferStatus::Created,
            CreateTransferStatus::IdAlreadyFailed
        ]
    );
    assert!(ledger.lookup_transfers(&[11]).is_empty());
    assert!(ledger.check_invariants().is_ok());
}

// Goal: a burnt id used as a pending_id is "not found", and that failure burns the post's id.
#[test]
fn burnt_id_as_pending_id_is_not_found() {
    let mut ledger = two_accounts();
    ledger.create_transfers(&[transfer(10, 1, 9, 1)], 10);
    let results = ledger.create_transfers(&[post(11, 10, 1), post(11, 10, 1)], 20);
    assert_eq!(
        statuses(&results),
        vec![
            CreateTransferStatus::PendingTransferNotFound,
            CreateTransferStatus::IdAlreadyFailed
        ]
    );
}

// Goal: `exists` inside a chain reports the timestamp of the object created earlier in the
// same chain, although that object is rolled back.
#[test]
fn exists_in_chain_reports_rolled_back_timestamp() {
    let mut ledger = ModelLedger::new();
    let linked = Account {
        flags: AccountFlags::LINKED,
        ..account(1)
    };
    let results = ledger.create_accounts(&[linked, linked, account(2)], 103);
    assert_eq!(
        results,
        vec![
            CreateAccountResult {
                timestamp: 101,
                status: CreateAccountStatus::LinkedEventFailed
            },
            CreateAccountResult {
                timestamp: 101,
                status: CreateAccountStatus::Exists
            },
            CreateAccountResult {
                timestamp: 103,
                status: CreateAccountStatus::LinkedEventFailed
            },
        ]
    );
    assert!(ledger.lookup_accounts(&[1, 2]).is_empty());
}

// Goal: decision D3 — linked_event_failed after the break reports the user timestamp for an
// imported event and the slot for a non-imported one.
#[test]
fn linked_event_failed_after_break_timestamps() {
    let mut ledger = ModelLedger::new();
    let imported = |id: u128, timestamp: u64, linked: bool| Account {
        flags: AccountFlags::IMPORTED
            | if linked {
                AccountFlags::LINKED
            } else {
                AccountFlags::empty()
            },
        timestamp,
        ..account(id)
    };
    let results = ledger.create_accounts(&[imported(1, 0, true), imported(2, 7, false)], 100);
    assert_eq!(
        results[0],
        CreateAccountResult {
            timestamp: 99,
            status: CreateAccountStatus::ImportedEventTimestampOutOfRange
        }
    );
    assert_eq!(
        results[1],
        CreateAccountResult {
            timestamp: 7,
            status: CreateAccountStatus::LinkedEventFailed
        }
    );

    let linked_bad = Account {
        flags: AccountFlags::LINKED,
        ledger: 0,
        ..account(1)
    };
    let stamped = Account {
        timestamp: 5,
        ..account(2)
    };
    let results = ledger.create_accounts(&[linked_bad, stamped], 200);
    assert_eq!(
        results[1],
        CreateAccountResult {
            timestamp: 200,
            status: CreateAccountStatus::LinkedEventFailed
        }
    );
}

// Goal: the query limit is capped at QUERY_RESULTS_MAX and an invalid filter returns nothing.
#[test]
fn query_limit_is_capped() {
    let mut ledger = ModelLedger::new();
    let events: Vec<Account> = (1..=QUERY_RESULTS_MAX as u128 + 5).map(account).collect();
    let (first, second) = events.split_at(BATCH_EVENTS_MAX);
    ledger.create_accounts(first, 10_000);
    ledger.create_accounts(second, 20_000);
    let filter = QueryFilter {
        limit: u32::MAX,
        ..QueryFilter::default()
    };
    assert_eq!(ledger.query_accounts(&filter).len(), QUERY_RESULTS_MAX);
    let filter = QueryFilter {
        limit: 1,
        timestamp_min: TIMESTAMP_MAX + 1,
        ..QueryFilter::default()
    };
    assert!(ledger.query_accounts(&filter).is_empty());
    let filter = QueryFilter {
        limit: 1,
        reserved: [0, 0, 1, 0, 0, 0],
        ..QueryFilter::default()
    };
    assert!(ledger.query_accounts(&filter).is_empty());
}

// Goal: account filters reject padding flags, reserved bytes and out-of-range timestamps.
#[test]
fn account_filter_validation() {
    let mut ledger = two_accounts();
    ledger.create_transfers(&[transfer(10, 1, 2, 1)], 10);
    let valid = AccountFilter {
        account_id: 1,
        limit: 10,
        flags: AccountFilterFlags::DEBITS,
        ..AccountFilter::default()
    };
    assert_eq!(ledger.get_account_transfers(&valid).len(), 1);
    let mut reserved = valid;
    reserved.reserved[0] = 1;
    let invalid = [
        AccountFilter {
            flags: AccountFilterFlags(AccountFilterFlags::DEBITS.0 | 8),
            ..valid
        },
        reserved,
        AccountFilter {
            timestamp_max: u64::MAX,
            ..valid
        },
        AccountFilter {
            timestamp_min: TIMESTAMP_MAX + 1,
            ..valid
        },
        AccountFilter {
            account_id: u128::MAX,
            ..valid
        },
    ];
    for filter in invalid {
        assert!(
            ledger.get_account_transfers(&filter).is_empty(),
            "{filter:?}"
        );
    }
}

// Goal: a zero-amount ordinary transfer is stored and produces a balance-history row even
// though the balances do not change; expiries produce no history row.
#[test]
fn zero_amount_and_expiry_history_rows() {
    let mut ledger = ModelLedger::new();
    let history = Account {
        flags: AccountFlags::HISTORY,
        ..account(1)
    };
    ledger.create_accounts(&[history, account(2)], 2);
    ledger.create_transfers(&[transfer(10, 1, 2, 0), pending(11, 4, 1)], 11);
    ledger.expire_pending(11 + SECOND);
    let filter = AccountFilter {
        account_id: 1,
        limit: 10,
        flags: AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS,
        ..AccountFilter::default()
    };
    let rows = ledger.get_account_balances(&filter);
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].timestamp, rows[0].debits_pending), (10, 0));
    assert_eq!((rows[1].timestamp, rows[1].debits_pending), (11, 4));
    assert_eq!(ledger.lookup_accounts(&[1])[0].debits_pending, 0);
}

// Goal: resubmitting a post with the exact posted amount matches one sent with AMOUNT_MAX,
// and a zero-amount post posts nothing and releases the reservation.
#[test]
fn post_amount_sentinels() {
    let mut ledger = two_accounts();
    ledger.create_transfers(&[pending(10, 5, 0), pending(11, 5, 0)], 11);
    let results = ledger.create_transfers(
        &[post(12, 10, AMOUNT_MAX), post(12, 10, 5), post(13, 11, 0)],
        23,
    );
    assert_eq!(
        statuses(&results),
        vec![
            CreateTransferStatus::Created,
            CreateTransferStatus::Exists,
            CreateTransferStatus::Created
        ]
    );
    let debit_account = ledger.lookup_accounts(&[1])[0];
    assert_eq!(
        (debit_account.debits_pending, debit_account.debits_posted),
        (0, 5)
    );
    assert_eq!(ledger.lookup_transfers(&[13])[0].amount, 0);
    assert!(ledger.check_invariants().is_ok());
}

// Goal: out-of-contract timestamps (underflowing slots, values above 2^63 − 1) never panic.
#[test]
fn out_of_contract_timestamps_do_not_panic() {
    let mut ledger = ModelLedger::new();
    let results = ledger.create_accounts(&[account(1), account(2), account(3)], 1);
    assert_eq!(results.len(), 3);
    let results = ledger.create_transfers(&[pending(10, 1, u32::MAX)], u64::MAX);
    assert_eq!(results[0].status, CreateTransferStatus::OverflowsTimeout);
    ledger.expire_pending(u64::MAX);
}
