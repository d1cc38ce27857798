//! Options of a ledger: a builder whose defaults suit most users.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::ledger::BATCH_EVENTS_MAX;
use crate::storage::clock::{Clock, SystemClock};
use crate::storage::io::{Io, RealIo};
use crate::storage::store::StoreOptions;
use crate::storage::wal::WalOptions;

/// What opening does when it finds damage the newest valid snapshot does
/// not cover.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecoveryMode {
    /// Fail the open with a typed [`Corrupt`](crate::ErrorKind::Corrupt)
    /// error naming the file, offset and LSN, and change nothing. Damage a
    /// valid snapshot covers is skipped and reported in either mode.
    #[default]
    Strict,
    /// Cut the log at the first damaged record still needed, moving the
    /// segments and damaged snapshots it removes to `quarantine/` (never
    /// deleting), and report what was removed in
    /// [`Ledger::recovery`](crate::Ledger::recovery). Refused
    /// ([`RepairImpossible`](crate::ErrorKind::RepairImpossible)) if the
    /// result could not open. [`Ledger::plan_repair`](crate::Ledger::plan_repair)
    /// is its dry run.
    Repair,
}

/// Options of a [`Ledger`](crate::Ledger).
///
/// ```
/// use syncpay::{LedgerOptions, RecoveryMode};
///
/// let options = LedgerOptions::new()
///     .segment_size_bytes(16 << 20)
///     .checkpoint_interval_bytes(256 << 20)
///     .recovery_mode(RecoveryMode::Strict);
/// assert_eq!(options.batch_events_max(), syncpay::BATCH_EVENTS_MAX);
/// ```
#[derive(Clone, Debug)]
pub struct LedgerOptions {
    segment_size_bytes: u64,
    checkpoint_interval_bytes: u64,
    wal_dir: Option<PathBuf>,
    recovery_mode: RecoveryMode,
    create_if_missing: bool,
    gather_wait_max: Duration,
    gathering: bool,
    io: Arc<dyn Io>,
    clock: Arc<dyn Clock>,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            segment_size_bytes: crate::storage::wal::SEGMENT_SIZE_BYTES_DEFAULT,
            checkpoint_interval_bytes: crate::storage::store::CHECKPOINT_INTERVAL_BYTES_DEFAULT,
            wal_dir: None,
            recovery_mode: RecoveryMode::Strict,
            create_if_missing: false,
            gather_wait_max: crate::storage::gather::GATHER_WAIT_MAX_DEFAULT,
            gathering: true,
            io: Arc::new(RealIo),
            clock: SystemClock::shared(),
        }
    }
}

/// Bytes a logged batch takes besides its events: the store's timestamp and
/// the command header.
const RECORD_OVERHEAD_BYTES: usize =
    crate::storage::store::RECORD_PREFIX_BYTES + crate::ledger::codec::COMMAND_HEADER_BYTES;
/// The largest log record a batch needs.
pub(crate) const RECORD_SIZE_MAX_BYTES: usize = RECORD_OVERHEAD_BYTES + BATCH_EVENTS_MAX * 128;

const _: () = assert!(
    crate::storage::wal::segment_overhead_bytes(RECORD_SIZE_MAX_BYTES)
        <= crate::storage::wal::SEGMENT_SIZE_BYTES_DEFAULT,
    "a full batch must fit in a default segment"
);

impl LedgerOptions {
    /// The defaults: 64 MiB segments, a checkpoint every 1 GiB of log, the
    /// log in `<path>/wal`, [`RecoveryMode::Strict`].
    pub fn new() -> LedgerOptions {
        LedgerOptions::default()
    }

    /// Size of each preallocated log segment (a multiple of 512, at least
    /// 4096). Default 64 MiB. A segment must hold a whole batch: below
    /// about 1 MiB the batch maximum shrinks accordingly (see
    /// [`batch_events_max`](Self::batch_events_max)). Checked at open.
    pub fn segment_size_bytes(mut self, bytes: u64) -> Self {
        self.segment_size_bytes = bytes;
        self
    }

    /// Log bytes between automatic checkpoints (snapshots); 0 disables
    /// them. Default 1 GiB: recovery then replays at most about two
    /// intervals of log.
    pub fn checkpoint_interval_bytes(mut self, bytes: u64) -> Self {
        self.checkpoint_interval_bytes = bytes;
        self
    }

