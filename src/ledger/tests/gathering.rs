//! Gathering is invisible: concurrent callers whose batches were gathered
//! into shared log records get exactly the results, and leave exactly the
//! state, of the same batches applied one by one in the order the log
//! recorded them.
//!
//! Method: seeded random callers on threads (linked chains, failures,
//! imported batches, retries and duplicates across callers, empty batches)
//! against one ledger on the simulated disk. Afterwards the log is read back
//! record by record; each record's batches are applied to the reference
//! model one at a time with the batch timestamps the record implies. The
//! multiset of (batch, results) pairs the callers saw must equal the one the
//! replay produces, and the ledger's state must equal the model's. With a
//! power cut in the middle, every acknowledged call must be in the
//! recovered log with the results its caller saw.

use std::sync::Mutex;

use super::*;
use crate::ledger::codec::{self, LedgerBatch};
use crate::storage::store::RECORD_PREFIX_BYTES;

/// A caller's batch and the results it was answered with (accounts or
/// transfers), rendered comparably.
type Answered = String;

fn render(batch: &LedgerBatch, results: &LedgerOutput) -> Answered {
    format!(
        "{batch:?} => {:?} {:?}",
        results.accounts, results.transfers
    )
}

/// Shared between the callers: transfers submitted so far (for retries and
/// cross-caller duplicates) and the ids of pending ones.
#[derive(Default)]
struct Shared {
    submitted: Vec<Transfer>,
    pending_ids: Vec<u128>,
}

/// One caller's next batch.
fn random_batch(random: &mut Random, clock: &SimClock, shared: &Mutex<Shared>) -> LedgerBatch {
    clock.advance_ns(random.below(2_000));
    let now = clock.realtime_ns();
    let count = random.pick(&[0usize, 1, 1, 1, 2, 3, 5, 8, 13]);
    if random.chance(8) {
        let imported = random.chance(10);
        let events = (0..count)
            .map(|_| generate::account(random, imported, now, &[]))
            .collect();
        return LedgerBatch::CreateAccounts(events);
    }
    let imported = random.chance(5);
    let shared = shared.lock().unwrap();
    let events = (0..count)
        .map(|_| {
            if !shared.submitted.is_empty() && random.chance(20) {
                generate::resubmission(random, &shared.submitted)
            } else {
                generate::transfer(random, imported, now, &shared.pending_ids, &[])
            }
        })
        .collect();
    LedgerBatch::CreateTransfers(events)
}

/// Submits `batch`; the answer, or `None` if the ledger failed.
fn submit(ledger: &Ledger, batch: &LedgerBatch) -> Option<LedgerOutput> {
    match batch {
        LedgerBatch::CreateAccounts(events) => {
            ledger
                .create_accounts(events)
                .ok()
                .map(|accounts| LedgerOutput {
                    accounts,
                    ..LedgerOutput::default()
                })
        }
        LedgerBatch::CreateTransfers(events) => {
            ledger
                .create_transfers(events)
                .ok()
                .map(|transfers| LedgerOutput {
                    transfers,
                    ..LedgerOutput::default()
                })
        }
    }
}

