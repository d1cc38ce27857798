//! Tests of the write-ahead log against a model (a `Vec` of records), under
//! simulated power loss, torn writes, bit rot, EIO and ENOSPC.
//!
//! Every randomized test derives its cases from a base seed printed on
//! failure; `SEED=<n> cargo test <name>` replays exactly that case.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::rng::SplitMix64;
use crate::storage::io::{CrashMode, Io, SimIo};
use crate::testing::seed_from_env;
use crate::testing::wal_model::{dir, payload, sim_options};

fn read_all(wal: &Wal) -> Vec<(Lsn, Vec<u8>)> {
    wal.iter(wal.first_lsn())
        .collect::<Result<Vec<_>, _>>()
        .expect("reading a recovered log")
}

// Goal: appends are durable, readable from any LSN, and survive reopen and
// segment rollover. Method: small segments, many records, reopen twice.
#[test]
fn append_read_reopen_with_rollover() {
    let io = SimIo::new(1);
    let options = sim_options(&io, 4096);
    let mut model = Vec::new();
    let mut rng = SplitMix64::new(1);
    for round in 0..3 {
        let (wal, report) = Wal::open(&dir(), options.clone()).unwrap();
        assert_eq!(report.next_lsn, model.len() as u64 + 1, "round {round}");
        for _ in 0..200 {
            let lsn = model.len() as Lsn + 1;
            let bytes = payload(&mut rng, lsn);
            assert_eq!(wal.append(&bytes).unwrap(), lsn);
            model.push((lsn, bytes));
        }
        assert!(wal.segment_count() > 3, "rollover should have happened");
        assert_eq!(read_all(&wal), model);
        for from in [1, 17, 100, model.len() as u64] {
            let tail: Vec<_> = wal.iter(from).map(|r| r.unwrap()).collect();
            assert_eq!(tail, model[from as usize - 1..]);
        }
        assert_eq!(wal.read(5).unwrap(), model[4].1);
        wal.close().unwrap();
    }
}

// Goal: `live_bytes_from` bounds from above the frame bytes from any LSN
// on, across segments, and is exact at the ends.
#[test]
fn live_bytes_from_bounds_the_frames_after_an_lsn() {
    let io = SimIo::new(2);
    let (wal, _) = Wal::open(&dir(), sim_options(&io, 4096)).unwrap();
    // A 128-byte payload takes a 160-byte frame (32-byte header), and a
    // submission of one frame is padded to a whole sector.
    let frame_bytes = 512u64;
    let records = 300u64;
    for _ in 0..records {
        wal.append(&[7u8; 128]).unwrap();
    }
    assert!(wal.segment_count() > 3, "rollover should have happened");
    assert_eq!(wal.live_bytes(), records * frame_bytes);
    assert_eq!(wal.live_bytes_from(1), wal.live_bytes());
    assert_eq!(wal.live_bytes_from(records + 1), 0);
    for lsn in [2, 25, 26, 150, 299, 300] {
        let exact = (records + 1 - lsn) * frame_bytes;
        let bound = wal.live_bytes_from(lsn);
        assert!(
            (exact..=wal.live_bytes()).contains(&bound),
            "lsn {lsn}: {bound} outside {exact}..={}",
            wal.live_bytes()
        );
    }
    wal.close().unwrap();
}

// Goal: a batch gets consecutive LSNs and is durable as a unit.
#[test]
fn append_batch_assigns_consecutive_lsns() {
    let io = SimIo::new(2);
    let (wal, _) = Wal::open(&dir(), sim_options(&io, 8192)).unwrap();
    let range = wal.append_batch(&[b"a".as_slice(), b"bb", b"ccc"]).unwrap();
    assert_eq!(range, 1..4);
    let range = wal.append_batch(&[b"d".as_slice()]).unwrap();
    assert_eq!(range, 4..5);
    let empty: [&[u8]; 0] = [];
    assert_eq!(wal.append_batch(&empty).unwrap(), 5..5);
    assert_eq!(read_all(&wal).len(), 4);
}

