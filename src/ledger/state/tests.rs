//! Tests of the production state machine: targeted tests of the layout-specific machinery
//! (chain rollback across chunk boundaries, snapshots, memory accounting, out-of-contract
//! inputs) below, the differential random walk against the reference model in
//! `differential`, and restore fuzzing in `restore_fuzz`. TigerBeetle's table tests run
//! against this state machine through the model's generic table runner.

mod differential;
mod restore_fuzz;

use super::{
    LedgerImage, LedgerState, NANOSECONDS_PER_SECOND, QUERY_RESULTS_MAX, Sizes, TIMESTAMP_MAX,
    TIMESTAMP_MIN,
};
use crate::ledger::{
    AMOUNT_MAX, Account, AccountFilter, AccountFilterFlags, AccountFlags, BATCH_EVENTS_MAX,
    CreateAccountStatus, CreateTransferStatus, QueryFilter, Transfer, TransferFlags,
};
use crate::testing::model_ledger as model;

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

fn linked(transfer: Transfer) -> Transfer {
    Transfer {
        flags: transfer.flags | TransferFlags::LINKED,
        ..transfer
    }
}

fn image_bytes(image: &LedgerImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    LedgerState::write_image(image, &mut bytes).expect("writing to a Vec cannot fail");
    bytes
}

/// A ledger with accounts 1 (history) and 2 created at timestamps 1 and 2.
fn two_accounts() -> LedgerState {
    let mut state = LedgerState::with_sizes(Sizes::SMALL);
    let history = Account {
        flags: AccountFlags::HISTORY,
        ..account(1)
    };
    let results = state.create_accounts(&[history, account(2)], 2);
    assert!(
        results
            .iter()
            .all(|result| result.status == CreateAccountStatus::Created)
    );
    state
}

// Goal: the state machine's private constants are the model's.
#[test]
fn constants_match_the_model() {
    assert_eq!(TIMESTAMP_MAX, model::TIMESTAMP_MAX);
    assert_eq!(TIMESTAMP_MIN, model::TIMESTAMP_MIN);
    assert_eq!(NANOSECONDS_PER_SECOND, model::NANOSECONDS_PER_SECOND);
    assert_eq!(QUERY_RESULTS_MAX, model::QUERY_RESULTS_MAX);
}

// Goal: a chain that breaks after crossing a chunk boundary of the transfer store, while an
// image holds the last chunk, restores the exact earlier state and leaves the image intact.
#[test]
fn chain_rollback_across_a_chunk_boundary_with_a_held_image() {
    const CHUNK_LEN: usize = 1 << Sizes::SMALL.chunk_shift;
    let mut state = two_accounts();
    let mut clock = 2;
    let mut next_id = 10;
    while state.transfer_count() < CHUNK_LEN - 2 {
        let room = (CHUNK_LEN - 2 - state.transfer_count()).min(BATCH_EVENTS_MAX);
        let events: Vec<Transfer> = (0..room)
            .map(|offset| transfer(next_id + offset as u128, 1, 2, 1))
            .collect();
        next_id += room as u128;
        clock += room as u64 + 1;
        state.create_transfers(&events, clock);
    }
    let image = state.image();
    let before = image_bytes(&image);
    let pending = Transfer {
        flags: TransferFlags::PENDING,
        timeout: 1,
        ..transfer(next_id, 2, 1, 5)
    };
    let chain = [
        linked(transfer(next_id + 1, 1, 2, 3)),
        linked(pending),
        linked(transfer(next_id + 2, 2, 1, 4)),
        linked(transfer(next_id + 3, 1, 2, 5)),
        transfer(next_id + 4, 1, 99, 1),
    ];
    clock += chain.len() as u64 + 1;
    let results = state.create_transfers(&chain, clock);
    assert_eq!(
        results[4].status,
        CreateTransferStatus::CreditAccountNotFound
    );
    assert!(
        results[..4]
            .iter()
            .all(|result| result.status == CreateTransferStatus::LinkedEventFailed)
    );
    assert!(image_bytes(&image) == before, "held image changed");
    state.check_invariants().unwrap();
    // Apart from the burnt id, the state equals the one before the chain.
    let restored = LedgerState::restore_with_sizes(&before, Sizes::SMALL).unwrap();
    assert_eq!(state.transfer_count(), restored.transfer_count());
    assert_eq!(
        state.lookup_accounts(&[1, 2]),
        restored.lookup_accounts(&[1, 2])
    );
    let filter = AccountFilter {
        account_id: 1,
        limit: u32::MAX,
        flags: AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS,
        ..AccountFilter::default()
    };
    assert_eq!(
        state.get_account_balances(&filter),
        restored.get_account_balances(&filter)
    );
    let retry = [chain[0], chain[1], chain[2], transfer(next_id + 3, 1, 2, 5)];
    let results = state.create_transfers(&retry, clock + 10);
    assert!(
        results
            .iter()
            .all(|result| result.status == CreateTransferStatus::Created)
    );
    state.check_invariants().unwrap();
    assert!(image_bytes(&image) == before, "held image changed");
}

