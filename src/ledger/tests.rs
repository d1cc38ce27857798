//! Tests of the durable `Ledger` (state machine + store + log) against the
//! reference model, under simulated power loss and torn writes.
//!
//! The model is fed the same batches with the timestamps the engine must
//! assign (`max(now, last + n)` on a simulated clock), so results, including
//! every assigned timestamp, must match event by event.

mod gathering;

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::ErrorKind;
use crate::storage::clock::{Clock, SimClock};
use crate::storage::io::{CrashMode, SimIo};
use crate::testing::ledger_gen::{self as generate, ACCOUNT_IDS_MAX, Random};
use crate::testing::model_ledger::ModelLedger;
use crate::testing::{cases, seed_from_env};

fn sim_options(io: &SimIo, clock: &SimClock, checkpoint_interval_bytes: u64) -> LedgerOptions {
    LedgerOptions::new()
        .segment_size_bytes(64 << 10)
        .checkpoint_interval_bytes(checkpoint_interval_bytes)
        .create_if_missing(true)
        .io(Arc::new(io.clone()))
        .clock(Arc::new(clock.clone()))
}

/// One logged batch, as the test knows it.
#[derive(Clone)]
enum Batch {
    Accounts(Vec<Account>, u64),
    Transfers(Vec<Transfer>, u64),
}

impl Batch {
    fn timestamp(&self) -> u64 {
        match self {
            Batch::Accounts(_, t) | Batch::Transfers(_, t) => *t,
        }
    }

    fn apply(&self, model: &mut ModelLedger) {
        match self {
            Batch::Accounts(events, t) => {
                model.create_accounts(events, *t);
            }
            Batch::Transfers(events, t) => {
                model.create_transfers(events, *t);
            }
        }
    }
}

/// The walk's state: every batch logged so far (by LSN), and what random
/// generation needs.
struct EngineWalk {
    random: Random,
    clock: SimClock,
    batches: Vec<Batch>,
    model: ModelLedger,
    pending_ids: Vec<u128>,
    submitted: Vec<Transfer>,
    timestamps: Vec<u64>,
}

impl EngineWalk {
    /// The timestamp the engine must give a batch of `count` events now.
    fn next_timestamp(&self, count: usize) -> u64 {
        let last = self.batches.last().map_or(0, Batch::timestamp);
        self.clock.realtime_ns().max(last + count.max(1) as u64)
    }

    fn random_batch(&mut self) -> Batch {
        let count = self.random.below(30) as usize;
        let jump = if self.random.chance(20) {
            self.random.below(3_000_000_000)
        } else {
            self.random.below(50)
        };
        self.clock.advance_ns(jump);
        let t = self.next_timestamp(count);
        if self.random.chance(15) {
            let imported = self.random.chance(10);
            let events = (0..count)
                .map(|_| generate::account(&mut self.random, imported, t, &self.timestamps))
                .collect();
            return Batch::Accounts(events, t);
        }
        let imported = self.random.chance(5);
        let events = (0..count)
            .map(|_| {
                if !self.submitted.is_empty() && self.random.chance(15) {
                    generate::resubmission(&mut self.random, &self.submitted)
                } else {
                    generate::transfer(
                        &mut self.random,
                        imported,
                        t,
                        &self.pending_ids,
                        &self.timestamps,
                    )
                }
            })
            .collect();
        Batch::Transfers(events, t)
    }

    /// Submits `batch` to the ledger; on success checks the results against
    /// the model. Returns false if the ledger failed (the power was cut).
    fn submit(&mut self, ledger: &Ledger, batch: Batch, context: &str) -> bool {
        self.batches.push(batch.clone());
        match batch {
            Batch::Accounts(events, t) => {
                let Ok(results) = ledger.create_accounts(&events) else {
                    return false;
                };
                let expected = self.model.create_accounts(&events, t);
                assert_eq!(results, expected, "{context}: account results");
                for result in &results {
                    if result.status == CreateAccountStatus::Created {
                        self.timestamps.push(result.timestamp);
                    }
                }
            }
            Batch::Transfers(events, t) => {
                let Ok(results) = ledger.create_transfers(&events) else {
                    return false;
                };
                let expected = self.model.create_transfers(&events, t);
                assert_eq!(results, expected, "{context}: transfer results");
                for (event, result) in events.iter().zip(&results) {
                    if result.status == CreateTransferStatus::Created {
                        self.timestamps.push(result.timestamp);
                        if event.flags.contains(TransferFlags::PENDING) {
                            self.pending_ids.push(event.id);
                        }
                    }
                }
                self.submitted.extend_from_slice(&events);
            }
        }
        true
    }

