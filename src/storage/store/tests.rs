//! Tests of the store against a model: the list of acknowledged commands.

use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::rng::SplitMix64;
use crate::storage::clock::SimClock;
use crate::storage::io::{CrashMode, SimIo};
use crate::testing::{Journal, cases, seed_from_env};

fn dir() -> PathBuf {
    PathBuf::from("/db")
}

fn options(io: &SimIo, clock: &SimClock, checkpoint_interval_bytes: u64) -> StoreOptions {
    StoreOptions {
        wal: WalOptions {
            segment_size_bytes: 4096,
            record_size_max_bytes: 1024,
            group_size_max_bytes: 8192,
            queue_depth_max: 64,
            repair: false,
            needed_from_lsn: 1,
            read_only: false,
            io: Arc::new(io.clone()),
        },
        wal_dir: None,
        checkpoint_interval_bytes,
        clock: Arc::new(clock.clone()),
    }
}

fn open(io: &SimIo, clock: &SimClock, interval: u64) -> (Store<Journal>, StoreRecovery) {
    Store::open(&dir(), options(io, clock, interval)).expect("open store")
}

fn payloads(store: &Store<Journal>) -> Vec<Vec<u8>> {
    store
        .read(|j| j.entries.iter().map(|e| e.payload.clone()).collect())
        .unwrap()
}

/// Checks the journal's own invariants: LSNs consecutive, timestamps
/// strictly increasing with room for each command's timestamp range.
fn check_journal(journal: &Journal, context: &str) {
    for pair in journal.entries.windows(2) {
        assert_eq!(pair[1].lsn, pair[0].lsn + 1, "{context}: lsn gap");
        let needed = <Journal as StateMachine>::timestamps_needed(&pair[1].payload);
        assert!(
            pair[1].timestamp >= pair[0].timestamp + needed,
            "{context}: timestamps not increasing: {:?} then {:?}",
            pair[0].timestamp,
            pair[1].timestamp
        );
    }
}

// Goal: executed commands survive reopen with the same LSNs and timestamps,
// and timestamps keep increasing even when the wall clock goes backwards.
#[test]
fn execute_reopen_timestamps_increase() {
    let io = SimIo::new(1);
    let clock = SimClock::new(1_000_000);
    let (store, _) = open(&io, &clock, 0);
    let (lsn1, t1) = store.execute(b"a".to_vec()).unwrap();
    clock.set_realtime_ns(10); // the clock jumps back
    let (lsn2, t2) = store.execute(vec![7u8; 200]).unwrap();
    assert_eq!((lsn1, lsn2), (1, 2));
    assert!(t2 >= t1 + 4, "a 200-byte command owns 4 timestamps");
    drop(store);
    let (store, report) = open(&io, &clock, 0);
    assert_eq!(report.replayed_records, 2);
    let (_, t3) = store.execute(b"c".to_vec()).unwrap();
    assert!(t3 > t2, "timestamps must increase across restarts");
    store.read(|j| check_journal(j, "reopen")).unwrap();
}

