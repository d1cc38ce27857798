//! A seeded random walk over the model: random batches of accounts and transfers drawn from
//! small id spaces (so that duplicates, posts of real pending transfers, chains and limits
//! collide often), with the invariants and the result contract checked after every batch.
//!
//! The generator is seeded, so every run explores the same walks.

use std::collections::BTreeSet;

use super::super::ModelLedger;
use crate::ledger::{
    AMOUNT_MAX, Account, AccountFlags, CreateAccountStatus, CreateTransferStatus, Transfer,
    TransferFlags,
};
use crate::rng::SplitMix64;

/// The walk's draws, from a seeded SplitMix64.
struct Random(SplitMix64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn id_below(&mut self, bound: u64) -> u128 {
        u128::from(self.below(bound))
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.below(choices.len() as u64) as usize]
    }
}

/// An id from a small space, occasionally one of the invalid ids 0 and 2^128 − 1.
fn random_id(random: &mut Random, base: u128, count: u64) -> u128 {
    match random.below(50) {
        0 => 0,
        1 => u128::MAX,
        _ => base + random.id_below(count),
    }
}

/// An imported timestamp near the clock, occasionally out of range or in the future.
fn imported_timestamp(random: &mut Random, clock: u64) -> u64 {
    match random.below(40) {
        0 => 0,
        1 => u64::MAX,
        2 => clock + 1,
        _ => clock.saturating_sub(random.below(40)),
    }
}

fn random_account(random: &mut Random, imported_batch: bool, clock: u64) -> Account {
    let mut flags = AccountFlags::empty();
    for (flag, percent) in [
        (AccountFlags::LINKED, 15),
        (AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS, 25),
        (AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS, 15),
        (AccountFlags::HISTORY, 30),
        (AccountFlags::CLOSED, 3),
        (AccountFlags(0x40), 2),
    ] {
        if random.chance(percent) {
            flags = flags | flag;
        }
    }
    let imported = if random.chance(5) {
        !imported_batch
    } else {
        imported_batch
    };
    if imported {
        flags = flags | AccountFlags::IMPORTED;
    }
    let mut balances = [0u128; 4];
    if random.chance(4) {
        balances[random.below(4) as usize] = 1;
    }
    Account {
        id: random_id(random, 1, 10),
        debits_pending: balances[0],
        debits_posted: balances[1],
        credits_pending: balances[2],
        credits_posted: balances[3],
        ledger: random.pick(&[1, 1, 1, 2, 0]),
        code: random.pick(&[1, 1, 2, 0]),
        user_data_128: random.pick(&[0, 0, 9]),
        user_data_64: random.pick(&[0, 0, 7]),
        user_data_32: random.pick(&[0, 0, 5]),
        reserved: if random.chance(2) { 1 } else { 0 },
        timestamp: if imported {
            imported_timestamp(random, clock)
        } else if random.chance(2) {
            5
        } else {
            0
        },
        flags,
    }
}