/// Runs `callers` threads of `calls` random batches each; returns every
/// acknowledged (batch, results) pair. Callers stop at their first failure.
fn run_callers(
    ledger: &Arc<Ledger>,
    clock: &SimClock,
    seed: u64,
    callers: u64,
    calls: usize,
) -> Vec<Answered> {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let threads: Vec<_> = (0..callers)
        .map(|caller| {
            let (ledger, clock, shared) = (Arc::clone(ledger), clock.clone(), Arc::clone(&shared));
            std::thread::spawn(move || {
                let mut random =
                    Random::new(seed ^ (caller + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let mut answered = Vec::new();
                for _ in 0..calls {
                    let batch = random_batch(&mut random, &clock, &shared);
                    let Some(results) = submit(&ledger, &batch) else {
                        break;
                    };
                    if let LedgerBatch::CreateTransfers(events) = &batch {
                        let mut shared = shared.lock().unwrap();
                        for (event, result) in events.iter().zip(&results.transfers) {
                            if result.status == CreateTransferStatus::Created
                                && event.flags.contains(TransferFlags::PENDING)
                            {
                                shared.pending_ids.push(event.id);
                            }
                        }
                        shared.submitted.extend_from_slice(events);
                    }
                    answered.push(render(&batch, &results));
                }
                answered
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|thread| thread.join().expect("caller panicked"))
        .collect()
}

/// Replays the log of `ledger` (LSN 1 on; no checkpoint may have truncated
/// it) batch by batch into the model. Returns the model, the (batch,
/// results) pairs in log order, and how many records held several batches.
fn replay_log(ledger: &Ledger) -> (ModelLedger, Vec<Answered>, usize) {
    let mut model = ModelLedger::new();
    let mut answered = Vec::new();
    let mut gathered_records = 0;
    let last = ledger.store().applied_lsn();
    for lsn in 1..=last {
        let payload = ledger.store().wal().read(lsn).expect("read record");
        let (prefix, bytes) = payload.split_at(RECORD_PREFIX_BYTES);
        let timestamp = u64::from_le_bytes(prefix.try_into().unwrap());
        let command = codec::decode(bytes).expect("decode record");
        gathered_records += usize::from(command.batches.len() > 1);
        let mut batch_timestamp = timestamp - command.timestamps_needed();
        for batch in command.batches {
            batch_timestamp += batch.timestamps_needed();
            let results = match &batch {
                LedgerBatch::CreateAccounts(events) => LedgerOutput {
                    accounts: model.create_accounts(events, batch_timestamp),
                    ..LedgerOutput::default()
                },
                LedgerBatch::CreateTransfers(events) => LedgerOutput {
                    transfers: model.create_transfers(events, batch_timestamp),
                    ..LedgerOutput::default()
                },
            };
            answered.push(render(&batch, &results));
        }
        assert_eq!(batch_timestamp, timestamp, "lsn {lsn}: batch timestamps");
    }
    (model, answered, gathered_records)
}

/// Every transfer id the model holds or could hold, for the state check.
fn all_transfers(model: &ModelLedger) -> Vec<Transfer> {
    model.query_transfers(&QueryFilter {
        limit: u32::MAX,
        ..QueryFilter::default()
    })
}

fn open_gathering_ledger(io: &SimIo, clock: &SimClock) -> Arc<Ledger> {
    // No checkpoints: the test reads the whole log back.
    let options = sim_options(io, clock, 0).gather_wait_max(std::time::Duration::from_micros(200));
    Arc::new(Ledger::open("/db", options).expect("open"))
}

fn setup_accounts(ledger: &Ledger) -> Answered {
    let accounts = initial_accounts();
    let results = ledger.create_accounts(&accounts).unwrap();
    render(
        &LedgerBatch::CreateAccounts(accounts),
        &LedgerOutput {
            accounts: results,
            ..LedgerOutput::default()
        },
    )
}

fn check_same_state(ledger: &Ledger, model: &ModelLedger, context: &str) {
    let submitted = all_transfers(model);
    compare(ledger, model, &submitted, context);
}

// Goal: per-caller results and the final state are exactly those of the
// log's batches applied one by one (see the module comment), and the run
// really gathered (some record holds several callers' batches).
#[test]
fn gathered_callers_match_one_by_one_application() {
    let mut gathered_any = false;
    let base = seed_from_env();
    for case in 0..cases(6) {
        let seed = base.wrapping_add(case);
        let io = SimIo::new(seed);
        let clock = SimClock::new(1_000_000_000);
        let ledger = open_gathering_ledger(&io, &clock);
        let mut seen = vec![setup_accounts(&ledger)];
        seen.extend(run_callers(&ledger, &clock, seed, 8, 60));
        let (model, mut replayed, gathered_records) = replay_log(&ledger);
        gathered_any |= gathered_records > 0;
        seen.sort();
        replayed.sort();
        assert_eq!(seen.len(), replayed.len(), "SEED={seed}: batch count");
        assert!(
            seen == replayed,
            "SEED={seed}: per-caller results differ from the replay"
        );
        check_same_state(&ledger, &model, &format!("SEED={seed}"));
        let stats = ledger.stats();
        assert_eq!(stats.batches, seen.len() as u64, "SEED={seed}");
        assert_eq!(stats.commands, ledger.store().applied_lsn(), "SEED={seed}");
    }
    assert!(
        gathered_any,
        "no record held more than one batch: nothing was gathered"
    );
}

// Goal: with gathering on, a power cut (or torn write, or kill) while
// callers run loses no acknowledged call: after recovery every acknowledged
// (batch, results) pair is in the replayed log, and the recovered state is
// the replay's.
#[test]
fn gathered_calls_survive_power_cuts() {
    let base = seed_from_env();
    for case in 0..cases(6) {
        let seed = base.wrapping_add(case);
        let io = SimIo::new(seed);
        let clock = SimClock::new(1_000_000_000);
        let ledger = open_gathering_ledger(&io, &clock);
        setup_accounts(&ledger);
        let mut random = Random::new(seed);
        io.cut_power_after(random.below(150));
        let acked = run_callers(&ledger, &clock, seed, 6, 40);
        drop(Arc::try_unwrap(ledger).expect("callers are done"));
        let mode = [
            CrashMode::PowerLoss,
            CrashMode::TornWrite,
            CrashMode::ProcessKill,
        ][random.below(3) as usize];
        io.crash(mode);
        let context = format!("SEED={seed} {mode:?}");
        let ledger = open_gathering_ledger(&io, &clock);
        let (model, replayed, _) = replay_log(&ledger);
        let mut remaining = replayed.clone();
        remaining.sort();
        for answer in &acked {
            let Ok(at) = remaining.binary_search(answer) else {
                panic!("{context}: an acknowledged call is missing after recovery: {answer}");
            };
            remaining.remove(at);
        }
        check_same_state(&ledger, &model, &context);
    }
}