// Goal: records above the configured maximum are refused without consuming
// an LSN or poisoning the log.
#[test]
fn oversized_record_is_refused() {
    let io = SimIo::new(3);
    let (wal, _) = Wal::open(&dir(), sim_options(&io, 8192)).unwrap();
    let error = wal.append(&vec![0u8; 1025]).unwrap_err();
    assert!(matches!(
        error,
        WalError::RecordTooLarge {
            len: 1025,
            max: 1024
        }
    ));
    assert_eq!(wal.append(b"ok").unwrap(), 1);
}

// Goal: a second instance cannot open a directory that is in use.
#[test]
fn directory_is_locked_while_open() {
    let io = SimIo::new(4);
    let (wal, _) = Wal::open(&dir(), sim_options(&io, 8192)).unwrap();
    let error = Wal::open(&dir(), sim_options(&io, 8192)).unwrap_err();
    assert!(matches!(error, WalError::Locked { .. }), "{error}");
    drop(wal);
    Wal::open(&dir(), sim_options(&io, 8192)).unwrap();
}

// Goal: concurrent appenders share syncs (group commit) and every LSN is
// handed out exactly once. Method: 16 threads on the simulated disk, then
// count syncs against appends.
#[test]
fn concurrent_appenders_share_group_commits() {
    let io = SimIo::new(5);
    let (wal, _) = Wal::open(&dir(), sim_options(&io, 1 << 20)).unwrap();
    let wal = Arc::new(wal);
    let syncs_before = io.stats().syncs;
    let threads: Vec<_> = (0..16u64)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                (0..100u64)
                    .map(|i| {
                        let bytes = [t.to_le_bytes(), i.to_le_bytes()].concat();
                        (wal.append(&bytes).unwrap(), bytes)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acked: Vec<(Lsn, Vec<u8>)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    acked.sort();
    assert_eq!(acked.len(), 1600);
    assert!(
        acked
            .iter()
            .enumerate()
            .all(|(i, (lsn, _))| *lsn == i as u64 + 1)
    );
    assert_eq!(read_all(&wal), acked);
    // Async submissions queued behind a sync must share it.
    let handles: Vec<_> = (0..500u64)
        .map(|i| wal.submit_handle(&[i.to_le_bytes()]).unwrap())
        .collect();
    for handle in handles {
        handle.wait().unwrap();
    }
    let syncs = io.stats().syncs - syncs_before;
    assert!(
        syncs < 2100,
        "{syncs} syncs for 2100 appends: no group commit"
    );
}

// Goal: a completion callback fires exactly once with the submitted LSNs.
#[test]
fn submit_callback_fires_once_in_order() {
    let io = SimIo::new(6);
    let (wal, _) = Wal::open(&dir(), sim_options(&io, 1 << 16)).unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    for i in 0..50u64 {
        let tx = tx.clone();
        wal.submit(&[i.to_le_bytes()], move |result| {
            tx.send(result.unwrap()).unwrap();
        })
        .unwrap();
    }
    drop(wal); // Drop drains the queue: every completion runs.
    drop(tx);
    let ranges: Vec<_> = rx.iter().collect();
    assert_eq!(ranges, (1..=50).map(|l| l..l + 1).collect::<Vec<_>>());
}

// Goal: an EIO from fdatasync fails the append and poisons the log, even
// though the simulated kernel would let a retried sync "succeed".
#[test]
fn sync_failure_poisons() {
    let io = SimIo::new(7);
    let (wal, _) = Wal::open(&dir(), sim_options(&io, 8192)).unwrap();
    wal.append(b"one").unwrap();
    wal.wait_for_spare_segment();
    io.fail_sync_after(0);
    assert!(wal.append(b"two").is_err());
    assert!(wal.is_poisoned());
    let error = wal.append(b"three").unwrap_err();
    assert!(matches!(error, WalError::Poisoned { .. }), "{error}");
    assert!(wal.truncate_suffix(1).is_err());
    drop(wal);
    io.crash(CrashMode::PowerLoss);
    let (wal, _) = Wal::open(&dir(), sim_options(&io, 8192)).unwrap();
    let records = read_all(&wal);
    assert_eq!(records[0], (1, b"one".to_vec()));
    assert!(records.len() <= 2);
}

// Goal: a failed write poisons the log and acknowledges nothing.
#[test]
fn write_failure_poisons() {
    let io = SimIo::new(8);
    let (wal, _) = Wal::open(&dir(), sim_options(&io, 8192)).unwrap();
    wal.append(b"one").unwrap();
    wal.wait_for_spare_segment();
    io.fail_write_after(0);
    assert!(wal.append(b"two").is_err());
    assert!(matches!(wal.append(b"3"), Err(WalError::Poisoned { .. })));
}

// Goal: running out of space gives an ENOSPC error that says so, loses
// nothing acknowledged, and the log works again after reopening with space.
#[test]
fn enospc_is_reported_and_loses_nothing() {
    let io = SimIo::new(9);
    let options = sim_options(&io, 4096);
    let (wal, _) = Wal::open(&dir(), options.clone()).unwrap();
    // Room for the current and the spare segment only.
    io.set_space_budget(Some(io.space_used_bytes() + 4096));
    let mut acked = Vec::new();
    let error = loop {
        let lsn = acked.len() as u64 + 1;
        match wal.append(&[7u8; 300]) {
            Ok(got) => {
                assert_eq!(got, lsn);
                acked.push((lsn, vec![7u8; 300]));
            }
            Err(error) => break error,
        }
        assert!(acked.len() < 1000, "the budget should have been hit");
    };
    assert!(error.is_no_space(), "{error}");
    drop(wal);
    io.set_space_budget(None);
    io.crash(CrashMode::PowerLoss);
    let (wal, _) = Wal::open(&dir(), options).unwrap();
    assert_eq!(read_all(&wal), acked);
    wal.append(b"more").unwrap();
}

// Goal: truncate_suffix removes the tail durably and the next record reuses
// the LSN; truncate_prefix deletes whole segments behind a point only.
#[test]
fn truncation_basics() {
    let io = SimIo::new(10);
    let options = sim_options(&io, 4096);
    let (wal, _) = Wal::open(&dir(), options.clone()).unwrap();
    for i in 0..100u64 {
        wal.append(&[i as u8; 100]).unwrap();
    }
    wal.truncate_suffix(60).unwrap();
    assert_eq!(wal.next_lsn(), 60);
    assert_eq!(wal.append(b"new 60").unwrap(), 60);
    let segments = wal.segment_count();
    let removed = wal.truncate_prefix(30).unwrap();
    assert!(removed > 0);
    assert_eq!(wal.segment_count(), segments - removed);
    assert!(wal.first_lsn() <= 30);
    drop(wal);
    io.crash(CrashMode::PowerLoss);
    let (wal, _) = Wal::open(&dir(), options).unwrap();
    let records = read_all(&wal);
    assert!(records.first().unwrap().0 <= 30);
    assert_eq!(records.last().unwrap(), &(60, b"new 60".to_vec()));
    assert!(wal.truncate_suffix(0).is_err());
    wal.truncate_suffix(wal.first_lsn()).unwrap();
    assert_eq!(read_all(&wal), vec![]);
}

// Goal: after a power cut at any point (mid-write, mid-rollover,
// mid-truncation) and any crash mode, the recovered log is a run of what was
// written that contains every acknowledged record. Method: thousands of
// seeded schedules on the simulated disk (see `testing::wal_model`); each
// cuts the power after a random number of operations, crashes, reopens and
// compares with the model.
#[test]
fn power_cuts_keep_every_acknowledged_record() {
    let base_seed = seed_from_env();
    let cases = crate::testing::cases(2000);
    for case in 0..cases {
        let seed = base_seed.wrapping_add(case);
        let mut rng = SplitMix64::new(seed);
        crate::testing::wal_model::run_schedule(&mut rng, seed, &format!("SEED={seed}"));
    }
}

/// The extents of live data: (segment path, end offset of live frames).
fn live_extents(wal: &Wal) -> Vec<(PathBuf, u64)> {
    wal.shared
        .segments
        .read()
        .iter()
        .map(|s| (s.path.clone(), s.end_offset))
        .collect()
}

// Goal: a flipped bit anywhere in a segment is never returned as data: open
// fails with a typed Corrupt error, or (for bits outside any live record)
// the log reads back exactly. Bits inside what the writer wrote are always
// detected: they fail the open, or (in bytes no record uses) are reported.
// Method: seeded cases; flip one random bit of a random segment.
#[test]
fn bit_flips_are_detected_never_returned() {
    let base_seed = seed_from_env();
    let cases = crate::testing::cases(1000);
    for case in 0..cases {
        let seed = base_seed.wrapping_add(case);
        let mut rng = SplitMix64::new(seed);
        let io = SimIo::new(seed);
        let options = sim_options(&io, 4096);
        let (wal, _) = Wal::open(&dir(), options.clone()).unwrap();
        let mut model = Vec::new();
        for _ in 0..rng.range_inclusive(1, 60) {
            let lsn = model.len() as u64 + 1;
            let bytes = payload(&mut rng, lsn);
            wal.append(&bytes).unwrap();
            model.push((lsn, bytes));
        }
        let extents = live_extents(&wal);
        drop(wal);
        let files: Vec<PathBuf> = io
            .list_files()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "wal"))
            .collect();
        let file = &files[rng.below(files.len() as u64) as usize];
        let len = io.read_file(file).unwrap().len() as u64;
        // Bias towards the live part, where detection is mandatory.
        let live_end = extents.iter().find(|(p, _)| p == file).map_or(0, |e| e.1);
        let offset = if live_end > 0 && rng.chance(3, 4) {
            rng.below(live_end)
        } else {
            rng.below(len)
        };
        assert!(io.flip_bit(file, offset, rng.below(8) as u8));
        let in_live_data = offset < live_end;
        match Wal::open(&dir(), options.clone()) {
            Err(WalError::Corrupt { .. }) => {}
            Err(other) => panic!("SEED={seed}: unexpected error {other}"),
            Ok((wal, report)) => {
                // A flip in bytes that hold no record (padding, the rest of
                // a header's sector) may open, but must be reported.
                assert!(
                    !in_live_data || !report.damage_skipped.is_empty(),
                    "SEED={seed}: flip at {offset} of {file:?} not detected"
                );
                assert_eq!(read_all(&wal), model, "SEED={seed}");
            }
        }
    }
}