    /// After a crash: the ledger recovered the first `applied` batches;
    /// rebuild the model from exactly those and compare everything.
    fn after_recovery(&mut self, ledger: &Ledger, acked: usize, context: &str) {
        let applied = ledger.store().applied_lsn() as usize;
        assert!(
            applied >= acked,
            "{context}: lost acknowledged batches ({applied} < {acked})"
        );
        assert!(applied <= self.batches.len(), "{context}: invented batches");
        self.batches.truncate(applied);
        self.model = ModelLedger::new();
        for batch in &self.batches {
            batch.apply(&mut self.model);
        }
        compare(ledger, &self.model, &self.submitted, context);
    }
}

fn compare(ledger: &Ledger, model: &ModelLedger, submitted: &[Transfer], context: &str) {
    let account_ids: Vec<u128> = (0..=ACCOUNT_IDS_MAX + 1).collect();
    assert_eq!(
        ledger.lookup_accounts(&account_ids).unwrap(),
        model.lookup_accounts(&account_ids),
        "{context}: accounts"
    );
    let mut transfer_ids: Vec<u128> = submitted.iter().map(|t| t.id).collect();
    transfer_ids.sort_unstable();
    transfer_ids.dedup();
    for chunk in transfer_ids.chunks(BATCH_EVENTS_MAX) {
        assert_eq!(
            ledger.lookup_transfers(chunk).unwrap(),
            model.lookup_transfers(chunk),
            "{context}: transfers"
        );
    }
    let everything = QueryFilter {
        limit: u32::MAX,
        ..QueryFilter::default()
    };
    assert_eq!(
        ledger.query_transfers(&everything).unwrap(),
        model.query_transfers(&everything),
        "{context}: all transfers"
    );
    ledger
        .check_invariants()
        .unwrap_or_else(|e| panic!("{context}: {e}"));
}

fn initial_accounts() -> Vec<Account> {
    (1..=ACCOUNT_IDS_MAX - 3)
        .map(|id| Account {
            id,
            ledger: if id % 6 == 0 { 2 } else { 1 },
            code: 1,
            flags: match id % 4 {
                0 => AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
                1 => AccountFlags::HISTORY,
                _ => AccountFlags::empty(),
            },
            ..Account::default()
        })
        .collect()
}

fn run_engine_walk(seed: u64) {
    let io = SimIo::new(seed);
    let clock = SimClock::new(1_000_000_000);
    let mut walk = EngineWalk {
        random: Random::new(seed),
        clock: clock.clone(),
        batches: Vec::new(),
        model: ModelLedger::new(),
        pending_ids: Vec::new(),
        submitted: Vec::new(),
        timestamps: Vec::new(),
    };
    let interval = [0, 16 << 10, 64 << 10][walk.random.below(3) as usize];
    let options = sim_options(&io, &clock, interval);
    let mut ledger = Ledger::open("/db", options.clone()).expect("open");
    let accounts = initial_accounts();
    let t = walk.next_timestamp(accounts.len());
    assert!(walk.submit(&ledger, Batch::Accounts(accounts, t), "initial"));
    for cycle in 0..4 {
        let context = format!("SEED={seed} cycle {cycle}");
        io.cut_power_after(walk.random.below(400));
        let mut acked = walk.batches.len();
        for _ in 0..40 {
            if walk.random.chance(5) && ledger.checkpoint().is_err() {
                break;
            }
            let batch = walk.random_batch();
            if !walk.submit(&ledger, batch, &context) {
                break;
            }
            acked = walk.batches.len();
        }
        drop(ledger);
        let modes = [
            CrashMode::PowerLoss,
            CrashMode::TornWrite,
            CrashMode::ProcessKill,
        ];
        let mode = modes[walk.random.below(3) as usize];
        io.crash(mode);
        ledger = Ledger::open("/db", options.clone())
            .unwrap_or_else(|e| panic!("{context} {mode:?}: reopen: {e}"));
        walk.after_recovery(&ledger, acked, &format!("{context} {mode:?}"));
    }
}

