//! The top-level error: what the embedded API returns. Each layer has its
//! own error enum with context; this one wraps them.

use crate::snapshot::SnapshotError;
use crate::store::StoreError;
use crate::wal::WalError;

/// An error of the syncpay API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store (log, snapshots, recovery) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A batch has more events than one request may carry.
    #[error("batch of {len} events exceeds the maximum of {max}")]
    BatchTooLarge {
        /// Events in the batch.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A consistency check of the ledger failed: a bug, never bad input.
    #[error("ledger invariant violated: {0}")]
    Invariant(String),
    /// The store returned an output of the wrong kind: a bug.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl From<WalError> for Error {
    fn from(error: WalError) -> Self {
        Error::Store(StoreError::Wal(error))
    }
}

impl From<SnapshotError> for Error {
    fn from(error: SnapshotError) -> Self {
        Error::Store(StoreError::Snapshot(error))
    }
}

impl Error {
    /// True if the disk is full (`ENOSPC`).
    pub fn is_no_space(&self) -> bool {
        matches!(self, Error::Store(error) if error.is_no_space())
    }

    /// True if an earlier write or sync failure poisoned the instance; it
    /// must be reopened (acknowledged data is safe).
    pub fn is_poisoned(&self) -> bool {
        matches!(
            self,
            Error::Store(StoreError::Poisoned { .. })
                | Error::Store(StoreError::Wal(WalError::Poisoned { .. }))
        )
    }
}

/// `Result` with the syncpay [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
