//! Opening a store: lock, newest valid snapshot, log replay.
//!
//! Snapshots are verified newest first (header and payload checksums); one
//! that fails is skipped and reported, and recovery falls back to the next
//! older one, replaying more log. The newest verified snapshot decides which
//! log records are needed: those after it. The log is opened knowing that,
//! so damage wholly before it (records the snapshot already holds) is
//! skipped and reported instead of failing the open. The log must then
//! still reach back to the snapshot: if it does not (both retained
//! snapshots damaged after the log was truncated), open fails with
//! [`StoreError::LogGap`], naming every snapshot it rejected and why, rather
//! than start from a state with holes. A snapshot, damaged or not, that
//! claims records the log does not have fails with
//! [`StoreError::LogBehindSnapshot`].
//!
//! Repair (opt-in) moves rejected snapshots to `snapshots/quarantine/` and
//! lets the log cut itself at the first damaged record it needs.

use std::path::{Path, PathBuf};

use super::{
    Applied, DecodeError, RECORD_PREFIX_BYTES, SNAPSHOT_DIR_NAME, STORE_SNAPSHOT_ENVELOPE_BYTES,
    STORE_SNAPSHOT_VERSION, StateMachine, StoreError, StoreOptions, WAL_DIR_NAME,
};
use crate::storage::io::{File, Io};
use crate::storage::snapshot::{Snapshot, SnapshotDir, SnapshotError};
use crate::storage::store::ApplyContext;
use crate::storage::wal::{Lsn, RecoveryReport, RepairPlan, Wal, WalOptions};

/// A snapshot that recovery did not use, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedSnapshot {
    /// Its file.
    pub path: PathBuf,
    /// The LSN its name says it covers.
    pub lsn: Lsn,
    /// Why it was rejected.
    pub reason: String,
}

impl std::fmt::Display for RejectedSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (lsn {}): {}",
            self.path.display(),
            self.lsn,
            self.reason
        )
    }
}

/// What opening a store found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreRecovery {
    /// What the log's recovery found.
    pub wal: RecoveryReport,
    /// The snapshot recovery started from, if any.
    pub snapshot_lsn: Option<Lsn>,
    /// Snapshots skipped because they failed verification or decoding.
    pub snapshots_skipped: Vec<RejectedSnapshot>,
    /// Snapshots repair moved to quarantine: (from, to).
    pub snapshots_quarantined: Vec<(PathBuf, PathBuf)>,
    /// Log records replayed on top of the snapshot.
    pub replayed_records: u64,
    /// Bytes of those records.
    pub replayed_bytes: u64,
}

/// What repair would do (or did) to a store: its log's plan and the
/// snapshots it moves to quarantine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreRepairPlan {
    /// The log's repair plan.
    pub wal: RepairPlan,
    /// Snapshots that fail verification, to be moved to quarantine.
    pub snapshots: Vec<RejectedSnapshot>,
}

impl StoreRepairPlan {
    /// True if there is nothing to repair.
    pub fn is_empty(&self) -> bool {
        self.wal.is_empty() && self.snapshots.is_empty()
    }
}

pub(super) struct Recovered<M> {
    pub wal: Wal,
    pub snapshots: SnapshotDir,
    pub applied: Applied<M>,
    pub report: StoreRecovery,
}

pub(super) fn lock_dir(io: &dyn Io, dir: &Path) -> Result<Box<dyn File>, StoreError> {
    crate::storage::io::create_dir_durable(io, dir).map_err(StoreError::from_dir_step)?;
    crate::storage::io::lock_dir(io, dir).map_err(StoreError::from_dir_step)
}

/// The log directory of a store in `dir`.
pub(super) fn wal_dir(dir: &Path, options: &StoreOptions) -> PathBuf {
    options
        .wal_dir
        .clone()
        .unwrap_or_else(|| dir.join(WAL_DIR_NAME))
}