// Goal: through the whole engine, results match the reference model event by
// event (timestamps included), and after a power cut at any moment (during
// commits, checkpoints, log truncation) and a crash in any mode, the ledger
// holds exactly a prefix of the logged batches containing every acknowledged
// one, with the invariants intact. Method: seeded walks on the simulated disk.
#[test]
fn engine_matches_model_across_power_cuts() {
    let base_seed = seed_from_env();
    for case in 0..cases(60) {
        run_engine_walk(base_seed.wrapping_add(case));
    }
}

// Goal: a batch larger than the maximum is a typed error and writes nothing.
#[test]
fn oversized_batch_is_refused_before_logging() {
    let io = SimIo::new(1);
    let clock = SimClock::new(1);
    let ledger = Ledger::open("/db", sim_options(&io, &clock, 0)).unwrap();
    let max = sim_options(&io, &clock, 0).batch_events_max();
    assert!(
        max < BATCH_EVENTS_MAX,
        "64 KiB segments hold less than a full batch"
    );
    let transfers = vec![Transfer::default(); max + 1];
    let error = ledger.create_transfers(&transfers).unwrap_err();
    assert!(error.is_batch_too_large(), "{error}");
    let ids = vec![1u128; BATCH_EVENTS_MAX + 1];
    assert!(
        ledger
            .lookup_accounts(&ids)
            .unwrap_err()
            .is_batch_too_large()
    );
    assert_eq!(ledger.store().applied_lsn(), 0, "nothing was logged");
    let full = vec![Transfer::default(); max];
    assert_eq!(ledger.create_transfers(&full).unwrap().len(), max);
    // With default segments the limit is TigerBeetle's.
    assert_eq!(
        LedgerOptions::new()
            .create_if_missing(true)
            .batch_events_max(),
        BATCH_EVENTS_MAX
    );
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), LedgerOptions::new().create_if_missing(true)).unwrap();
    let error = ledger
        .create_transfers(&vec![Transfer::default(); BATCH_EVENTS_MAX + 1])
        .unwrap_err();
    assert!(error.is_batch_too_large(), "{error}");
    assert_eq!(
        error.to_string(),
        "batch of 8190 events exceeds the maximum of 8189"
    );
    let full = vec![Transfer::default(); BATCH_EVENTS_MAX];
    assert_eq!(
        ledger.create_transfers(&full).unwrap().len(),
        BATCH_EVENTS_MAX
    );
}

// Goal: timestamps are unique and strictly increasing across batches and
// restarts, even when the wall clock goes backwards.
#[test]
fn timestamps_increase_across_restarts_and_clock_jumps() {
    let io = SimIo::new(2);
    let clock = SimClock::new(5_000_000_000);
    let options = sim_options(&io, &clock, 0);
    let mut last = 0;
    for round in 0..3 {
        let ledger = Ledger::open("/db", options.clone()).unwrap();
        let accounts: Vec<Account> = (0..5u128)
            .map(|i| Account {
                id: round * 10 + i + 1,
                ledger: 1,
                code: 1,
                ..Account::default()
            })
            .collect();
        let results = ledger.create_accounts(&accounts).unwrap();
        for result in results {
            assert_eq!(result.status, CreateAccountStatus::Created);
            assert!(
                result.timestamp > last,
                "round {round}: {} <= {last}",
                result.timestamp
            );
            last = result.timestamp;
        }
        clock.set_realtime_ns(1_000); // the wall clock jumps back
    }
}