// Goal: a bit flipped after open is caught by the reader's checksums.
#[test]
fn reader_detects_rot_after_open() {
    let io = SimIo::new(11);
    let (wal, _) = Wal::open(&dir(), sim_options(&io, 8192)).unwrap();
    for i in 0..10u64 {
        wal.append(&[i as u8; 100]).unwrap();
    }
    let (path, _) = live_extents(&wal)[0].clone();
    // Inside the first record's payload (frames start after the header's
    // sector).
    assert!(io.flip_bit(&path, 512 + 32 + 10, 3));
    let error = wal
        .iter(1)
        .find_map(|r| r.err())
        .expect("rot must be reported");
    assert!(matches!(error, WalError::Corrupt { .. }), "{error}");
}

// Goal: the opt-in repair cuts the log at the first corruption, keeps every
// record before it, moves the segments after it to quarantine and reports
// exactly what it removed; without repair the same log refuses to open, and
// a second repair finds nothing to do.
#[test]
fn repair_truncates_at_corruption() {
    let io = SimIo::new(12);
    let options = sim_options(&io, 4096);
    let (wal, _) = Wal::open(&dir(), options.clone()).unwrap();
    for i in 0..100u64 {
        wal.append(&[i as u8; 100]).unwrap();
    }
    let extents = live_extents(&wal);
    let second_first_lsn = wal.shared.segments.read()[1].base_lsn;
    let second_offset = wal.shared.segments.read()[1].first_frame_offset;
    drop(wal);
    // Rot the first record of the second segment (inside its payload).
    let (path, _) = &extents[1];
    assert!(io.flip_bit(path, second_offset + 40, 0));
    let error = Wal::open(&dir(), options.clone()).unwrap_err();
    let WalError::Corrupt { expected_lsn, .. } = error else {
        panic!("expected Corrupt, got {error}");
    };
    assert_eq!(expected_lsn, second_first_lsn);
    let plan = Wal::plan_repair(&dir(), &options).unwrap();
    assert_eq!(plan.cut_lsn, Some(expected_lsn));
    assert_eq!(plan.removed_lsns, expected_lsn..101);
    let repaired = WalOptions {
        repair: true,
        ..options.clone()
    };
    let (wal, report) = Wal::open(&dir(), repaired.clone()).unwrap();
    assert_eq!(report.repair.as_ref(), Some(&plan));
    assert_eq!(read_all(&wal).len() as u64, expected_lsn - 1);
    let lsn = wal.append(b"after repair").unwrap();
    assert_eq!(lsn, expected_lsn);
    drop(wal);
    assert!(Wal::plan_repair(&dir(), &options).unwrap().is_empty());
    let (wal, report) = Wal::open(&dir(), repaired).unwrap();
    assert!(report.repair.is_none());
    assert_eq!(read_all(&wal).len() as u64, expected_lsn);
    // Nothing was deleted: the cut-off segments are in quarantine.
    let quarantined = io
        .list_files()
        .into_iter()
        .filter(|p| p.starts_with(dir().join(QUARANTINE_DIR_NAME)))
        .count();
    assert!(quarantined > 0);
}

