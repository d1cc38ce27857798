//! The state machine alone: 10,000,000 transfers (1,222 batches of 8189 between 10,000
//! accounts, uniform) applied to a `LedgerState` with no log, no snapshots and no other
//! thread. Prints the rate and the batch latency percentiles and lists the slowest batches,
//! so a stall can be told apart from the storage around it (`syncpay benchmark` runs the
//! same shape through the whole engine).
//!
//! Run: `cargo bench --bench apply` (`APPLY_BATCHES=<n>` changes the batch count).

use std::time::{Duration, Instant};

use syncpay::ledger::LedgerState;
use syncpay::{Account, Transfer};

const ACCOUNTS: u128 = 10_000;
const BATCH: usize = 8189;

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let batches: usize = std::env::var("APPLY_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1222);
    let mut state = LedgerState::new();
    let accounts: Vec<Account> = (1..=ACCOUNTS)
        .map(|id| Account {
            id,
            ledger: 1,
            code: 1,
            ..Account::default()
        })
        .collect();
    let mut timestamp = 1_000_000u64;
    for chunk in accounts.chunks(BATCH) {
        timestamp += chunk.len() as u64;
        state.create_accounts(chunk, timestamp);
    }
    let mut random = 42u64;
    let mut next = move || {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random
    };
    let mut id = 0u128;
    let mut timings: Vec<(Duration, usize, Duration)> = Vec::with_capacity(batches);
    let mut applying = Duration::ZERO;
    let start = Instant::now();
    for batch in 0..batches {
        let events: Vec<Transfer> = (0..BATCH)
            .map(|_| {
                id += 1;
                let debit = u128::from(next()) % ACCOUNTS + 1;
                Transfer {
                    id: (1u128 << 64) | id,
                    debit_account_id: debit,
                    credit_account_id: debit % ACCOUNTS + 1,
                    amount: 1 + u128::from(next() % 1000),
                    user_data_32: (next() % 1000) as u32 + 1,
                    ledger: 1,
                    code: 1,
                    ..Transfer::default()
                }
            })
            .collect();
        timestamp += BATCH as u64;
        let began = Instant::now();
        state.create_transfers(&events, timestamp);
        let took = began.elapsed();
        applying += took;
        timings.push((took, batch, start.elapsed()));
    }
    let mut latencies: Vec<Duration> = timings.iter().map(|t| t.0).collect();
    latencies.sort_unstable();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "apply only: {batches} batches of {BATCH}: {:.0} transfers/s while applying; batch p50 = {:?}, p99 = {:?}, max = {:?}",
        (batches * BATCH) as f64 / applying.as_secs_f64(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    timings.sort_unstable_by_key(|t| std::cmp::Reverse(t.0));
    for (took, batch, at) in timings.iter().take(5) {
        println!(
            "  slow: batch {batch} (sent at {:.2} s): {took:?}",
            at.as_secs_f64()
        );
    }
}