// Goal: concurrent callers each get their own results and the state equals a
// sequential application of the batches in log order.
#[test]
fn concurrent_callers_share_commits_and_stay_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let ledger =
        Arc::new(Ledger::open(dir.path(), LedgerOptions::new().create_if_missing(true)).unwrap());
    let accounts: Vec<Account> = (1..=8u128)
        .map(|id| Account {
            id,
            ledger: 1,
            code: 1,
            ..Account::default()
        })
        .collect();
    ledger.create_accounts(&accounts).unwrap();
    let threads: Vec<_> = (0..4u128)
        .map(|client| {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                for seq in 0..50u128 {
                    let transfer = Transfer {
                        id: (client << 64) | (seq + 1),
                        debit_account_id: client + 1,
                        credit_account_id: client + 5,
                        amount: 3,
                        ledger: 1,
                        code: 1,
                        ..Transfer::default()
                    };
                    let results = ledger.create_transfers(&[transfer]).unwrap();
                    assert_eq!(results[0].status, CreateTransferStatus::Created);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let found = ledger.lookup_accounts(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    for account in &found[..4] {
        assert_eq!(account.debits_posted, 150);
    }
    for account in &found[4..] {
        assert_eq!(account.credits_posted, 150);
    }
    ledger.check_invariants().unwrap();
}

// Goal: the ledger rebuilt from a snapshot plus the log suffix is identical
// to the ledger rebuilt from the whole log (byte-identical images).
#[test]
fn snapshot_plus_suffix_equals_full_replay() {
    let io = SimIo::new(3);
    let clock = SimClock::new(1_000);
    let options = sim_options(&io, &clock, 0);
    let ledger = Ledger::open("/db", options.clone()).unwrap();
    ledger.create_accounts(&initial_accounts()).unwrap();
    let mut random = Random::new(3);
    let mut pending = Vec::new();
    for round in 0..60 {
        clock.advance_ns(random.below(2_000_000_000));
        let transfers: Vec<Transfer> = (0..20)
            .map(|_| generate::transfer(&mut random, false, 1, &pending, &[]))
            .collect();
        for (t, r) in transfers
            .iter()
            .zip(ledger.create_transfers(&transfers).unwrap())
        {
            if r.status == CreateTransferStatus::Created && t.flags.contains(TransferFlags::PENDING)
            {
                pending.push(t.id);
            }
        }
        if round == 30 {
            ledger.checkpoint().unwrap();
        }
    }
    drop(ledger);
    let image = |ledger: &Ledger| {
        ledger
            .store()
            .read(|m| {
                let mut bytes = Vec::new();
                LedgerState::write_image(&m.state.image(), &mut bytes).unwrap();
                bytes
            })
            .unwrap()
    };
    let from_snapshot = Ledger::open("/db", options.clone()).unwrap();
    assert!(from_snapshot.recovery().snapshot_lsn.is_some());
    let bytes_snapshot = image(&from_snapshot);
    drop(from_snapshot);
    let snapshots = Path::new("/db").join(crate::storage::store::SNAPSHOT_DIR_NAME);
    for name in crate::storage::io::Io::list_dir(&io, &snapshots).unwrap() {
        crate::storage::io::Io::remove_file(&io, &snapshots.join(name)).unwrap();
    }
    let full = Ledger::open("/db", options).unwrap();
    assert_eq!(full.recovery().snapshot_lsn, None);
    assert_eq!(image(&full), bytes_snapshot);
}

// Goal: a clock at or beyond 2^63 ns is refused with a typed error before
// anything is logged, and the ledger goes on once the clock is sane again;
// timestamps stay unique and increasing.
#[test]
fn clock_beyond_the_timestamp_limit_is_refused() {
    let io = SimIo::new(31);
    let clock = SimClock::new(1_000);
    let ledger = Ledger::open("/db", sim_options(&io, &clock, 0)).unwrap();
    let account = |id| Account {
        id,
        ledger: 1,
        code: 1,
        ..Account::default()
    };
    ledger.create_accounts(&[account(1)]).unwrap();
    let next_lsn = ledger.store().wal().next_lsn();
    for now in [1u64 << 63, u64::MAX] {
        clock.set_realtime_ns(now);
        let error = ledger.create_accounts(&[account(2)]).unwrap_err();
        assert!(
            matches!(
                error.store_error(),
                Some(crate::storage::store::StoreError::ClockOutOfRange { now_ns }) if *now_ns == now
            ) && error.is_invalid_argument(),
            "{error}"
        );
        assert_eq!(ledger.store().wal().next_lsn(), next_lsn, "nothing logged");
    }
    clock.set_realtime_ns(2_000);
    ledger.create_accounts(&[account(2)]).unwrap();
    let found = ledger.lookup_accounts(&[1, 2]).unwrap();
    assert!(found[0].timestamp < found[1].timestamp);
    ledger.check_invariants().unwrap();
}

// Goal: paths that cannot hold a ledger are typed errors, and nothing is
// created: an empty path, a log directory equal to the ledger's directory
// or its snapshot directory.
#[test]
fn unusable_paths_are_refused() {
    let io = SimIo::new(32);
    let clock = SimClock::new(1);
    let invalid = |result: Result<Ledger>| match result {
        Err(error) if error.kind() == ErrorKind::InvalidArgument => {}
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("opened"),
    };
    invalid(Ledger::open("", sim_options(&io, &clock, 0)));
    for wal_dir in ["/db", "/db/", "/db/snapshots", ""] {
        let options = sim_options(&io, &clock, 0).wal_dir(wal_dir);
        invalid(Ledger::open("/db", options));
    }
    assert!(io.list_files().is_empty(), "{:?}", io.list_files());
    // A real directory given twice under different spellings.
    let temp = tempfile::tempdir().unwrap();
    let options = LedgerOptions::new()
        .create_if_missing(true)
        .wal_dir(temp.path().join("."));
    invalid(Ledger::open(temp.path(), options));
}

// Goal: a checkpoint that fails for want of space (ENOSPC while writing the
// snapshot) is reported and counted, and poisons neither writes nor reads;
// once space is back a checkpoint succeeds and a power cut loses nothing.
#[test]
fn full_disk_during_checkpoint_does_not_poison() {
    let io = SimIo::new(33);
    let clock = SimClock::new(1);
    let ledger = Ledger::open("/db", sim_options(&io, &clock, 0)).unwrap();
    let accounts = initial_accounts();
    ledger.create_accounts(&accounts).unwrap();
    let transfer = |id| Transfer {
        id,
        debit_account_id: accounts[0].id,
        credit_account_id: accounts[1].id,
        amount: 1,
        ledger: accounts[0].ledger,
        code: 1,
        ..Transfer::default()
    };
    ledger.create_transfers(&[transfer(1)]).unwrap();
    ledger.store().wal().wait_for_spare_segment();
    // No room for a snapshot; log records go into the preallocated segment.
    io.set_space_budget(Some(io.space_used_bytes()));
    let error = ledger.checkpoint().unwrap_err();
    assert!(error.is_no_space(), "{error}");
    assert!(!error.is_poisoned());
    let stats = ledger.checkpoint_stats();
    assert_eq!((stats.completed, stats.failed), (0, 1));
    ledger.create_transfers(&[transfer(2)]).unwrap();
    assert_eq!(ledger.lookup_transfers(&[1, 2]).unwrap().len(), 2);
    io.set_space_budget(None);
    ledger.checkpoint().unwrap();
    ledger.create_transfers(&[transfer(3)]).unwrap();
    drop(ledger);
    io.crash(CrashMode::PowerLoss);
    let ledger = Ledger::open("/db", sim_options(&io, &clock, 0)).unwrap();
    assert_eq!(ledger.lookup_transfers(&[1, 2, 3]).unwrap().len(), 3);
    ledger.check_invariants().unwrap();
}

// Goal: files of another ledger are refused, never mixed in. Method: two
// ledgers with snapshots; the newer snapshot of one is copied into the
// other. Opening the second rejects it (naming the other ledger), falls
// back to its own snapshot and replays its own log: its state is its own.
#[test]
fn a_snapshot_of_another_ledger_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let options = || LedgerOptions::new().checkpoint_interval_bytes(0);
    let build = |name: &str, first_id: u128, checkpoint_after: usize| {
        let dir = temp.path().join(name);
        let ledger = Ledger::create(&dir, options()).unwrap();
        for i in 0..10u128 {
            let account = Account {
                id: first_id + i,
                ledger: 1,
                code: 1,
                ..Account::default()
            };
            ledger.create_accounts(&[account]).unwrap();
            if i as usize + 1 == checkpoint_after {
                ledger.checkpoint().unwrap();
            }
        }
        ledger.close().unwrap();
        dir
    };
    let a = build("a", 1000, 8);
    let b = build("b", 2000, 4);
    let foreign = crate::storage::snapshot::snapshot_file_name(8);
    std::fs::copy(
        a.join("snapshots").join(&foreign),
        b.join("snapshots").join(&foreign),
    )
    .unwrap();
    let ledger = Ledger::open(&b, options()).unwrap();
    let recovery = ledger.recovery();
    assert_eq!(recovery.snapshot_lsn, Some(4), "its own snapshot");
    assert_eq!(recovery.snapshots_skipped.len(), 1);
    assert!(
        recovery.snapshots_skipped[0]
            .reason
            .contains("belongs to ledger"),
        "{:?}",
        recovery.snapshots_skipped
    );
    assert_eq!(ledger.lookup_accounts(&[1000, 1007]).unwrap().len(), 0);
    assert_eq!(ledger.lookup_accounts(&[2000, 2009]).unwrap().len(), 2);
    ledger.close().unwrap();
    // verify reports it; inspect marks it.
    let verification = Ledger::verify(&b, &options()).unwrap();
    assert!(!verification.is_clean());
    let inspection = Ledger::inspect(&b, &options()).unwrap();
    assert!(
        inspection.snapshots[0]
            .problem
            .as_deref()
            .unwrap()
            .contains("belongs to ledger")
    );
}
