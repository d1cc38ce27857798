//! Ledger benchmarks, with the plain-file baseline in the same run:
//! - durable `create_transfers` at 1, 100 and 8189 transfers per batch,
//!   against plain file append + `fdatasync` of the same bytes per batch;
//! - `lookup_transfers` and `lookup_accounts` throughput (batches of 8189);
//! - gathering: 16 threads each creating one transfer per call, with
//!   gathering on and off, and one thread alone (per-transfer throughput);
//! - recovery replay rate (transfers replayed per second from the log);
//! - memory per account and per stored transfer (printed once).
//!
//! Run: `cargo bench --bench ledger`.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use syncpay::storage::wal::frame_size_max as frame_size;
use syncpay::{Account, Ledger, LedgerOptions, Transfer};

const ACCOUNTS: u128 = 10_000;

fn options() -> LedgerOptions {
    // Measure the log and the state machine, not snapshotting.
    LedgerOptions::new()
        .checkpoint_interval_bytes(0)
        .create_if_missing(true)
}

fn open_with_accounts(dir: &std::path::Path) -> Ledger {
    let ledger = Ledger::open(dir, options()).unwrap();
    let accounts: Vec<Account> = (1..=ACCOUNTS)
        .map(|id| Account {
            id,
            ledger: 1,
            code: 1,
            ..Account::default()
        })
        .collect();
    for chunk in accounts.chunks(8189) {
        ledger.create_accounts(chunk).unwrap();
    }
    ledger
}

struct Transfers {
    next_id: u128,
    state: u64,
}

impl Transfers {
    fn batch(&mut self, size: usize) -> Vec<Transfer> {
        (0..size)
            .map(|_| {
                self.next_id += 1;
                self.state = self
                    .state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let debit = u128::from(self.state >> 33) % ACCOUNTS + 1;
                let credit = debit % ACCOUNTS + 1;
                Transfer {
                    id: self.next_id,
                    debit_account_id: debit,
                    credit_account_id: credit,
                    amount: 1,
                    ledger: 1,
                    code: 1,
                    ..Transfer::default()
                }
            })
            .collect()
    }
}

fn create_transfers(c: &mut Criterion) {
    let mut group = c.benchmark_group("create_transfers");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    let dir = tempfile::tempdir().unwrap();
    let ledger = open_with_accounts(dir.path());
    let mut transfers = Transfers {
        next_id: 0,
        state: 1,
    };
    for batch in [1usize, 100, 8189] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::new("syncpay_ledger", batch), |b| {
            b.iter_custom(|iterations| {
                let batches: Vec<Vec<Transfer>> =
                    (0..iterations).map(|_| transfers.batch(batch)).collect();
                let start = Instant::now();
                for transfers in &batches {
                    ledger.create_transfers(transfers).unwrap();
                }
                start.elapsed()
            })
        });
        // The same bytes the log writes per batch, appended and synced.
        let bytes = vec![0x5Au8; frame_size(8 + 8 + 128 * batch)];
        let base = tempfile::tempdir().unwrap();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(base.path().join("plain"))
            .unwrap();
        group.bench_function(BenchmarkId::new("plain_append_fdatasync", batch), |b| {
            b.iter(|| {
                file.write_all(&bytes).unwrap();
                file.sync_data().unwrap();
            })
        });
    }
    group.finish();
}

/// `threads` clients each creating `per_thread` single-transfer calls on
/// `ledger`; the time until all are answered.
fn single_transfer_clients(
    ledger: &Ledger,
    next_id: &mut u128,
    threads: u128,
    per_thread: u64,
) -> Duration {
    let base = *next_id;
    *next_id += threads * u128::from(per_thread);
    let barrier = std::sync::Barrier::new(threads as usize + 1);
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                for call in 0..u128::from(per_thread) {
                    let id = base + thread * u128::from(per_thread) + call + 1;
                    let debit = id % ACCOUNTS + 1;
                    let transfer = Transfer {
                        id,
                        debit_account_id: debit,
                        credit_account_id: debit % ACCOUNTS + 1,
                        amount: 1,
                        ledger: 1,
                        code: 1,
                        ..Transfer::default()
                    };
                    ledger.create_transfers(&[transfer]).unwrap();
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // The scope joins the clients before returning.
        start
    })
    .elapsed()
}

fn gathering(c: &mut Criterion) {
    let mut group = c.benchmark_group("gathering");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (name, threads, gathering) in [
        ("one_client", 1u128, true),
        ("16_clients_gathered", 16, true),
        ("16_clients_not_gathered", 16, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let ledger = {
            let ledger = open_with_accounts(dir.path());
            ledger.close().unwrap();
            Ledger::open(dir.path(), options().gathering(gathering)).unwrap()
        };
        let mut next_id = 0u128;
        group.throughput(Throughput::Elements(threads as u64 * 50));
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                (0..iterations)
                    .map(|_| single_transfer_clients(&ledger, &mut next_id, threads, 50))
                    .sum()
            })
        });
    }
    group.finish();
}

fn lookups(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open_with_accounts(dir.path());
    let mut transfers = Transfers {
        next_id: 0,
        state: 7,
    };
    for _ in 0..123 {
        ledger.create_transfers(&transfers.batch(8189)).unwrap();
    }
    let stored = transfers.next_id;
    let mut group = c.benchmark_group("lookup");
    group.throughput(Throughput::Elements(8189));
    // Random ids drawn before timing; each iteration takes the next batch.
    let mut state = 1u64;
    let mut random_ids = |count: u128| -> Vec<Vec<u128>> {
        (0..16)
            .map(|_| {
                (0..8189)
                    .map(|_| {
                        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                        u128::from(state >> 20) % count + 1
                    })
                    .collect()
            })
            .collect()
    };
    let transfer_ids = random_ids(stored);
    let account_ids = random_ids(ACCOUNTS);
    let mut next = 0usize;
    group.bench_function("lookup_transfers_8189", |b| {
        b.iter(|| {
            next += 1;
            ledger
                .lookup_transfers(&transfer_ids[next % transfer_ids.len()])
                .unwrap()
        })
    });
    group.bench_function("lookup_accounts_8189", |b| {
        b.iter(|| {
            next += 1;
            ledger
                .lookup_accounts(&account_ids[next % account_ids.len()])
                .unwrap()
        })
    });
    group.finish();
}

fn replay(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open_with_accounts(dir.path());
    let mut transfers = Transfers {
        next_id: 0,
        state: 3,
    };
    let batches = 245; // about two million transfers
    for _ in 0..batches {
        ledger.create_transfers(&transfers.batch(8189)).unwrap();
    }
    let usage = ledger.memory_usage().unwrap();
    println!(
        "memory estimate: {:.0} bytes per stored transfer, {:.0} bytes per account ({:?})",
        usage.total_bytes() as f64 / transfers.next_id as f64,
        usage.accounts_bytes as f64 / ACCOUNTS as f64,
        usage
    );
    drop(ledger);
    let mut group = c.benchmark_group("recovery");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(transfers.next_id as u64));
    group.bench_function("replay_transfers", |b| {
        // Times the open (log scan and replay); closing and freeing the
        // ledger happen outside the measurement, before the next open (the
        // directory is locked).
        b.iter_batched(
            || (),
            |()| {
                let ledger = Ledger::open(dir.path(), options()).unwrap();
                assert_eq!(ledger.recovery().replayed_records, batches + 2);
                ledger
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, create_transfers, gathering, lookups, replay);
criterion_main!(benches);