/// A transfer of a random kind: single-phase, pending, post or void, with occasional extra
/// flags that make it invalid.
fn random_transfer(
    random: &mut Random,
    imported_batch: bool,
    clock: u64,
    pending_ids: &[u128],
) -> Transfer {
    let kind = random.pick(&[
        TransferFlags::empty(),
        TransferFlags::PENDING,
        TransferFlags::PENDING,
        TransferFlags::POST_PENDING_TRANSFER,
        TransferFlags::POST_PENDING_TRANSFER,
        TransferFlags::VOID_PENDING_TRANSFER,
    ]);
    let resolves = kind != TransferFlags::empty() && kind != TransferFlags::PENDING;
    let mut flags = kind;
    let extras: &[(TransferFlags, u64)] = if resolves {
        &[
            (TransferFlags::LINKED, 20),
            (TransferFlags::PENDING, 3),
            (TransferFlags::BALANCING_DEBIT, 2),
            (TransferFlags::VOID_PENDING_TRANSFER, 2),
        ]
    } else {
        &[
            (TransferFlags::LINKED, 20),
            (TransferFlags::BALANCING_DEBIT, 12),
            (TransferFlags::BALANCING_CREDIT, 12),
            (TransferFlags::CLOSING_DEBIT, 4),
            (TransferFlags::CLOSING_CREDIT, 4),
            (TransferFlags(0x200), 1),
        ]
    };
    for (flag, percent) in extras {
        if random.chance(*percent) {
            flags = flags | *flag;
        }
    }
    let imported = if random.chance(5) {
        !imported_batch
    } else {
        imported_batch
    };
    if imported {
        flags = flags | TransferFlags::IMPORTED;
    }
    let inherit = |random: &mut Random, value: u128| {
        if resolves && random.chance(70) {
            0
        } else {
            value
        }
    };
    let debit_account_id = random_id(random, 1, 10);
    let credit_account_id = random_id(random, 1, 10);
    let ledger = random.pick(&[1u32, 1, 1, 2, 0]);
    let code = random.pick(&[1u16, 1, 2, 0]);
    Transfer {
        id: random_id(random, 100, 400),
        debit_account_id: inherit(random, debit_account_id),
        credit_account_id: inherit(random, credit_account_id),
        amount: random.pick(&[0, 1, 2, 5, 10, 100, AMOUNT_MAX, AMOUNT_MAX - 1, 1 << 127]),
        pending_id: if !resolves && !random.chance(2) {
            0
        } else if !pending_ids.is_empty() && random.chance(80) {
            random.pick(pending_ids)
        } else {
            random_id(random, 100, 400)
        },
        timeout: if (flags.contains(TransferFlags::PENDING) || random.chance(2))
            && random.chance(40)
        {
            random.pick(&[1, 2, 3])
        } else {
            0
        },
        ledger: inherit(random, u128::from(ledger)) as u32,
        code: inherit(random, u128::from(code)) as u16,
        user_data_128: random.pick(&[0, 0, 9]),
        user_data_64: random.pick(&[0, 0, 7]),
        user_data_32: random.pick(&[0, 0, 3]),
        timestamp: if imported {
            imported_timestamp(random, clock)
        } else if random.chance(1) {
            5
        } else {
            0
        },
        flags,
    }
}

/// Resubmits an earlier event, either unchanged or with one field changed, to exercise the
/// idempotency (`exists*`) rules.
fn resubmission(random: &mut Random, submitted: &[Transfer]) -> Transfer {
    let mut event = random.pick(submitted);
    match random.below(8) {
        0 => event.amount = random.pick(&[0, 1, 5, AMOUNT_MAX]),
        1 => event.user_data_128 = random.pick(&[0, 9, 10]),
        2 => event.user_data_64 = random.pick(&[0, 7, 8]),
        3 => event.user_data_32 = random.pick(&[0, 3, 4]),
        4 => event.ledger = random.pick(&[0, 1, 2]),
        5 => event.code = random.pick(&[0, 1, 2]),
        _ => {}
    }
    event
}

/// Checks the per-result contract of an account batch: one result per event, and a
/// `created` account is stored with the reported timestamp. (An `exists` may name an object
/// that its own chain rolled back, so it is not looked up.)
fn check_account_results(
    ledger: &ModelLedger,
    events: &[Account],
    results: &[(CreateAccountStatus, u64)],
) {
    assert_eq!(events.len(), results.len());
    for (event, (status, timestamp)) in events.iter().zip(results) {
        if *status == CreateAccountStatus::Created {
            assert_eq!(ledger.lookup_accounts(&[event.id])[0].timestamp, *timestamp);
        }
    }
}

/// The same for a transfer batch, plus: an id that failed transiently is never stored.
fn check_transfer_results(
    ledger: &ModelLedger,
    events: &[Transfer],
    results: &[(CreateTransferStatus, u64)],
) {
    assert_eq!(events.len(), results.len());
    for (event, (status, timestamp)) in events.iter().zip(results) {
        if *status == CreateTransferStatus::Created {
            assert_eq!(
                ledger.lookup_transfers(&[event.id])[0].timestamp,
                *timestamp
            );
        }
        if status.is_transient() {
            assert!(
                ledger.lookup_transfers(&[event.id]).is_empty(),
                "{status:?} {event:?}"
            );
        }
    }
}

