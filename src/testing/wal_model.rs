//! A model-based scenario for the log: random appends and truncations on
//! the simulated disk, with power cuts at random operations and crashes in
//! every mode, checked against a model of what was written and what was
//! acknowledged. Shared by the unit tests (seeded) and the `wal_model` fuzz
//! target (driven by the fuzzer's bytes).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Choices;
use crate::storage::io::{CrashMode, SimIo};
use crate::storage::wal::{Lsn, Wal, WalOptions};

/// What the test knows about the log: every record ever written at each
/// LSN (the latest write wins), and the ranges that must survive.
#[derive(Debug, Default)]
pub struct WalModel {
    /// `written[i]` is the last payload submitted with LSN `i + 1`.
    pub written: Vec<Vec<u8>>,
    /// Every LSN below this was acknowledged and not truncated since.
    pub acked_end: Lsn,
    /// The largest `keep_from` passed to `truncate_prefix`.
    pub prefix_floor: Lsn,
}

impl WalModel {
    /// Checks a recovered log: a contiguous run of what was written, ending
    /// at or after the acknowledged end and starting at or before the floor.
    pub fn check(&self, records: &[(Lsn, Vec<u8>)], first: Lsn, next: Lsn, context: &str) {
        assert!(
            next >= self.acked_end,
            "{context}: lost acknowledged records: next {next} < {}",
            self.acked_end
        );
        assert!(
            next as usize <= self.written.len() + 1,
            "{context}: invented records"
        );
        assert!(
            first <= self.prefix_floor.max(1),
            "{context}: first {first} > floor {}",
            self.prefix_floor
        );
        assert_eq!(records.len() as u64, next - first, "{context}");
        for (lsn, bytes) in records {
            assert_eq!(
                bytes,
                &self.written[*lsn as usize - 1],
                "{context}: wrong data at lsn {lsn}"
            );
        }
    }
}

/// The log directory inside a simulated file system.
pub fn dir() -> PathBuf {
    PathBuf::from("/db/wal")
}

/// Small segments and records, so that few operations cover rollover.
pub fn sim_options(io: &SimIo, segment_size_bytes: u64) -> WalOptions {
    WalOptions {
        segment_size_bytes,
        record_size_max_bytes: 1024,
        group_size_max_bytes: 8192,
        queue_depth_max: 64,
        repair: false,
        needed_from_lsn: 1,
        read_only: false,
        io: Arc::new(io.clone()),
    }
}

/// A payload for `lsn`: mostly small, sometimes large enough to force
/// segment rollover; begins with the LSN when long enough.
pub fn payload(choices: &mut impl Choices, lsn: Lsn) -> Vec<u8> {
    let len = if choices.chance(1, 10) {
        choices.below(1024) as usize
    } else {
        choices.below(200) as usize
    };
    let mut bytes = vec![0u8; len];
    choices.fill(&mut bytes);
    if len >= 8 {
        bytes[..8].copy_from_slice(&lsn.to_le_bytes());
    }
    bytes
}

fn reopen_and_check(options: &WalOptions, model: &mut WalModel, context: &str) -> Wal {
    let (wal, report) = Wal::open(Path::new(&dir()), options.clone())
        .unwrap_or_else(|e| panic!("{context}: open failed: {e}"));
    let records: Vec<(Lsn, Vec<u8>)> = wal
        .iter(wal.first_lsn())
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{context}: read failed: {e}"));
    model.check(&records, report.first_lsn, report.next_lsn, context);
    // What recovered is now the truth: unacknowledged records that survived
    // count as written; everything past the end is gone.
    model.written.truncate(report.next_lsn as usize - 1);
    model.acked_end = report.next_lsn;
    wal
}

/// One random operation against the log and the model; returns false if
/// it failed (the power was cut).
fn step(wal: &Wal, choices: &mut impl Choices, model: &mut WalModel) -> bool {
    match choices.below(20) {
        0 => {
            let from = choices.range_inclusive(wal.first_lsn(), wal.next_lsn());
            // Even a failed truncation may have become durable, so the
            // acknowledged end drops either way; only success removes the
            // old records from what may be recovered.
            model.acked_end = model.acked_end.min(from);
            let ok = wal.truncate_suffix(from).is_ok();
            if ok {
                model.written.truncate(from as usize - 1);
            }
            ok
        }
        1 => {
            let keep_from = choices.range_inclusive(1, wal.next_lsn());
            // A failed truncation may have removed some segments too.
            model.prefix_floor = model.prefix_floor.max(keep_from);
            wal.truncate_prefix(keep_from).is_ok()
        }
        _ => {
            let count = choices.range_inclusive(1, 4);
            let start = wal.next_lsn();
            let payloads: Vec<Vec<u8>> = (0..count).map(|i| payload(choices, start + i)).collect();
            for (i, bytes) in payloads.iter().enumerate() {
                model.written.truncate((start - 1) as usize + i);
                model.written.push(bytes.clone());
            }
            match wal.append_batch(&payloads) {
                Ok(range) => {
                    assert_eq!(range, start..start + count);
                    model.acked_end = range.end;
                    true
                }
                Err(_) => false,
            }
        }
    }
}

/// Runs one schedule: four cycles of operations, each ended by a power cut
/// after a chosen number of disk operations and a crash in a chosen mode,
/// then a reopen checked against the model. Panics on any violation.
pub fn run_schedule(choices: &mut impl Choices, sim_seed: u64, context: &str) {
    let io = SimIo::new(sim_seed);
    let options = sim_options(&io, [4096, 8192, 16384][choices.below(3) as usize]);
    let mut model = WalModel {
        acked_end: 1,
        ..WalModel::default()
    };
    let mut wal = reopen_and_check(&options, &mut model, &format!("{context} initial"));
    for cycle in 0..4 {
        let context = format!("{context} cycle {cycle}");
        io.cut_power_after(choices.below(60));
        for _ in 0..40 {
            if !step(&wal, choices, &mut model) {
                break;
            }
        }
        drop(wal);
        let modes = [
            CrashMode::PowerLoss,
            CrashMode::TornWrite,
            CrashMode::ProcessKill,
        ];
        let mode = modes[choices.below(3) as usize];
        io.crash(mode);
        wal = reopen_and_check(&options, &mut model, &format!("{context} {mode:?}"));
    }
}
