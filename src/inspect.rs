//! Read-only inspection and verification of a ledger directory, for the
//! operator commands (`syncpay inspect`, `verify`, `dump`): nothing here
//! writes to the directory.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::ledger::codec::{self, LedgerBatch};
use crate::ledger::{Account, Ledger, Transfer};
use crate::options::LedgerOptions;
use crate::recovery::{LogRecovery, Recovery};
use crate::storage::snapshot::{SnapshotDir, SnapshotError};
use crate::storage::store::{RECORD_PREFIX_BYTES, SNAPSHOT_DIR_NAME};
use crate::storage::wal::{Lsn, Wal, WalOptions};

/// One log segment as a read-only open sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Index from the file name.
    pub index: u64,
    /// The file.
    pub path: PathBuf,
    /// First readable LSN in it.
    pub first_lsn: u64,
    /// One past its last record.
    pub end_lsn: u64,
    /// Bytes up to the end of its last record.
    pub used_bytes: u64,
    /// Size of the (preallocated) file.
    pub file_bytes: u64,
}

/// One snapshot file, verified (header and payload checksums).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The last LSN it covers.
    pub lsn: u64,
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// `None` if it verifies; otherwise why not.
    pub problem: Option<String>,
}

/// What `syncpay inspect` shows: the files, the formats, the log's extent,
/// without replaying the log.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Inspection {
    /// The ledger directory.
    pub path: PathBuf,
    /// Log segment format version this build reads and writes.
    pub log_format_version: u32,
    /// Snapshot format version this build reads and writes.
    pub snapshot_format_version: u32,
    /// Events per batch the options allow.
    pub batch_events_max: usize,
    /// The snapshot files, newest first.
    pub snapshots: Vec<SnapshotInfo>,
    /// The live log segments (empty if the log does not open).
    pub segments: Vec<SegmentInfo>,
    /// What a read-only open of the log found (every frame's checksum
    /// verified), or why it could not open.
    pub log: std::result::Result<LogRecovery, String>,
}

/// One log record, decoded (`syncpay inspect DIR record LSN`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogRecord {
    /// Its LSN.
    pub lsn: u64,
    /// The last timestamp the ledger assigned to the record (its last
    /// batch's).
    pub timestamp: u64,
    /// Bytes of the record's payload.
    pub bytes: usize,
    /// The callers' batches the record holds, in the order they applied:
    /// one, or several gathered from concurrent calls.
    pub batches: Vec<LogBatch>,
}

/// One caller's batch in a [`LogRecord`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogBatch {
    /// The batch timestamp (its last event's).
    pub timestamp: u64,
    /// The accounts of a `create_accounts` batch.
    pub accounts: Vec<Account>,
    /// The transfers of a `create_transfers` batch.
    pub transfers: Vec<Transfer>,
}

/// What `syncpay verify` established.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Verification {
    /// What the read-only open found (snapshot used, records replayed,
    /// damage skipped).
    pub recovery: Recovery,
    /// Every snapshot file, verified.
    pub snapshots: Vec<SnapshotInfo>,
    /// Accounts in the replayed state.
    pub accounts: u64,
    /// Transfers in the replayed state.
    pub transfers: u64,
    /// Damage found although the ledger opens: damage a snapshot covers, a
    /// damaged older snapshot, a torn unacknowledged tail.
    pub warnings: Vec<String>,
    /// Harmless observations (a superseded segment missing after a repair,
    /// one damaged manifest slot): reported, not counted as damage.
    pub notes: Vec<String>,
}

impl Verification {
    /// True if nothing at all was found wrong.
    pub fn is_clean(&self) -> bool {
        self.warnings.is_empty()
    }
}

/// Every snapshot file, verified; `verified` names one the caller already
/// verified (the one an open used), which is not read again.
fn verify_snapshots(
    path: &Path,
    options: &LedgerOptions,
    verified: Option<Lsn>,
) -> Result<Vec<SnapshotInfo>> {
    let dir = path.join(SNAPSHOT_DIR_NAME);
    let io = options.io_ref();
    let mut snapshots = SnapshotDir::existing(&dir, io.clone());
    if let Some(id) = Wal::read_log_id(&options.log_dir(path), io.as_ref())? {
        snapshots = snapshots.with_ledger_id(id);
    }
    let lsns = match snapshots.list() {
        Ok(lsns) => lsns,
        Err(SnapshotError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Vec::new()
        }
        Err(error) => return Err(error.into()),
    };
    let mut infos = Vec::new();
    for lsn in lsns {
        let file = snapshots.path(lsn);
        let bytes = io
            .open(&file, crate::storage::io::OpenMode::ReadOnly)
            .and_then(|f| f.len())
            .unwrap_or(0);
        let problem = if verified == Some(lsn) {
            None
        } else {
            match snapshots.load(lsn) {
                Ok(_) => None,
                Err(SnapshotError::Corrupt { reason, .. }) => Some(reason.to_string()),
                Err(error) => return Err(error.into()),
            }
        };
        infos.push(SnapshotInfo {
            lsn,
            path: file,
            bytes,
            problem,
        });
    }
    Ok(infos)
}

