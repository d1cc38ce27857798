//! Differential property tests: seeded walks (see `testing::ledger_walk`)
//! over the reference model and `LedgerState`, compared after every batch.
//!
//! Each walk prints its seed and length. `SEED=<n>` replays only that seed,
//! `TEST_CASES=<n>` runs seeds `0..n` (at least 128), and `BATCHES=<n>` sets
//! the number of batches per walk, so a failing walk
//! replays with `SEED=<seed> BATCHES=<batches> cargo test random_batches_match_the_model`.

use std::collections::BTreeSet;

use crate::ledger::{CreateAccountStatus, CreateTransferStatus};
use crate::testing::ledger_walk::{ACCOUNT_TAG, walk};

/// Short walks in a default `cargo test` run (`TEST_CASES` raises it).
const SEEDS: u64 = 128;

/// Batches per short walk in a default run.
const BATCHES: usize = 200;

/// Long walks (seeds `LONG_SEED_BASE..`), which build up larger ledgers.
const LONG_SEEDS: u64 = 4;

/// The first seed of the long walks.
const LONG_SEED_BASE: u64 = 1_000_000;

/// Batches per long walk.
const LONG_BATCHES: usize = 2_000;

/// Reads a numeric environment variable.
fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

// Goal: the production state machine gives the model's results, state and query answers
// over thousands of random batches, also after snapshot round trips; the walks reach
// (almost) every status.
#[test]
fn random_batches_match_the_model() {
    let batches = env_number("BATCHES").map_or(BATCHES, |n| n as usize);
    let mut seen = BTreeSet::new();
    if let Some(seed) = env_number("SEED") {
        walk(seed, batches, &mut seen);
        return;
    }
    // Fewer than `SEEDS` walks would not reach every status checked below.
    for seed in 0..crate::testing::cases(SEEDS).max(SEEDS) {
        walk(seed, batches, &mut seen);
    }
    // Reaching it needs an imported transfer stamped between the creation of its debit and
    // credit accounts and after every transfer, which random batches rarely produce. The
    // ported table `imported_events_timestamp` covers it for LedgerState.
    let rare = [CreateTransferStatus::ImportedEventTimestampMustPostdateCreditAccount];
    let missing: Vec<CreateTransferStatus> = CreateTransferStatus::ALL
        .iter()
        .copied()
        .filter(|status| !seen.contains(&status.as_u32()) && !rare.contains(status))
        .collect();
    let missing_accounts: Vec<CreateAccountStatus> = CreateAccountStatus::ALL
        .iter()
        .copied()
        .filter(|status| !seen.contains(&(status.as_u32() | ACCOUNT_TAG)))
        .collect();
    assert!(missing.is_empty(), "never produced: {missing:?}");
    assert!(
        missing_accounts.is_empty(),
        "never produced: {missing_accounts:?}"
    );
}

// Goal: the same over a few long walks, whose ledgers grow to thousands of transfers, so that
// chains, expiries, flushes of the account links and snapshots meet a larger state.
#[test]
fn long_random_walks_match_the_model() {
    if env_number("SEED").is_some() {
        return;
    }
    let mut seen = BTreeSet::new();
    for seed in LONG_SEED_BASE..LONG_SEED_BASE + LONG_SEEDS {
        walk(seed, LONG_BATCHES, &mut seen);
    }
}