// Goal: a torn last write is truncated and reported, and the log continues.
#[test]
fn torn_tail_is_truncated_and_reported() {
    // Search seeds for a crash that leaves a torn frame (deterministic).
    let mut seen_torn = 0;
    for seed in 0..400 {
        let io = SimIo::new(seed);
        let options = sim_options(&io, 1 << 16);
        let (wal, _) = Wal::open(&dir(), options.clone()).unwrap();
        wal.append(&[1u8; 100]).unwrap();
        wal.wait_for_spare_segment();
        // Cut power after the next write, before its sync.
        io.cut_power_after(1);
        assert!(wal.append(&[2u8; 1000]).is_err());
        drop(wal);
        io.crash(CrashMode::TornWrite);
        let (wal, report) = Wal::open(&dir(), options).unwrap();
        let records = read_all(&wal);
        assert_eq!(records[0], (1, vec![1u8; 100]), "seed {seed}");
        if let Some(torn) = report.torn_tail {
            seen_torn += 1;
            assert_eq!(records.len(), 1, "seed {seed}");
            assert!(torn.bytes > 0);
        }
        assert_eq!(wal.append(b"next").unwrap(), records.len() as u64 + 1);
    }
    assert!(seen_torn > 0, "no seed produced a torn tail");
}

#[test]
fn invalid_options_are_rejected() {
    let io = SimIo::new(13);
    let mut options = sim_options(&io, 1000);
    assert!(matches!(
        Wal::open(&dir(), options.clone()),
        Err(WalError::InvalidOptions { .. })
    ));
    options.segment_size_bytes = 4096;
    options.record_size_max_bytes = 8000;
    assert!(matches!(
        Wal::open(&dir(), options),
        Err(WalError::InvalidOptions { .. })
    ));
}