    /// Put the log in this directory instead of `<path>/wal` (for example
    /// on a separate disk).
    pub fn wal_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.wal_dir = Some(dir.into());
        self
    }

    /// What opening does with damage that blocks it. Default
    /// [`RecoveryMode::Strict`].
    pub fn recovery_mode(mut self, mode: RecoveryMode) -> Self {
        self.recovery_mode = mode;
        self
    }

    /// Let [`Ledger::open`](crate::Ledger::open) create a new ledger if
    /// `path` holds none. Default false: opening a missing ledger fails
    /// with [`NotFound`](crate::ErrorKind::NotFound), so that a typo or an
    /// unmounted volume never becomes an empty ledger.
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    pub(crate) fn creates_if_missing(&self) -> bool {
        self.create_if_missing
    }

    /// The longest a create call waits for concurrent calls to share its
    /// log record (default 500 µs). Concurrent calls are always gathered
    /// into one logged command when they meet; this bounds the extra wait
    /// for more of them, which is taken only when the previous command
    /// held several callers' batches, and never longer than half the
    /// recent command latency. Zero: never wait. A lone caller never waits.
    pub fn gather_wait_max(mut self, wait: Duration) -> Self {
        self.gather_wait_max = wait;
        self
    }

    pub(crate) fn gather_wait_max_value(&self) -> Duration {
        self.gather_wait_max
    }

    /// Whether concurrent create calls are gathered into one logged
    /// command (default true). Off, each call is its own command (for
    /// benchmarks that measure what gathering gains). Unstable.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn gathering(mut self, on: bool) -> Self {
        self.gathering = on;
        self
    }

    /// The weight (timestamps, one per event and at least one per batch)
    /// one gathered command may carry: as many as fit a log record with a
    /// batch header each. A single batch up to
    /// [`batch_events_max`](Self::batch_events_max) is always accepted
    /// alone.
    pub(crate) fn gather_weight_max(&self) -> u64 {
        if !self.gathering {
            return 0;
        }
        let per_event = 128 + crate::ledger::codec::BATCH_HEADER_BYTES;
        let fits = self
            .record_size_max_bytes()
            .saturating_sub(RECORD_OVERHEAD_BYTES)
            / per_event;
        fits.min(BATCH_EVENTS_MAX) as u64
    }

    /// The file system (tests substitute a simulated one). Unstable.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn io(mut self, io: Arc<dyn Io>) -> Self {
        self.io = io;
        self
    }

    /// The clock timestamps come from (tests substitute a simulated one).
    /// Unstable.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub(crate) fn io_ref(&self) -> &Arc<dyn Io> {
        &self.io
    }

    pub(crate) fn log_dir(&self, path: &std::path::Path) -> PathBuf {
        self.wal_dir
            .clone()
            .unwrap_or_else(|| path.join(crate::storage::store::WAL_DIR_NAME))
    }

    /// The largest record the log accepts with these options: a full batch,
    /// or whatever fits in one segment if segments are smaller than that.
    fn record_size_max_bytes(&self) -> usize {
        crate::storage::wal::record_size_max_for_segment(self.segment_size_bytes)
            .min(RECORD_SIZE_MAX_BYTES)
    }

    /// Events per batch these options allow: [`BATCH_EVENTS_MAX`] unless
    /// segments are too small to hold a full batch.
    pub fn batch_events_max(&self) -> usize {
        (self
            .record_size_max_bytes()
            .saturating_sub(RECORD_OVERHEAD_BYTES)
            / 128)
            .min(BATCH_EVENTS_MAX)
    }

    pub(crate) fn store_options(&self, read_only: bool) -> StoreOptions {
        StoreOptions {
            wal: WalOptions {
                segment_size_bytes: self.segment_size_bytes,
                record_size_max_bytes: self.record_size_max_bytes(),
                repair: self.recovery_mode == RecoveryMode::Repair && !read_only,
                read_only,
                io: Arc::clone(&self.io),
                ..WalOptions::default()
            },
            wal_dir: self.wal_dir.clone(),
            checkpoint_interval_bytes: self.checkpoint_interval_bytes,
            clock: Arc::clone(&self.clock),
        }
    }
}