fn walk(seed: u64, batches: usize, seen: &mut BTreeSet<u32>) {
    let mut random = Random(SplitMix64::new(seed));
    let mut ledger = ModelLedger::new();
    let mut clock: u64 = 1_000;
    let mut pending_ids: Vec<u128> = Vec::new();
    let mut submitted: Vec<Transfer> = Vec::new();
    // Start with valid accounts 1..=7, so that most transfers reach the deeper checks.
    let accounts: Vec<Account> = (1..=7)
        .map(|id| {
            let limit = random.pick(&[
                AccountFlags::empty(),
                AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
                AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
            ]);
            let history = if random.chance(50) {
                AccountFlags::HISTORY
            } else {
                AccountFlags::empty()
            };
            Account {
                id,
                ledger: 1,
                code: 1,
                flags: limit | history,
                ..Account::default()
            }
        })
        .collect();
    ledger.create_accounts(&accounts, clock);
    for _ in 0..batches {
        let count = random.below(9) as usize;
        // Jump by up to ~3 seconds, so timeouts of 1–3 s expire now and then.
        clock += count as u64
            + 1
            + if random.chance(30) {
                random.below(3_500_000_000)
            } else {
                0
            };
        if random.chance(35) {
            let imported_batch = random.chance(20);
            let events: Vec<Account> = (0..count)
                .map(|_| random_account(&mut random, imported_batch, clock))
                .collect();
            let results = ledger.create_accounts(&events, clock);
            let statuses: Vec<_> = results.iter().map(|r| (r.status, r.timestamp)).collect();
            check_account_results(&ledger, &events, &statuses);
            seen.extend(results.iter().map(|r| r.status.as_u32() | ACCOUNT_TAG));
        } else {
            let imported_batch = random.chance(10);
            let events: Vec<Transfer> = (0..count)
                .map(|_| {
                    if !submitted.is_empty() && random.chance(20) {
                        resubmission(&mut random, &submitted)
                    } else {
                        random_transfer(&mut random, imported_batch, clock, &pending_ids)
                    }
                })
                .collect();
            submitted.extend(events.iter().copied());
            let results = ledger.create_transfers(&events, clock);
            let statuses: Vec<_> = results.iter().map(|r| (r.status, r.timestamp)).collect();
            check_transfer_results(&ledger, &events, &statuses);
            seen.extend(results.iter().map(|r| r.status.as_u32()));
            for (event, result) in events.iter().zip(&results) {
                if result.status == CreateTransferStatus::Created
                    && event.flags.contains(TransferFlags::PENDING)
                {
                    pending_ids.push(event.id);
                }
            }
        }
        if let Err(violation) = ledger.check_invariants() {
            panic!("seed {seed}: invariant violated: {violation}");
        }
    }
}

// Goal: random batches never break the ledger invariants or the dense result contract, and
// the walk reaches (almost) every status.
#[test]
fn random_walks_keep_invariants() {
    let mut seen = BTreeSet::new();
    for seed in 0..40 {
        walk(seed, 300, &mut seen);
    }
    let missing: Vec<CreateTransferStatus> = CreateTransferStatus::ALL
        .iter()
        .copied()
        .filter(|status| !seen.contains(&status.as_u32()))
        .collect();
    let missing_accounts: Vec<CreateAccountStatus> = CreateAccountStatus::ALL
        .iter()
        .copied()
        .filter(|status| !seen.contains(&(status.as_u32() | ACCOUNT_TAG)))
        .collect();
    // The walk stays far below 2^63 ns and never imports an account between an imported
    // transfer's accounts and the transfer, so these three are left to the table tests.
    let unreachable = [
        CreateTransferStatus::ImportedEventTimestampMustPostdateDebitAccount,
        CreateTransferStatus::ImportedEventTimestampMustPostdateCreditAccount,
        CreateTransferStatus::OverflowsTimeout,
    ];
    assert!(
        missing.iter().all(|status| unreachable.contains(status)),
        "never produced: {missing:?}"
    );
    assert!(
        missing_accounts.is_empty(),
        "never produced: {missing_accounts:?}"
    );
}

/// Distinguishes account statuses from transfer statuses in the coverage set.
const ACCOUNT_TAG: u32 = 1 << 16;