// Goal: images taken at different times stay distinct snapshots, restore reproduces each,
// and the empty ledger round-trips.
#[test]
fn images_are_independent_snapshots() {
    let empty = image_bytes(&LedgerState::with_sizes(Sizes::SMALL).image());
    assert_eq!(
        empty.len() as u64,
        LedgerState::with_sizes(Sizes::SMALL)
            .image()
            .encoded_bytes()
    );
    assert!(
        image_bytes(
            &LedgerState::restore_with_sizes(&empty, Sizes::SMALL)
                .unwrap()
                .image()
        ) == empty
    );
    let mut state = two_accounts();
    let first = state.image();
    state.create_transfers(&[transfer(10, 1, 2, 7)], 10);
    let second = state.image();
    state.create_transfers(&[transfer(11, 2, 1, 3)], 20);
    assert_eq!((first.transfer_count(), second.transfer_count()), (0, 1));
    let restored_first =
        LedgerState::restore_with_sizes(&image_bytes(&first), Sizes::SMALL).unwrap();
    assert!(restored_first.lookup_transfers(&[10, 11]).is_empty());
    assert_eq!(restored_first.lookup_accounts(&[1])[0].debits_posted, 0);
    let restored = LedgerState::restore_with_sizes(&image_bytes(&second), Sizes::SMALL).unwrap();
    assert_eq!(restored.lookup_transfers(&[10, 11]).len(), 1);
    assert_eq!(restored.lookup_accounts(&[1])[0].debits_posted, 7);
    assert_eq!(image_bytes(&second).len() as u64, second.encoded_bytes());
}

// Goal: memory accounting covers the transfer store, its indexes, the per-account lists,
// the balance history and the pending statuses (the 256-bytes-per-transfer budget is
// checked by the benchmarks, which measure resident memory).
#[test]
fn memory_usage_is_reported_per_component() {
    let mut state = two_accounts();
    let events: Vec<Transfer> = (0..4000).map(|id| transfer(10 + id, 1, 2, 1)).collect();
    state.create_transfers(&events, 10_000);
    let usage = state.memory_bytes();
    assert!(usage.transfers_bytes >= 4000 * 128);
    assert!(usage.transfer_index_bytes >= 4000 * 20);
    assert!(usage.account_transfers_bytes >= 4000 * 8);
    assert!(usage.history_bytes >= 4000 * 72);
    assert!(usage.pending_statuses_bytes >= 4000);
    assert_eq!(usage.expiry_queue_bytes, 0);
    assert!(usage.total_bytes() > usage.transfers_bytes);
}

// Goal: out-of-contract inputs never panic and still agree with the model here: batch
// timestamps whose slots underflow to 0, timestamps beyond 2^63, and extreme amounts.
#[test]
fn out_of_contract_timestamps_do_not_panic() {
    let mut state = LedgerState::with_sizes(Sizes::SMALL);
    let mut reference = model::ModelLedger::new();
    let accounts = [account(1), account(2), account(u128::MAX)];
    let results = state.create_accounts(&accounts, 1);
    assert_eq!(results, reference.create_accounts(&accounts, 1));
    assert_eq!(results[2].status, CreateAccountStatus::IdMustNotBeIntMax);
    let pending = Transfer {
        flags: TransferFlags::PENDING,
        timeout: u32::MAX,
        ..transfer(10, 1, 2, AMOUNT_MAX)
    };
    let results = state.create_transfers(&[pending], u64::MAX);
    assert_eq!(results, reference.create_transfers(&[pending], u64::MAX));
    assert_eq!(results[0].status, CreateTransferStatus::OverflowsTimeout);
    state.expire_pending(u64::MAX);
    let filter = QueryFilter {
        limit: u32::MAX,
        ..QueryFilter::default()
    };
    assert_eq!(
        state.query_accounts(&filter),
        reference.query_accounts(&filter)
    );
    assert_eq!(
        state.lookup_accounts(&[1, 2]),
        reference.lookup_accounts(&[1, 2])
    );
    assert!(state.lookup_transfers(&[0, u128::MAX]).is_empty());
}

// Goal: a batch above BATCH_EVENTS_MAX is the caller's error and panics.
#[test]
#[should_panic(expected = "BATCH_EVENTS_MAX")]
fn batch_above_maximum_panics() {
    let mut state = LedgerState::with_sizes(Sizes::SMALL);
    let events = vec![account(1); BATCH_EVENTS_MAX + 1];
    state.create_accounts(&events, 1_000_000);
}

// Goal: expiry runs in (expiry instant, timestamp) order across batches, releases balances,
// and a resolved transfer leaves the queue.
#[test]
fn expiry_queue_follows_the_deterministic_rule() {
    let mut state = two_accounts();
    let second = NANOSECONDS_PER_SECOND;
    let pending = |id: u128, amount: u128, timeout: u32| Transfer {
        flags: TransferFlags::PENDING,
        timeout,
        ..transfer(id, 1, 2, amount)
    };
    state.create_transfers(
        &[pending(10, 5, 2), pending(11, 7, 1), pending(12, 9, 1)],
        12,
    );
    let post = Transfer {
        pending_id: 12,
        flags: TransferFlags::POST_PENDING_TRANSFER,
        ..transfer(13, 0, 0, AMOUNT_MAX)
    };
    state.create_transfers(&[post], 20);
    assert_eq!(state.expiry_queue.len(), 2);
    state.expire_pending(11 + second);
    assert_eq!(state.lookup_accounts(&[1])[0].debits_pending, 5);
    state.expire_pending(10 + 2 * second);
    assert_eq!(state.lookup_accounts(&[1])[0].debits_pending, 0);
    assert!(state.expiry_queue.is_empty());
    state.check_invariants().unwrap();
}

// Goal: states and images can move between threads, as the engine needs (it takes an image
// under a lock and writes it out elsewhere).
#[test]
fn states_and_images_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LedgerState>();
    assert_send_sync::<LedgerImage>();
}