pub(super) fn recover<M: StateMachine>(
    dir: &Path,
    options: &StoreOptions,
) -> Result<Recovered<M>, StoreError> {
    let snapshot_dir = dir.join(SNAPSHOT_DIR_NAME);
    let snapshots = if options.wal.read_only {
        SnapshotDir::existing(&snapshot_dir, options.wal.io.clone())
    } else {
        SnapshotDir::open(&snapshot_dir, options.wal.io.clone())?
    };
    let snapshots = of_this_ledger(snapshots, dir, options)?;
    let mut report = StoreRecovery::default();
    let (newest, rejected) = newest_verified(&snapshots)?;
    if options.wal.repair {
        for snapshot in &rejected {
            let to = snapshots.quarantine(snapshot.lsn)?;
            report
                .snapshots_quarantined
                .push((snapshot.path.clone(), to));
        }
    }
    report.snapshots_skipped = rejected;
    let wal_options = WalOptions {
        needed_from_lsn: newest.as_ref().map_or(1, |s| s.lsn() + 1),
        ..options.wal.clone()
    };
    let (wal, wal_report) = Wal::open(&wal_dir(dir, options), wal_options)?;
    report.wal = wal_report;
    // A new log has just chosen its id: snapshots from now on carry it.
    let snapshots = snapshots.with_ledger_id(wal.log_id());
    check_snapshots_behind_log(&snapshots, &wal, &report)?;
    let mut applied = restore::<M>(&snapshots, newest, &wal, &mut report)?;
    let base_lsn = applied.applied_lsn;
    if wal.first_lsn() > base_lsn + 1 {
        return Err(StoreError::LogGap {
            snapshot_lsn: base_lsn,
            log_first_lsn: wal.first_lsn(),
            snapshots_rejected: report.snapshots_skipped.clone(),
            log_damage: report.wal.damage_skipped.clone(),
        });
    }
    replay(&wal, &mut applied, &mut report)?;
    Ok(Recovered {
        wal,
        snapshots,
        applied,
        report,
    })
}

/// Computes what repair would do to the store in `dir`, changing nothing.
pub(super) fn plan_repair(
    dir: &Path,
    options: &StoreOptions,
) -> Result<StoreRepairPlan, StoreError> {
    let snapshots = SnapshotDir::existing(&dir.join(SNAPSHOT_DIR_NAME), options.wal.io.clone());
    let snapshots = of_this_ledger(snapshots, dir, options)?;
    let (newest, rejected) = newest_verified(&snapshots)?;
    let wal_options = WalOptions {
        needed_from_lsn: newest.as_ref().map_or(1, |s| s.lsn() + 1),
        ..options.wal.clone()
    };
    let wal = Wal::plan_repair(&wal_dir(dir, options), &wal_options)?;
    Ok(StoreRepairPlan {
        wal,
        snapshots: rejected,
    })
}

/// Snapshots are accepted only if they carry the id of the ledger's log
/// (read from its manifest): a snapshot copied from another ledger is
/// rejected like a damaged one. Without a readable manifest (a new log, or
/// one whose damage the log's recovery reports) nothing is checked here.
fn of_this_ledger(
    snapshots: SnapshotDir,
    dir: &Path,
    options: &StoreOptions,
) -> Result<SnapshotDir, StoreError> {
    Ok(
        match Wal::read_log_id(&wal_dir(dir, options), options.wal.io.as_ref())? {
            Some(id) => snapshots.with_ledger_id(id),
            None => snapshots,
        },
    )
}

/// The newest snapshot that verifies, and the newer ones that did not.
fn newest_verified(
    snapshots: &SnapshotDir,
) -> Result<(Option<Snapshot>, Vec<RejectedSnapshot>), StoreError> {
    let mut rejected = Vec::new();
    for lsn in snapshots.list()? {
        match snapshots.load(lsn) {
            Ok(snapshot) => return Ok((Some(snapshot), rejected)),
            Err(SnapshotError::Corrupt { path, reason }) => rejected.push(RejectedSnapshot {
                path,
                lsn,
                reason: reason.to_string(),
            }),
            Err(error) => return Err(error.into()),
        }
    }
    Ok((None, rejected))
}