// Goal: the real file system works end to end (preallocation, rename,
// directory sync, memory-mapped recovery).
#[test]
fn real_io_round_trip() {
    let temp = tempfile::tempdir().unwrap();
    let options = WalOptions {
        segment_size_bytes: 1 << 16,
        record_size_max_bytes: 1024,
        ..WalOptions::default()
    };
    let path: &Path = temp.path();
    let (wal, _) = Wal::open(path, options.clone()).unwrap();
    for i in 0..1000u64 {
        wal.append(&i.to_le_bytes()).unwrap();
    }
    drop(wal);
    let (wal, report) = Wal::open(path, options).unwrap();
    assert_eq!(report.next_lsn, 1001);
    let records = read_all(&wal);
    assert_eq!(records.len(), 1000);
    assert_eq!(records[999].1, 999u64.to_le_bytes());
    assert!(
        crate::storage::io::RealIo
            .exists(&path.join(LOCK_FILE_NAME))
            .unwrap()
    );
}

// Goal: random reads are right wherever the sparse index points, both for
// the index the writer builds and the one recovery rebuilds. Method: a 1 MiB
// segment holding many records in batches, every LSN read on its own.
#[test]
fn random_reads_use_the_sparse_index_correctly() {
    let io = SimIo::new(14);
    let options = WalOptions {
        record_size_max_bytes: 40_000,
        group_size_max_bytes: 1 << 20,
        ..sim_options(&io, 1 << 20)
    };
    let (wal, _) = Wal::open(&dir(), options.clone()).unwrap();
    let mut rng = SplitMix64::new(14);
    let mut model = Vec::new();
    for _ in 0..40 {
        let start = wal.next_lsn();
        let batch: Vec<Vec<u8>> = (0..rng.range_inclusive(1, 50))
            .map(|i| {
                let len = if rng.chance(1, 20) {
                    30_000
                } else {
                    rng.below(3000) as usize
                };
                let mut bytes = vec![0u8; len];
                rng.fill(&mut bytes);
                if len >= 8 {
                    bytes[..8].copy_from_slice(&(start + i).to_le_bytes());
                }
                bytes
            })
            .collect();
        wal.append_batch(&batch).unwrap();
        model.extend(batch);
    }
    let check = |wal: &Wal| {
        for (i, expected) in model.iter().enumerate() {
            assert_eq!(&wal.read(i as u64 + 1).unwrap(), expected, "lsn {}", i + 1);
        }
    };
    check(&wal);
    drop(wal);
    let (wal, _) = Wal::open(&dir(), options).unwrap();
    check(&wal);
}