fn open_log(
    path: &Path,
    options: &LedgerOptions,
    needed_from_lsn: Lsn,
) -> Result<(Wal, LogRecovery)> {
    let store = options.store_options(true);
    let wal_options = WalOptions {
        needed_from_lsn,
        ..store.wal
    };
    Ok(Wal::open(&options.log_dir(path), wal_options)?)
}

/// Like [`crate::ledger::require_ledger`], and an empty path is not found
/// either (inspection reads paths below it directly).
fn require_ledger(path: &Path, options: &LedgerOptions) -> Result<()> {
    if path.as_os_str().is_empty() {
        return Err(Error::not_found(path.to_path_buf()));
    }
    crate::ledger::require_ledger(path, options)
}

impl Ledger {
    /// Describes the ledger in `path` without writing anything or
    /// replaying the log: snapshots (each verified), log segments and
    /// their LSN ranges (every frame verified), format versions.
    ///
    /// ```
    /// # use syncpay::*;
    /// let dir = tempfile::tempdir()?;
    /// let ledger = Ledger::create(dir.path(), LedgerOptions::default())?;
    /// ledger.create_accounts(&[Account { id: 1, ledger: 1, code: 1, ..Account::default() }])?;
    /// ledger.close()?;
    /// let inspection = Ledger::inspect(dir.path(), &LedgerOptions::default())?;
    /// assert_eq!(inspection.segments[0].end_lsn, 2);
    /// assert!(inspection.log.is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn inspect(path: impl AsRef<Path>, options: &LedgerOptions) -> Result<Inspection> {
        let path = path.as_ref();
        require_ledger(path, options)?;
        let snapshots = verify_snapshots(path, options, None)?;
        let needed = snapshots
            .iter()
            .find(|s| s.problem.is_none())
            .map_or(1, |s| s.lsn + 1);
        let (segments, log) = match open_log(path, options, needed) {
            Ok((wal, report)) => {
                let io = options.io_ref();
                let segments = wal
                    .segment_infos()
                    .into_iter()
                    .map(
                        |(index, file, first_lsn, end_lsn, used_bytes)| SegmentInfo {
                            file_bytes: io
                                .open(&file, crate::storage::io::OpenMode::ReadOnly)
                                .and_then(|f| f.len())
                                .unwrap_or(0),
                            index,
                            path: file,
                            first_lsn,
                            end_lsn,
                            used_bytes,
                        },
                    )
                    .collect();
                (segments, Ok(report))
            }
            Err(error) if error.is_locked() => return Err(error),
            Err(error) => (Vec::new(), Err(error.to_string())),
        };
        Ok(Inspection {
            path: path.to_path_buf(),
            log_format_version: crate::storage::wal::SEGMENT_FORMAT_VERSION,
            snapshot_format_version: crate::storage::snapshot::SNAPSHOT_FORMAT_VERSION,
            batch_events_max: options.batch_events_max(),
            snapshots,
            segments,
            log,
        })
    }

    /// Reads and decodes the log record `lsn` of the ledger in `path`,
    /// writing nothing.
    pub fn inspect_record(
        path: impl AsRef<Path>,
        options: &LedgerOptions,
        lsn: u64,
    ) -> Result<LogRecord> {
        let path = path.as_ref();
        require_ledger(path, options)?;
        let snapshots = verify_snapshots(path, options, None)?;
        let needed = snapshots
            .iter()
            .find(|s| s.problem.is_none())
            .map_or(1, |s| s.lsn + 1)
            .min(lsn.max(1));
        let (wal, _) = open_log(path, options, needed)?;
        let payload = wal.read(lsn)?;
        let corrupt = |what: &str| {
            Error::new(
                ErrorKind::Corrupt,
                format!("log record {lsn} of {}: {what}", path.display()),
            )
        };
        let (prefix, command) = payload
            .split_first_chunk::<RECORD_PREFIX_BYTES>()
            .ok_or_else(|| corrupt("shorter than its timestamp"))?;
        let timestamp = u64::from_le_bytes(*prefix);
        let command = codec::decode(command).map_err(|e| corrupt(&e.to_string()))?;
        let batches = command
            .into_timestamped(timestamp)
            .ok_or_else(|| corrupt("timestamp smaller than its event count"))?
            .map(|(batch, timestamp)| {
                let mut entry = LogBatch {
                    timestamp,
                    accounts: Vec::new(),
                    transfers: Vec::new(),
                };
                match batch {
                    LedgerBatch::CreateAccounts(accounts) => entry.accounts = accounts,
                    LedgerBatch::CreateTransfers(transfers) => entry.transfers = transfers,
                }
                entry
            })
            .collect();
        Ok(LogRecord {
            lsn,
            timestamp,
            bytes: payload.len(),
            batches,
        })
    }

    /// Verifies the ledger in `path` without writing anything: every
    /// snapshot's checksums, every log frame's, a replay of the log onto
    /// the newest valid snapshot in memory, and the ledger's invariants.
    /// `Err` if it would not open or its state is inconsistent; `Ok` with
    /// [`Verification::warnings`] for damage that does not stop it.
    ///
    /// ```
    /// # use syncpay::*;
    /// let dir = tempfile::tempdir()?;
    /// Ledger::create(dir.path(), LedgerOptions::default())?.close()?;
    /// let verification = Ledger::verify(dir.path(), &LedgerOptions::default())?;
    /// assert!(verification.is_clean());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify(path: impl AsRef<Path>, options: &LedgerOptions) -> Result<Verification> {
        let path = path.as_ref();
        require_ledger(path, options)?;
        let ledger = Ledger::open_read_only(path, options.clone())?;
        ledger.check_invariants()?;
        let (accounts, transfers) =
            ledger.read_state(|s| (s.account_count() as u64, s.transfer_count() as u64))?;
        let recovery = ledger.recovery().clone();
        // The snapshot the open restored from is verified already; the
        // others are read here, while the ledger still holds the lock.
        let snapshots = verify_snapshots(path, options, recovery.snapshot_lsn)?;
        let mut warnings = Vec::new();
        for snapshot in &snapshots {
            if let Some(problem) = &snapshot.problem {
                warnings.push(format!(
                    "snapshot {} (lsn {}) fails verification: {problem}",
                    snapshot.path.display(),
                    snapshot.lsn
                ));
            }
        }
        for damage in &recovery.wal.damage_skipped {
            warnings.push(format!("log damage (nothing needed lost): {damage}"));
        }
        if let Some(torn) = &recovery.wal.torn_tail {
            warnings.push(format!(
                "torn, unacknowledged last write at {} offset {} (lsn {}), {} bytes",
                torn.path.display(),
                torn.offset,
                torn.lsn,
                torn.bytes
            ));
        }
        let notes = recovery.wal.notes.clone();
        Ok(Verification {
            recovery,
            snapshots,
            accounts,
            transfers,
            warnings,
            notes,
        })
    }

    /// Calls `each` with every account, in creation (timestamp) order,
    /// a page at a time, so that nothing but one page is copied.
    pub fn for_each_account(&self, each: impl FnMut(&Account)) -> Result<()> {
        for_each_page(|filter| self.query_accounts(filter), |a| a.timestamp, each)
    }

    /// Calls `each` with every transfer, in timestamp order, a page at a
    /// time.
    pub fn for_each_transfer(&self, each: impl FnMut(&Transfer)) -> Result<()> {
        for_each_page(|filter| self.query_transfers(filter), |t| t.timestamp, each)
    }
}

/// Pages through `query` in timestamp order (each page starts after the
/// previous page's last timestamp) until a page comes back empty.
fn for_each_page<T>(
    query: impl Fn(&crate::QueryFilter) -> Result<Vec<T>>,
    timestamp: impl Fn(&T) -> u64,
    mut each: impl FnMut(&T),
) -> Result<()> {
    let mut after = 0;
    loop {
        let page = query(&crate::QueryFilter {
            timestamp_min: after + 1,
            limit: crate::BATCH_EVENTS_MAX as u32,
            ..crate::QueryFilter::default()
        })?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = timestamp(last);
        page.iter().for_each(&mut each);
    }
}