/// A snapshot (verified or not) naming an LSN the log does not have means
/// the log lost records a checkpoint saw: fail rather than reuse LSNs.
fn check_snapshots_behind_log(
    snapshots: &SnapshotDir,
    wal: &Wal,
    report: &StoreRecovery,
) -> Result<(), StoreError> {
    let quarantined: Vec<Lsn> = report
        .snapshots_skipped
        .iter()
        .filter(|s| {
            report
                .snapshots_quarantined
                .iter()
                .any(|(from, _)| from == &s.path)
        })
        .map(|s| s.lsn)
        .collect();
    for lsn in snapshots.list()? {
        if lsn >= wal.next_lsn() && !quarantined.contains(&lsn) {
            return Err(StoreError::LogBehindSnapshot {
                snapshot_lsn: lsn,
                log_next_lsn: wal.next_lsn(),
            });
        }
    }
    Ok(())
}

/// Restores `newest` (or, if its payload does not decode, the next older
/// snapshot that verifies and decodes, or the initial state).
fn restore<M: StateMachine>(
    snapshots: &SnapshotDir,
    newest: Option<Snapshot>,
    wal: &Wal,
    report: &mut StoreRecovery,
) -> Result<Applied<M>, StoreError> {
    let mut candidate = newest;
    loop {
        let Some(snapshot) = candidate.take() else {
            let mut machine = M::initial();
            machine.reserve_for_replay(wal.live_bytes_from(1));
            return Ok(Applied {
                machine,
                applied_lsn: 0,
                last_timestamp: 0,
            });
        };
        let lsn = snapshot.lsn();
        let log_bytes = wal.live_bytes_from(lsn + 1);
        match decode_snapshot::<M>(snapshot.payload(), log_bytes) {
            Ok((machine, last_timestamp)) => {
                report.snapshot_lsn = Some(lsn);
                return Ok(Applied {
                    machine,
                    applied_lsn: lsn,
                    last_timestamp,
                });
            }
            Err(error) => report.snapshots_skipped.push(RejectedSnapshot {
                path: snapshot.path().to_path_buf(),
                lsn,
                reason: error.to_string(),
            }),
        }
        candidate = older_verified(snapshots, lsn, report)?;
    }
}