// Goal: whatever prefix of sectors of the last (unacknowledged) write
// survives a power cut, recovery keeps every acknowledged record, drops
// the torn record (reporting it) or keeps it whole, never anything in
// between, and the log goes on from there. Method: tear the write at every
// sector boundary in turn, for a record in the middle of a segment, the
// first write into a new segment (its header included), and a group of
// several records.
#[test]
fn torn_last_write_at_every_sector_boundary() {
    #[derive(Debug, Clone, Copy)]
    enum Shape {
        MidSegment,
        NewSegment,
        Group,
    }
    for shape in [Shape::MidSegment, Shape::NewSegment, Shape::Group] {
        let io = SimIo::new(21);
        let options = WalOptions {
            record_size_max_bytes: 4096,
            ..sim_options(&io, 32 << 10)
        };
        let (wal, _) = Wal::open(&dir(), options.clone()).unwrap();
        let mut acked: Vec<(Lsn, Vec<u8>)> = Vec::new();
        let small = |i: u64| vec![i as u8 | 1; 300];
        let mut i = 0u64;
        loop {
            i += 1;
            acked.push((wal.append(&small(i)).unwrap(), small(i)));
            // For a new segment: fill the first until a 3000-byte record
            // (more with its stamps) no longer fits.
            let full = wal.live_bytes() + 512 + 3000 > 32 << 10;
            if !matches!(shape, Shape::NewSegment) && i == 3 || full {
                break;
            }
        }
        assert_eq!(wal.segment_count(), 1);
        wal.wait_for_spare_segment();
        let torn: Vec<Vec<u8>> = match shape {
            Shape::Group => (0..5u8).map(|i| vec![0xA0 | i; 700]).collect(),
            _ => vec![vec![0xB5; 3000]],
        };
        // The power goes after the write into the segment the torn write
        // lands in, before its sync (counted on that file alone, so that
        // the preparer creating the next segment cannot take the countdown).
        let target = match shape {
            Shape::NewSegment => segment::segment_path(&dir(), 2),
            _ => segment::segment_path(&dir(), 1),
        };
        assert!(io.cut_power_after_on(&target, 1));
        assert!(
            wal.append_batch(&torn).is_err(),
            "{shape:?}: the write must not sync"
        );
        drop(wal);
        let torn_bytes: usize = torn.iter().map(|t| frame_size_max(t.len())).sum();
        let sectors = torn_bytes as u64 / 512 + 3;
        let mut outcomes = std::collections::BTreeSet::new();
        for kept in 0..=sectors {
            let io = io.fork();
            io.crash(CrashMode::TornLastWrite { sectors_kept: kept });
            let options = WalOptions {
                io: Arc::new(io.clone()),
                ..options.clone()
            };
            let context = format!("{shape:?} kept {kept} sectors");
            let (wal, report) =
                Wal::open(&dir(), options).unwrap_or_else(|e| panic!("{context}: {e}"));
            let records = read_all(&wal);
            assert_eq!(&records[..acked.len()], &acked[..], "{context}: acked lost");
            let survived = &records[acked.len()..];
            // A prefix of the torn write's records, each whole.
            assert!(survived.len() <= torn.len(), "{context}");
            for (i, (_, bytes)) in survived.iter().enumerate() {
                assert_eq!(bytes, &torn[i], "{context}");
            }
            if report.torn_tail.is_some() {
                assert!(survived.len() < torn.len(), "{context}: torn but whole");
            }
            if survived.len() == torn.len() && matches!(shape, Shape::NewSegment) {
                assert_eq!(
                    wal.segment_count(),
                    2,
                    "{context}: the write began a segment"
                );
            }
            outcomes.insert((survived.len(), report.torn_tail.is_some()));
            // The log continues after the tear.
            let next = wal.append(b"after").unwrap();
            assert_eq!(next, (acked.len() + survived.len()) as u64 + 1, "{context}");
        }
        // Every outcome from nothing to everything was produced, and some
        // tears left a partial record that recovery removed.
        let counts: std::collections::BTreeSet<usize> = outcomes.iter().map(|o| o.0).collect();
        assert_eq!(counts.len(), torn.len() + 1, "{shape:?}: {outcomes:?}");
        assert!(
            outcomes.iter().any(|o| o.1),
            "{shape:?}: no torn tail: {outcomes:?}"
        );
    }
}

