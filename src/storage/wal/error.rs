//! Errors of the write-ahead log.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::Lsn;

/// An error of the write-ahead log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// A file operation failed.
    #[error("log {op} failed on {path}: {source}")]
    Io {
        /// The operation (`write`, `sync_data`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The log is damaged: data that should be valid is not. Open fails
    /// with this error rather than dropping anything; an explicit repair
    /// (`WalOptions::repair`) may truncate the log at `offset`.
    #[error("log corrupt in {path} at offset {offset} (expected lsn {expected_lsn}): {reason}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the damage in that file.
        offset: u64,
        /// The LSN the log expected at that point.
        expected_lsn: Lsn,
        /// What is wrong.
        reason: CorruptReason,
    },
    /// A previous write or sync failed, so the state of the log on disk is
    /// unknown; every call fails until the log is reopened.
    #[error("log is poisoned by an earlier failure: {cause}")]
    Poisoned {
        /// The failure that poisoned the log.
        cause: Arc<WalError>,
    },
    /// A record larger than `WalOptions::record_size_max_bytes`.
    #[error("record of {len} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The options are inconsistent.
    #[error("invalid log options: {reason}")]
    InvalidOptions {
        /// Which constraint is violated.
        reason: &'static str,
    },
    /// An LSN outside the log.
    #[error("lsn {lsn} is outside the log [{first_lsn}, {next_lsn})")]
    LsnOutOfRange {
        /// The LSN asked for.
        lsn: Lsn,
        /// The first LSN in the log.
        first_lsn: Lsn,
        /// One past the last durable LSN.
        next_lsn: Lsn,
    },
    /// Another process (or instance) has the log directory open.
    #[error("log directory {path} is locked by another instance")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The log was closed.
    #[error("log is closed")]
    Closed,
    /// The caller withdrew a submission while building it; nothing was
    /// written and no LSN was used.
    #[error("submission withdrawn before it was written")]
    Withdrawn,
    /// The directory holds a log of a format this version does not read
    /// (format 1, from before the manifest and sector stamps).
    #[error("{path} is log format {version}; this version reads format {supported} only")]
    UnsupportedFormat {
        /// The file whose format was read.
        path: PathBuf,
        /// Its format version.
        version: u32,
        /// The format this code reads.
        supported: u32,
    },
    /// Repair cannot produce a log that opens: the records the caller
    /// needs (from `needed_from_lsn` on) are not all intact, so cutting the
    /// log at the damage would leave it behind its snapshot.
    #[error("cannot repair: lsn {needed_from_lsn} on is needed but damaged: {damage}")]
    RepairImpossible {
        /// The first LSN the caller needs.
        needed_from_lsn: Lsn,
        /// The damage that removes it.
        damage: Box<super::Damage>,
    },
}

/// What exactly is wrong at a corrupt position.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CorruptReason {
    /// The segment header is damaged.
    #[error("segment header is invalid")]
    SegmentHeader,
    /// The segment header names another segment than the file name.
    #[error("segment header says index {found}, file name says {expected}")]
    SegmentIndex {
        /// From the file name.
        expected: u64,
        /// From the header.
        found: u64,
    },
    /// A preallocated, unused segment sits before used ones, or holds data.
    #[error("unused segment is not where it may be or is not zero-filled")]
    UnusedSegment,
    /// A record header's checksum does not match.
    #[error("record header checksum {actual_crc:#010x}, expected {expected_crc:#010x}")]
    HeaderChecksum {
        /// Stored checksum.
        expected_crc: u32,
        /// Computed checksum.
        actual_crc: u32,
    },
    /// A record's body checksum does not match and every sector of the
    /// frame was written (so this is rot, not a torn write), or the log was
    /// closed cleanly (so there is no torn write to forgive).
    #[error("record checksum {actual_crc:#010x}, expected {expected_crc:#010x}")]
    BodyChecksum {
        /// Stored checksum.
        expected_crc: u32,
        /// Computed checksum.
        actual_crc: u32,
    },
    /// The zero padding after a record's payload is not zero.
    #[error("non-zero padding after the payload")]
    Padding,
    /// A valid record carries an unexpected LSN.
    #[error("record has lsn {found}")]
    Lsn {
        /// The LSN found.
        found: Lsn,
    },
    /// A record's length does not fit the segment or the configured maximum.
    #[error("record length {len} does not fit")]
    Length {
        /// The length found.
        len: u64,
    },
    /// The log ends (zero header) but non-zero bytes follow.
    #[error("non-zero bytes at offset {offset} after the end of the log")]
    DataAfterEnd {
        /// Where the first non-zero byte is.
        offset: u64,
    },
    /// A segment ends before the LSN at which the next one starts.
    #[error("segment ends before lsn {next_base_lsn} where the next segment starts")]
    Truncated {
        /// The next segment's base LSN.
        next_base_lsn: Lsn,
    },
    /// A record's checksum matches but a sector stamp is not its own.
    #[error("sector stamp at frame offset {at} does not belong to the record")]
    Stamp {
        /// Offset of the stamp within the frame.
        at: u64,
    },
    /// The segment file's length differs from the size in its header.
    #[error("segment file is {file_bytes} bytes, its header says {header_bytes}")]
    SegmentLength {
        /// From the header.
        header_bytes: u64,
        /// The file's length.
        file_bytes: u64,
    },
    /// A segment the manifest lists is missing (or emptied) while the log
    /// needs its records.
    #[error("segment {index} is missing")]
    MissingSegment {
        /// Its index.
        index: u64,
    },
    /// A segment of another log.
    #[error("segment belongs to log {found:#018x}, not {expected:#018x}")]
    ForeignSegment {
        /// This log's id.
        expected: u64,
        /// The segment's.
        found: u64,
    },
    /// A segment file with data that the manifest does not list.
    #[error("segment {index} is not in the manifest")]
    UnlistedSegment {
        /// Its index.
        index: u64,
    },
    /// The log ends before the LSN up to which it was acknowledged (the
    /// clean-close mark): acknowledged records are missing.
    #[error("log ends before lsn {acked_lsn}, up to which it was acknowledged")]
    EndsBeforeCloseMark {
        /// Every LSN below this was acknowledged.
        acked_lsn: Lsn,
    },
    /// The log was closed cleanly at `acked_lsn` but holds data after it.
    #[error("data after lsn {acked_lsn}, where the log was closed cleanly")]
    AfterCloseMark {
        /// Where the log ended at its clean close.
        acked_lsn: Lsn,
    },
    /// The manifest file is missing although segments exist.
    #[error("the log manifest is missing")]
    ManifestMissing,
    /// Neither slot of the manifest is valid.
    #[error("the log manifest is damaged")]
    ManifestDamaged,
}

impl WalError {
    /// Builds an [`WalError::Io`].
    /// A failed step of opening the log's directory.
    pub(crate) fn from_dir_step(step: crate::storage::io::DirStepError) -> WalError {
        if step.is_locked() {
            return WalError::Locked { path: step.path };
        }
        WalError::io(step.op, step.path, step.source)
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> WalError {
        WalError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// True if this error (or the failure that poisoned the log) is `ENOSPC`.
    pub fn is_no_space(&self) -> bool {
        match self {
            WalError::Io { source, .. } => crate::storage::io::is_no_space(source),
            WalError::Poisoned { cause } => cause.is_no_space(),
            _ => false,
        }
    }
}