/// The newest snapshot older than `lsn` that verifies.
fn older_verified(
    snapshots: &SnapshotDir,
    lsn: Lsn,
    report: &mut StoreRecovery,
) -> Result<Option<Snapshot>, StoreError> {
    for older in snapshots.list()?.into_iter().filter(|&l| l < lsn) {
        match snapshots.load(older) {
            Ok(snapshot) => return Ok(Some(snapshot)),
            Err(SnapshotError::Corrupt { path, reason }) => {
                report.snapshots_skipped.push(RejectedSnapshot {
                    path,
                    lsn: older,
                    reason: reason.to_string(),
                });
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(None)
}

/// Decodes a store snapshot, sizing the machine for `log_bytes` of log to
/// replay after it.
fn decode_snapshot<M: StateMachine>(
    payload: &[u8],
    log_bytes: u64,
) -> Result<(M, u64), DecodeError> {
    let error = |reason| DecodeError {
        what: "store snapshot",
        reason,
    };
    let envelope = payload
        .get(..STORE_SNAPSHOT_ENVELOPE_BYTES)
        .ok_or(error("shorter than its envelope"))?;
    let version = u32::from_le_bytes(envelope[0..4].try_into().expect("4 bytes"));
    if version != STORE_SNAPSHOT_VERSION {
        return Err(error("unknown version"));
    }
    let last_timestamp = u64::from_le_bytes(envelope[8..16].try_into().expect("8 bytes"));
    let image = &payload[STORE_SNAPSHOT_ENVELOPE_BYTES..];
    let machine = M::restore_for_replay(image, log_bytes)?;
    // Pair assertion with the encoder (debug builds: it costs a second
    // encoding): a decoded image re-encodes to the same bytes.
    #[cfg(debug_assertions)]
    {
        let mut again = Vec::with_capacity(image.len());
        M::write_image(&machine.image(), &mut again).expect("encoding into a Vec cannot fail");
        debug_assert!(again == image, "a restored image re-encodes differently");
    }
    Ok((machine, last_timestamp))
}

/// Decoded records a replay keeps in flight ahead of the one being applied
/// (a ledger batch decodes to about a megabyte).
const REPLAY_READ_AHEAD: usize = 4;

/// One log record, read, verified and decoded, ready to apply.
struct DecodedRecord<C> {
    lsn: Lsn,
    timestamp: u64,
    command: C,
    bytes: u64,
}

/// Applies every log record after the restored state.
///
/// Reading, checksum verification and decoding run on a helper thread a few
/// records ahead of the applying thread, so a replay costs about the apply
/// time alone. Records still arrive, and are applied, strictly in log order;
/// the first error either side meets ends the replay with that error.
fn replay<M: StateMachine>(
    wal: &Wal,
    applied: &mut Applied<M>,
    report: &mut StoreRecovery,
) -> Result<(), StoreError> {
    let mut reader = wal.reader(applied.applied_lsn + 1, Lsn::MAX)?;
    let (sender, receiver) = crossbeam_channel::bounded(REPLAY_READ_AHEAD);
    std::thread::scope(|scope| {
        let reading = std::thread::Builder::new()
            .name("syncpay-replay".into())
            .spawn_scoped(scope, move || {
                loop {
                    let item = match reader.next_record() {
                        Ok(None) => break,
                        Ok(Some((lsn, payload))) => decode_record::<M>(lsn, payload),
                        Err(error) => Err(error.into()),
                    };
                    let failed = item.is_err();
                    // A send fails only when the applying side has stopped.
                    if sender.send(item).is_err() || failed {
                        break;
                    }
                }
            });
        if let Err(source) = reading {
            return Err(StoreError::Io {
                op: "spawn replay thread",
                path: wal.dir().to_path_buf(),
                source,
            });
        }
        // Returning early drops `receiver`, which stops the reading thread;
        // the scope joins it before `replay` returns.
        for item in receiver {
            let record = item?;
            // The command owns `timestamp - needed + 1 ..= timestamp`, which
            // must lie entirely after the previous command's timestamps.
            let needed = M::timestamps_needed(&record.command).max(1);
            if record.timestamp < applied.last_timestamp.saturating_add(needed) {
                return Err(StoreError::Timestamp {
                    lsn: record.lsn,
                    timestamp: record.timestamp,
                    previous: applied.last_timestamp,
                });
            }
            // Pair assertion with the log reader: replay is contiguous.
            assert_eq!(
                record.lsn,
                applied.applied_lsn + 1,
                "replay skipped or repeated a record"
            );
            report.replayed_bytes += record.bytes;
            report.replayed_records += 1;
            let context = ApplyContext {
                lsn: record.lsn,
                timestamp: record.timestamp,
            };
            applied.machine.apply(record.command, context);
            applied.applied_lsn = record.lsn;
            applied.last_timestamp = record.timestamp;
        }
        Ok(())
    })
}

/// Splits a store record into its timestamp prefix and decoded command.
fn decode_record<M: StateMachine>(
    lsn: Lsn,
    payload: &[u8],
) -> Result<DecodedRecord<M::Command>, StoreError> {
    let decode_error = |source| StoreError::Decode { lsn, source };
    let prefix = payload
        .get(..RECORD_PREFIX_BYTES)
        .ok_or(decode_error(DecodeError {
            what: "store record",
            reason: "shorter than its timestamp",
        }))?;
    let timestamp = u64::from_le_bytes(prefix.try_into().expect("8 bytes"));
    let command = M::decode_command(&payload[RECORD_PREFIX_BYTES..]).map_err(decode_error)?;
    Ok(DecodedRecord {
        lsn,
        timestamp,
        command,
        bytes: payload.len() as u64,
    })
}