/// Writes `bytes` as the whole file at `path` (created if missing).
fn put_file(io: &SimIo, path: &Path, bytes: &[u8]) {
    let file = match io.open(path, crate::storage::io::OpenMode::ReadWrite) {
        Ok(file) => file,
        Err(_) => io
            .open(path, crate::storage::io::OpenMode::CreateNew)
            .unwrap(),
    };
    file.set_len(0).unwrap();
    file.write_all_at(bytes, 0).unwrap();
    file.sync_data().unwrap();
}

/// A closed log of `records` 100-byte records in 4 KiB segments.
fn closed_log(seed: u64, records: u64) -> (SimIo, WalOptions) {
    let io = SimIo::new(seed);
    let options = sim_options(&io, 4096);
    let (wal, _) = Wal::open(&dir(), options.clone()).unwrap();
    for i in 0..records {
        wal.append(&[i as u8; 100]).unwrap();
    }
    wal.close().unwrap();
    (io, options)
}

fn corrupt_reason(result: Result<(Wal, RecoveryReport), WalError>) -> CorruptReason {
    match result {
        Err(WalError::Corrupt { reason, .. }) => reason,
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("expected Corrupt, opened"),
    }
}

// Goal: rows 1 and 2 of the decision table that the ledger matrix does not
// reach: a format-1 log is refused by name; a segment from another log, a
// segment whose header names another index, and an unlisted segment with
// data are damage (repair moves the unlisted one to quarantine); files
// behind the manifest's first segment (an interrupted purge) and a zero
// segment whose listing was lost are removed and reported.
#[test]
fn segment_file_rows() {
    // Format 1: the old header (no log id, version 1), checksum intact.
    let io = SimIo::new(40);
    io.create_dir_all(&dir()).unwrap();
    let mut v1 = [0u8; 4096];
    v1[0..8].copy_from_slice(b"SYNCPAYW");
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    v1[16..24].copy_from_slice(&1u64.to_le_bytes());
    v1[24..32].copy_from_slice(&1u64.to_le_bytes());
    v1[32..40].copy_from_slice(&4096u64.to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&v1[0..12]);
    hasher.update(&v1[16..64]);
    v1[12..16].copy_from_slice(&hasher.finalize().to_le_bytes());
    put_file(&io, &segment::segment_path(&dir(), 1), &v1);
    match Wal::open(&dir(), sim_options(&io, 4096)) {
        Err(WalError::UnsupportedFormat { version: 1, .. }) => {}
        other => panic!("expected UnsupportedFormat, got {:?}", other.map(|_| ())),
    }

    // Another log's segment, and a header naming another index.
    let (io, options) = closed_log(41, 30);
    let (other_io, _) = closed_log(42, 30);
    let first = segment::segment_path(&dir(), 1);
    put_file(&io, &first, &other_io.read_file(&first).unwrap());
    assert!(matches!(
        corrupt_reason(Wal::open(&dir(), options.clone())),
        CorruptReason::ForeignSegment { .. } | CorruptReason::MissingSegment { .. }
    ));
    let (io, options) = closed_log(43, 30);
    let second = segment::segment_path(&dir(), 2);
    put_file(&io, &first, &io.read_file(&second).unwrap());
    assert!(matches!(
        corrupt_reason(Wal::open(&dir(), options.clone())),
        CorruptReason::SegmentIndex { .. } | CorruptReason::MissingSegment { .. }
    ));

    // An unlisted segment with data: damage; repair quarantines it only.
    let (io, options) = closed_log(44, 30);
    let (wal, _) = Wal::open(&dir(), options.clone()).unwrap();
    let last_index = wal.shared.manifest.lock().current().last_index;
    drop(wal);
    let stray = segment::segment_path(&dir(), last_index + 5);
    put_file(&io, &stray, &io.read_file(&first).unwrap());
    assert!(matches!(
        corrupt_reason(Wal::open(&dir(), options.clone())),
        CorruptReason::UnlistedSegment { .. }
    ));
    let repair = WalOptions {
        repair: true,
        ..options.clone()
    };
    let (wal, report) = Wal::open(&dir(), repair).unwrap();
    let plan = report.repair.expect("repaired");
    assert_eq!(plan.cut_lsn, None, "{plan:?}");
    assert_eq!(read_all(&wal).len(), 30, "nothing removed");
    assert!(!io.exists(&stray).unwrap());
    drop(wal);

    // An interrupted purge: a file behind first_index is removed.
    let (io, options) = closed_log(45, 80);
    let (wal, _) = Wal::open(&dir(), options.clone()).unwrap();
    let removed = wal.truncate_prefix(60).unwrap();
    assert!(removed > 0);
    drop(wal);
    let behind = segment::segment_path(&dir(), 1);
    assert!(!io.exists(&behind).unwrap());
    put_file(&io, &behind, &[7u8; 4096]);
    let (wal, report) = Wal::open(&dir(), options.clone()).unwrap();
    assert_eq!(report.leftover_segments_removed, 1);
    assert!(!io.exists(&behind).unwrap());
    let kept = read_all(&wal);
    assert_eq!(kept.last().unwrap().0, 80);
    let last_index = wal.shared.manifest.lock().current().last_index;
    drop(wal);

    // A zero segment just past last_index (renamed, listing lost).
    let created = segment::segment_path(&dir(), last_index + 1);
    put_file(&io, &created, &[0u8; 4096]);
    let (wal, report) = Wal::open(&dir(), options).unwrap();
    assert_eq!(report.leftover_segments_removed, 1);
    assert_eq!(read_all(&wal), kept);
}

