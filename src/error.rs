//! The error of the public API: one opaque type with a [`kind`](Error::kind)
//! to branch on and a message that names the file, offset and LSN where
//! there is one. The layers' own error enums stay inside the crate.

use std::fmt;
use std::path::PathBuf;

use crate::storage::snapshot::SnapshotError;
use crate::storage::store::StoreError;
use crate::storage::wal::WalError;

/// What kind of failure an [`Error`] is: what a caller can do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Another instance (this process or another) has the ledger open.
    Locked,
    /// [`Ledger::open`](crate::Ledger::open) found no ledger at the path.
    NotFound,
    /// [`Ledger::create`](crate::Ledger::create) found a ledger (or other
    /// files) at the path.
    AlreadyExists,
    /// Stored data is damaged or inconsistent: a checksum, a missing
    /// segment, a gap between snapshot and log, files of another ledger.
    /// Nothing was changed; see [`RecoveryMode::Repair`](crate::RecoveryMode).
    Corrupt,
    /// Repair cannot produce a ledger that opens without losing records no
    /// snapshot holds; nothing was changed.
    RepairImpossible,
    /// The files are of a format this version does not read.
    UnsupportedFormat,
    /// An earlier failed log write or `fdatasync` poisoned this instance:
    /// reopen it (everything acknowledged is safe).
    Poisoned,
    /// The disk is full (`ENOSPC`). Log writes poison the instance;
    /// checkpoints do not.
    NoSpace,
    /// Another operating-system error.
    Io,
    /// A batch holds more events than one call may carry.
    BatchTooLarge,
    /// An argument or option is unusable (a clock beyond the timestamp
    /// range, an empty path, overlapping directories).
    InvalidArgument,
    /// The ledger was opened read-only.
    ReadOnly,
    /// The ledger is closed.
    Closed,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Locked => "locked",
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::RepairImpossible => "repair impossible",
            ErrorKind::UnsupportedFormat => "unsupported format",
            ErrorKind::Poisoned => "poisoned",
            ErrorKind::NoSpace => "no space",
            ErrorKind::Io => "i/o error",
            ErrorKind::BatchTooLarge => "batch too large",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::ReadOnly => "read-only",
            ErrorKind::Closed => "closed",
        })
    }
}

/// An error of the syncpay API.
///
/// ```
/// use syncpay::{ErrorKind, Ledger, LedgerOptions};
///
/// let dir = tempfile::tempdir()?;
/// let _ledger = Ledger::create(dir.path(), LedgerOptions::default())?;
/// let second = Ledger::open(dir.path(), LedgerOptions::default()).unwrap_err();
/// assert_eq!(second.kind(), ErrorKind::Locked);
/// assert!(second.is_locked());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Cloning is cheap: the calls gathered into one logged command that fails
/// each get the same error.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    repr: Box<Repr>,
}

#[derive(Clone, Debug)]
enum Repr {
    Store(std::sync::Arc<StoreError>),
    Message(String),
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// True for [`ErrorKind::Locked`].
    pub fn is_locked(&self) -> bool {
        self.kind == ErrorKind::Locked
    }

    /// True for [`ErrorKind::Corrupt`].
    pub fn is_corrupt(&self) -> bool {
        self.kind == ErrorKind::Corrupt
    }

    /// True for [`ErrorKind::Poisoned`] (whatever poisoned the instance,
    /// a full disk included).
    pub fn is_poisoned(&self) -> bool {
        self.kind == ErrorKind::Poisoned
    }

    /// True if the disk is full (`ENOSPC`), also when that poisoned the
    /// instance.
    pub fn is_no_space(&self) -> bool {
        self.kind == ErrorKind::NoSpace || matches!(&*self.repr, Repr::Store(e) if e.is_no_space())
    }

    /// True for [`ErrorKind::BatchTooLarge`].
    pub fn is_batch_too_large(&self) -> bool {
        self.kind == ErrorKind::BatchTooLarge
    }

    /// True for [`ErrorKind::InvalidArgument`].
    pub fn is_invalid_argument(&self) -> bool {
        self.kind == ErrorKind::InvalidArgument
    }

    /// True for [`ErrorKind::NotFound`].
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            repr: Box::new(Repr::Message(message.into())),
        }
    }

    pub(crate) fn batch_too_large(len: usize, max: usize) -> Error {
        Error::new(
            ErrorKind::BatchTooLarge,
            format!("batch of {len} events exceeds the maximum of {max}"),
        )
    }

    pub(crate) fn not_found(path: PathBuf) -> Error {
        Error::new(
            ErrorKind::NotFound,
            format!("no ledger at {} (Ledger::create makes one)", path.display()),
        )
    }

    /// The store error inside, for the crate's own tests and tools.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn store_error(&self) -> Option<&StoreError> {
        match &*self.repr {
            Repr::Store(error) => Some(error),
            Repr::Message(_) => None,
        }
    }
}

fn kind_of(error: &StoreError) -> ErrorKind {
    match error {
        StoreError::Wal(error) => match error {
            WalError::Io { source, .. } if crate::storage::io::is_no_space(source) => {
                ErrorKind::NoSpace
            }
            WalError::Io { .. } => ErrorKind::Io,
            WalError::Corrupt { .. } => ErrorKind::Corrupt,
            WalError::Poisoned { .. } => ErrorKind::Poisoned,
            WalError::RecordTooLarge { .. } => ErrorKind::BatchTooLarge,
            WalError::InvalidOptions { .. } | WalError::LsnOutOfRange { .. } => {
                ErrorKind::InvalidArgument
            }
            WalError::Locked { .. } => ErrorKind::Locked,
            WalError::Closed | WalError::Withdrawn => ErrorKind::Closed,
            WalError::UnsupportedFormat { .. } => ErrorKind::UnsupportedFormat,
            WalError::RepairImpossible { .. } => ErrorKind::RepairImpossible,
        },
        StoreError::Snapshot(SnapshotError::Io { source, .. }) | StoreError::Io { source, .. } => {
            if crate::storage::io::is_no_space(source) {
                ErrorKind::NoSpace
            } else {
                ErrorKind::Io
            }
        }
        StoreError::Snapshot(SnapshotError::Corrupt { .. })
        | StoreError::LogGap { .. }
        | StoreError::LogBehindSnapshot { .. }
        | StoreError::Decode { .. }
        | StoreError::Timestamp { .. } => ErrorKind::Corrupt,
        StoreError::Locked { .. } => ErrorKind::Locked,
        StoreError::Poisoned { .. } => ErrorKind::Poisoned,
        StoreError::Closed => ErrorKind::Closed,
        StoreError::ClockOutOfRange { .. } | StoreError::InvalidOptions { .. } => {
            ErrorKind::InvalidArgument
        }
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        Error {
            kind: kind_of(&error),
            repr: Box::new(Repr::Store(std::sync::Arc::new(error))),
        }
    }
}

impl From<WalError> for Error {
    fn from(error: WalError) -> Self {
        Error::from(StoreError::Wal(error))
    }
}

impl From<SnapshotError> for Error {
    fn from(error: SnapshotError) -> Self {
        Error::from(StoreError::Snapshot(error))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.repr {
            Repr::Store(error) => write!(f, "{error}"),
            Repr::Message(message) => f.write_str(message),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("error", &*self.repr)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.repr {
            Repr::Store(error) => std::error::Error::source(&**error),
            Repr::Message(_) => None,
        }
    }
}

/// `Result` with the syncpay [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
