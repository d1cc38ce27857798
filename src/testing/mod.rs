//! Support shared by tests, fuzzers and benchmarks: seeds, case counts,
//! and re-exports of the simulators. Not part of the stable API.

use crate::rng::SplitMix64;
use crate::storage::clock::{Clock, SystemClock};

pub use crate::rng::SplitMix64 as Rng;
pub use crate::storage::clock::SimClock;
pub use crate::storage::io::{CrashMode, SimIo};

/// The base seed of a randomized test: `SEED` from the environment (to
/// replay a failure), otherwise a fresh one. Printed so a run can be replayed.
pub fn seed_from_env() -> u64 {
    let seed = match std::env::var("SEED") {
        Ok(value) => match value.trim().parse() {
            Ok(seed) => seed,
            // A malformed SEED is a mistake of whoever runs the tests.
            Err(_) => panic!("SEED must be a u64, got {value:?}"),
        },
        Err(_) => {
            let now = SystemClock.realtime_ns();
            SplitMix64::new(now ^ u64::from(std::process::id())).next_u64()
        }
    };
    eprintln!("seed: SEED={seed}");
    seed
}

/// How many cases a randomized test runs: `default`, or `TEST_CASES` from
/// the environment (set it higher for a long run, or to 1 with `SEED` to
/// replay a single case).
pub fn cases(default: u64) -> u64 {
    std::env::var("TEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

mod choices;
pub mod fuzz;
mod journal;
pub mod ledger_gen;
pub mod ledger_walk;
pub mod model_ledger;
pub mod wal_model;

pub use choices::{ByteChoices, Choices};
pub use journal::{Entry, Journal};