// Goal: row 4's clean-close rows. A log closed cleanly that lost its last
// records is damage (not a torn tail), however they were lost; one whose
// superseding header was lost (so truncated records would reappear) is
// damage at the mark; repair cuts at the mark and the truncated records
// stay gone.
#[test]
fn clean_close_rows() {
    let (io, options) = closed_log(46, 50);
    let (wal, report) = Wal::open(&dir(), options.clone()).unwrap();
    assert!(report.previous_close_clean);
    let last = wal.shared.segments.read().last().cloned().unwrap();
    drop(wal);
    // Zero the whole last segment's records, as if never written.
    let bytes = io.read_file(&last.path).unwrap();
    let mut zeroed = bytes.clone();
    zeroed[512..].fill(0);
    put_file(&io, &last.path, &zeroed);
    assert!(matches!(
        corrupt_reason(Wal::open(&dir(), options.clone())),
        CorruptReason::EndsBeforeCloseMark { acked_lsn: 51 }
    ));
    put_file(&io, &last.path, &bytes);
    Wal::open(&dir(), options.clone()).unwrap();

    // Truncate the suffix, close cleanly, then lose the superseding header.
    let (wal, _) = Wal::open(&dir(), options.clone()).unwrap();
    wal.truncate_suffix(40).unwrap();
    let superseding = wal.shared.segments.read().last().cloned().unwrap();
    assert_eq!(superseding.base_lsn, 40);
    wal.close().unwrap();
    drop(wal);
    put_file(&io, &superseding.path, &[0u8; 4096]);
    assert!(matches!(
        corrupt_reason(Wal::open(&dir(), options.clone())),
        CorruptReason::AfterCloseMark { acked_lsn: 40 }
    ));
    let repair = WalOptions {
        repair: true,
        ..options.clone()
    };
    let (wal, report) = Wal::open(&dir(), repair).unwrap();
    assert_eq!(report.repair.unwrap().cut_lsn, Some(40));
    assert_eq!(read_all(&wal).len(), 39, "the truncated records stay gone");
}