// Goal: concurrent executors each get their own command applied exactly
// once, in LSN order.
#[test]
fn concurrent_execute_applies_in_lsn_order() {
    let io = SimIo::new(2);
    let clock = SimClock::new(1);
    let (store, _) = open(&io, &clock, 0);
    let store = Arc::new(store);
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                (0..50u8)
                    .map(|i| store.execute(vec![t, i]).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut outputs: Vec<(Lsn, u64)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    outputs.sort();
    assert_eq!(outputs.len(), 400);
    store
        .read(|j| {
            check_journal(j, "concurrent");
            let applied: Vec<(Lsn, u64)> = j.entries.iter().map(|e| (e.lsn, e.timestamp)).collect();
            assert_eq!(applied, outputs);
        })
        .unwrap();
}

// Goal: a checkpoint writes a snapshot, the next one truncates the log
// behind the older snapshot, and reopening replays only the suffix.
#[test]
fn checkpoint_truncates_log_and_recovers() {
    let io = SimIo::new(3);
    let clock = SimClock::new(1);
    let (store, _) = open(&io, &clock, 0);
    for i in 0..100u32 {
        store.execute(i.to_le_bytes().repeat(20)).unwrap();
    }
    let first = store.checkpoint().unwrap();
    assert_eq!(first.lsn, 100);
    assert_eq!(first.segments_removed, 0, "no older snapshot yet");
    for i in 100..200u32 {
        store.execute(i.to_le_bytes().repeat(20)).unwrap();
    }
    let second = store.checkpoint().unwrap();
    assert_eq!(second.lsn, 200);
    assert!(second.segments_removed > 0);
    assert!(store.wal().first_lsn() <= 101);
    for i in 200..250u32 {
        store.execute(i.to_le_bytes().repeat(20)).unwrap();
    }
    let expected = payloads(&store);
    drop(store);
    let (store, report) = open(&io, &clock, 0);
    assert_eq!(report.snapshot_lsn, Some(200));
    assert_eq!(report.replayed_records, 50);
    assert_eq!(payloads(&store), expected);
}

// Goal: if the newest snapshot is damaged, recovery falls back to the older
// one, replays more log, reports it, and loses nothing.
#[test]
fn damaged_newest_snapshot_falls_back() {
    let io = SimIo::new(4);
    let clock = SimClock::new(1);
    let (store, _) = open(&io, &clock, 0);
    for round in 0..3u32 {
        for i in 0..60u32 {
            store
                .execute((round * 100 + i).to_le_bytes().to_vec())
                .unwrap();
        }
        store.checkpoint().unwrap();
    }
    store.execute(b"tail".to_vec()).unwrap();
    let expected = payloads(&store);
    let newest = store.core.snapshots.path(180);
    drop(store);
    assert!(io.flip_bit(&newest, 100, 1));
    let (store, report) = open(&io, &clock, 0);
    assert_eq!(report.snapshot_lsn, Some(120));
    assert_eq!(report.snapshots_skipped.len(), 1);
    assert_eq!(report.replayed_records, 61);
    assert_eq!(payloads(&store), expected);
    // The next checkpoint replaces the damaged snapshot.
    store.checkpoint().unwrap();
    drop(store);
    let (_, report) = open(&io, &clock, 0);
    assert!(report.snapshots_skipped.is_empty());
}

// Goal: when both retained snapshots are damaged and the log no longer
// reaches back, open fails with a typed error instead of losing data.
#[test]
fn both_snapshots_damaged_is_a_log_gap() {
    let io = SimIo::new(5);
    let clock = SimClock::new(1);
    let (store, _) = open(&io, &clock, 0);
    for round in 0..3u32 {
        for i in 0..60u32 {
            store
                .execute((round * 100 + i).to_le_bytes().repeat(30))
                .unwrap();
        }
        store.checkpoint().unwrap();
    }
    let paths = [
        store.core.snapshots.path(180),
        store.core.snapshots.path(120),
    ];
    drop(store);
    for path in &paths {
        assert!(io.flip_bit(path, 70, 0));
    }
    let error = Store::<Journal>::open(&dir(), options(&io, &clock, 0)).unwrap_err();
    assert!(matches!(error, StoreError::LogGap { .. }), "{error}");
}

// Goal: state rebuilt from a snapshot plus the log suffix is identical to
// state rebuilt from the whole log (replay determinism).
#[test]
fn snapshot_plus_suffix_equals_full_replay() {
    let io = SimIo::new(6);
    let clock = SimClock::new(1);
    let (store, _) = open(&io, &clock, 0);
    for i in 0..80u32 {
        store
            .execute(i.to_le_bytes().repeat(i as usize % 40))
            .unwrap();
    }
    store.checkpoint().unwrap();
    for i in 80..120u32 {
        store.execute(i.to_le_bytes().to_vec()).unwrap();
    }
    drop(store);
    let (from_snapshot, report) = open(&io, &clock, 0);
    assert_eq!(report.snapshot_lsn, Some(80));
    let image_snapshot = from_snapshot.read(|j| j.image()).unwrap();
    drop(from_snapshot);
    let snapshot_path = dir()
        .join(SNAPSHOT_DIR_NAME)
        .join(crate::storage::snapshot::snapshot_file_name(80));
    crate::storage::io::Io::remove_file(&io, &snapshot_path).unwrap();
    let (full, report) = open(&io, &clock, 0);
    assert_eq!(report.snapshot_lsn, None);
    assert_eq!(report.replayed_records, 120);
    assert_eq!(full.read(|j| j.image()).unwrap(), image_snapshot);
}

// Goal: automatic checkpoints happen in the background after the configured
// amount of log, and truncate the log while writes go on. Method: write more
// than an interval, wait for the checkpointer's signal (no sleeping, no
// luck), write another interval, wait for the second checkpoint, which must
// have truncated the log behind the first.
#[test]
fn automatic_checkpoints_bound_the_log() {
    let io = SimIo::new(7);
    let clock = SimClock::new(1);
    let (store, _) = open(&io, &clock, 16 << 10);
    let write = |from: u32, to: u32| {
        for i in from..to {
            store.execute(i.to_le_bytes().repeat(25)).unwrap();
        }
    };
    // 16 KiB of log is about 150 records of 108 bytes.
    write(0, 2000);
    let first = store.wait_for_checkpoints(1).completed;
    assert!(first >= 1, "the store stopped checkpointing");
    write(2000, 2400);
    let stats = store.wait_for_checkpoints(first + 1);
    assert!(stats.completed > first, "{stats:?}");
    assert_eq!(stats.failed, 0);
    assert!(store.wal().first_lsn() > 1, "log never truncated");
    store.close().unwrap();
    let (store, report) = open(&io, &clock, 16 << 10);
    assert!(
        report.snapshot_lsn.is_some(),
        "a checkpoint should have run"
    );
    assert_eq!(payloads(&store).len(), 2400);
}

// Goal: an fsync failure while writing a checkpoint's snapshot is reported
// and counted but poisons nothing: later commands and reads work, a later
// checkpoint succeeds, and nothing acknowledged is lost after a power cut.
#[test]
fn checkpoint_sync_failure_is_reported_not_poisoning() {
    let io = SimIo::new(8);
    let clock = SimClock::new(1);
    let (store, _) = open(&io, &clock, 0);
    for i in 0..10u32 {
        store.execute(i.to_le_bytes().to_vec()).unwrap();
    }
    store.wal().wait_for_spare_segment();
    io.fail_sync_after(0);
    let error = store.checkpoint().unwrap_err();
    assert!(matches!(error, StoreError::Snapshot(_)), "{error}");
    let stats = store.checkpoint_stats();
    assert_eq!((stats.completed, stats.failed), (0, 1));
    assert!(stats.last_error.is_some());
    store.execute(b"after".to_vec()).unwrap();
    assert_eq!(payloads(&store).len(), 11);
    store.checkpoint().unwrap();
    assert_eq!(store.checkpoint_stats().completed, 1);
    drop(store);
    io.crash(CrashMode::PowerLoss);
    let (store, report) = open(&io, &clock, 0);
    assert_eq!(report.snapshot_lsn, Some(11));
    assert_eq!(payloads(&store).len(), 11);
}

// Goal: after a power cut at any moment (during commits, checkpoints, log
// truncation, automatic checkpoints) the recovered journal is a prefix of
// what was submitted that contains every acknowledged command, and its
// timestamps still increase. Method: seeded schedules on the simulated disk.
#[test]
fn power_cuts_keep_acknowledged_commands() {
    let base_seed = seed_from_env();
    for case in 0..cases(300) {
        let seed = base_seed.wrapping_add(case);
        run_store_power_cut(seed);
    }
}

fn run_store_power_cut(seed: u64) {
    let mut rng = SplitMix64::new(seed);
    let io = SimIo::new(seed);
    let clock = SimClock::new(1_000);
    let interval = [0, 2048, 8192][rng.below(3) as usize];
    let mut submitted: Vec<Vec<u8>> = Vec::new();
    let mut acked = 0usize;
    let (mut store, _) = open(&io, &clock, interval);
    for cycle in 0..4 {
        let context = format!("SEED={seed} cycle {cycle}");
        io.cut_power_after(rng.below(80));
        for _ in 0..30 {
            let ok = if rng.chance(1, 8) {
                store.checkpoint().is_ok()
            } else {
                let len = rng.below(300) as usize;
                let mut command = vec![0u8; len];
                rng.fill(&mut command);
                submitted.truncate(store.applied_lsn() as usize);
                submitted.push(command.clone());
                clock.advance_ns(rng.below(3));
                match store.execute(command) {
                    Ok((lsn, _)) => {
                        acked = lsn as usize;
                        true
                    }
                    Err(_) => false,
                }
            };
            if !ok {
                break;
            }
        }
        drop(store);
        let mode = [
            CrashMode::PowerLoss,
            CrashMode::TornWrite,
            CrashMode::ProcessKill,
        ][rng.below(3) as usize];
        io.crash(mode);
        let reopened = Store::<Journal>::open(&dir(), options(&io, &clock, interval));
        let (next, _) = reopened.unwrap_or_else(|e| panic!("{context} {mode:?}: open: {e}"));
        store = next;
        let recovered = payloads(&store);
        assert!(
            recovered.len() >= acked,
            "{context} {mode:?}: lost acknowledged commands"
        );
        assert!(
            recovered.len() <= submitted.len(),
            "{context}: invented commands"
        );
        assert_eq!(
            recovered[..],
            submitted[..recovered.len()],
            "{context}: wrong data"
        );
        store.read(|j| check_journal(j, &context)).unwrap();
        acked = recovered.len();
    }
}

// Goal: a second instance cannot open a store directory in use.
#[test]
fn store_directory_is_locked() {
    let io = SimIo::new(9);
    let clock = SimClock::new(1);
    let (store, _) = open(&io, &clock, 0);
    let error = Store::<Journal>::open(&dir(), options(&io, &clock, 0)).unwrap_err();
    assert!(matches!(error, StoreError::Locked { .. }), "{error}");
    drop(store);
}

// Goal: a command applied while its record was being synced, whose sync
// then failed, is never observable: the call fails, and every later read
// and command fails (poisoned) instead of exposing the non-durable state.
#[test]
fn failed_sync_after_apply_hides_the_state() {
    let io = SimIo::new(10);
    let clock = SimClock::new(1);
    let (store, _) = open(&io, &clock, 0);
    store.execute(b"durable".to_vec()).unwrap();
    store.wal().wait_for_spare_segment();
    io.fail_sync_after(0);
    assert!(store.execute(b"not durable".to_vec()).is_err());
    let read = store.read(|j| j.entries.len());
    assert!(matches!(read, Err(StoreError::Poisoned { .. })), "{read:?}");
    assert!(store.execute(b"later".to_vec()).is_err());
    assert!(store.checkpoint().is_err());
    drop(store);
    io.crash(CrashMode::PowerLoss);
    let (store, _) = open(&io, &clock, 0);
    assert_eq!(payloads(&store), vec![b"durable".to_vec()]);
}
