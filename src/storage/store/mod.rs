//! The durable state-machine host: log a command, apply it, reply once it is durable;
//! checkpoint to a snapshot; recover by snapshot plus log replay.
//!
//! A [`StateMachine`] is deterministic: the same state, command and
//! [`ApplyContext`] always give the same new state and output. The log holds
//! commands (with the timestamp the store assigned), never results, so
//! recovery is "newest valid snapshot, then replay the log after it", and a
//! replay gives byte-identical state.
//!
//! Invariants:
//! - a command is applied while its log record is made durable, under the
//!   state's write lock, which is released (and the output returned) only
//!   once the record is durable, so no reply and no read ever exposes state
//!   that a crash could lose; a failed sync poisons the store first;
//! - commands are applied in LSN order, on their callers' threads, exactly
//!   once per process lifetime;
//! - timestamps are assigned in LSN order as `max(now, last + n)` (for a
//!   command needing `n` of them) and logged, so they are unique, strictly
//!   increasing, and identical on replay and across restarts;
//! - the log is truncated only behind the older of the two retained
//!   snapshots, so if the newest snapshot is damaged, the older one plus a
//!   longer replay still recovers everything.

// The API is wider than the embedded ledger uses: the replicated mode,
// benchmarks and tests (with `internals`) use the rest.
#![cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]

mod recovery;

#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use parking_lot::{Mutex, RwLock};

use crate::storage::clock::{Clock, SystemClock};
use crate::storage::io::File;
use crate::storage::snapshot::{SnapshotDir, SnapshotError};
use crate::storage::wal::{Lsn, Wal, WalError, WalOptions};

pub use recovery::{RejectedSnapshot, StoreRecovery, StoreRepairPlan};

/// Default amount of log written between automatic checkpoints.
pub const CHECKPOINT_INTERVAL_BYTES_DEFAULT: u64 = 1 << 30;
/// Bytes of the store's prefix on every log record: the timestamp.
pub const RECORD_PREFIX_BYTES: usize = 8;
/// Version of the store's envelope around a state machine's snapshot.
pub const STORE_SNAPSHOT_VERSION: u32 = 1;
/// Size of that envelope: version u32, reserved u32, last timestamp u64.
pub const STORE_SNAPSHOT_ENVELOPE_BYTES: usize = 16;

/// A command or snapshot that cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {what}: {reason}")]
pub struct DecodeError {
    /// What was being decoded.
    pub what: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// What the store tells a state machine about a command it applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyContext {
    /// The command's LSN.
    pub lsn: Lsn,
    /// The last of the `n` consecutive timestamps assigned to the command
    /// (the command owns `timestamp - n + 1 ..= timestamp`).
    pub timestamp: u64,
}

/// A deterministic state machine the store makes durable.
pub trait StateMachine: Send + Sync + Sized + 'static {
    /// What `apply` takes.
    type Command: Send + 'static;
    /// What `apply` returns.
    type Output: Send + 'static;
    /// A consistent image of the state, taken quickly under a read lock and
    /// written out without one.
    type Image: Send + 'static;

    /// The empty state.
    fn initial() -> Self;
    /// Appends the log encoding of `command` to `out`.
    fn encode_command(command: &Self::Command, out: &mut Vec<u8>);
    /// Decodes what `encode_command` wrote. Never panics.
    fn decode_command(bytes: &[u8]) -> Result<Self::Command, DecodeError>;
    /// How many consecutive timestamps `command` consumes (at least 1).
    fn timestamps_needed(command: &Self::Command) -> u64 {
        let _ = command;
        1
    }
    /// Applies a durable command. Must be deterministic.
    fn apply(&mut self, command: Self::Command, context: ApplyContext) -> Self::Output;

    /// A hint before recovery replays the log: at most `log_bytes` of
    /// records follow. A machine may size its indexes for them up front
    /// instead of growing them step by step. The default does nothing.
    fn reserve_for_replay(&mut self, log_bytes: u64) {
        let _ = log_bytes;
    }
    /// Takes a consistent image of the state.
    fn image(&self) -> Self::Image;
    /// Writes an image as snapshot bytes.
    fn write_image(image: &Self::Image, out: &mut dyn Write) -> std::io::Result<()>;
    /// Rebuilds the state from snapshot bytes. Never panics.
    fn restore(bytes: &[u8]) -> Result<Self, DecodeError>;

    /// [`restore`](Self::restore) followed by
    /// [`reserve_for_replay`](Self::reserve_for_replay); a machine may
    /// override it to size its indexes once for both.
    fn restore_for_replay(bytes: &[u8], log_bytes: u64) -> Result<Self, DecodeError> {
        let mut machine = Self::restore(bytes)?;
        machine.reserve_for_replay(log_bytes);
        Ok(machine)
    }
}

/// An error of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The log failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// A snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A file operation outside the log and snapshots failed.
    #[error("store {op} failed on {path}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Another instance has the directory open.
    #[error("store directory is locked by another instance: {path}")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The log starts after the newest usable snapshot ends: records between
    /// them are missing (both snapshots damaged, or files deleted).
    #[error(
        "log starts at lsn {log_first_lsn} but the usable snapshot ends at lsn {snapshot_lsn}{}{}",
        list_rejected(snapshots_rejected),
        list_damage(log_damage)
    )]
    LogGap {
        /// LSN of the snapshot recovery would start from (0: none).
        snapshot_lsn: Lsn,
        /// First LSN in the log.
        log_first_lsn: Lsn,
        /// Every snapshot recovery rejected, with why.
        snapshots_rejected: Vec<RejectedSnapshot>,
        /// Log damage that recovery skipped because a rejected snapshot was
        /// expected to cover it (why the log starts where it does).
        log_damage: Vec<crate::storage::wal::Damage>,
    },
    /// A snapshot covers records the log does not have.
    #[error("snapshot covers lsn {snapshot_lsn} but the log ends before lsn {log_next_lsn}")]
    LogBehindSnapshot {
        /// LSN of the snapshot.
        snapshot_lsn: Lsn,
        /// One past the last LSN in the log.
        log_next_lsn: Lsn,
    },
    /// A durable log record or snapshot cannot be decoded.
    #[error("cannot decode lsn {lsn}: {source}")]
    Decode {
        /// The record's LSN (or the snapshot's).
        lsn: Lsn,
        /// What is wrong.
        #[source]
        source: DecodeError,
    },
    /// Logged timestamps do not increase: the log is not one this store wrote.
    #[error("timestamp {timestamp} at lsn {lsn} does not exceed the previous {previous}")]
    Timestamp {
        /// The record.
        lsn: Lsn,
        /// Its timestamp.
        timestamp: u64,
        /// The previous one.
        previous: u64,
    },
    /// An earlier failure (of a checkpoint) poisoned the store.
    #[error("store is poisoned by an earlier failure: {cause}")]
    Poisoned {
        /// The failure.
        cause: Arc<StoreError>,
    },
    /// The store is closed.
    #[error("store is closed")]
    Closed,
    /// The clock reads a time a timestamp cannot hold (timestamps are
    /// below 2^63 ns, as TigerBeetle's). Nothing was logged.
    #[error("clock reads {now_ns} ns, at or beyond the timestamp limit of 2^63 ns")]
    ClockOutOfRange {
        /// What the clock read.
        now_ns: u64,
    },
    /// The options or paths are unusable.
    #[error("invalid store options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },
}

fn list_rejected(rejected: &[RejectedSnapshot]) -> String {
    rejected
        .iter()
        .map(|r| format!("; rejected snapshot {r}"))
        .collect()
}

fn list_damage(damage: &[crate::storage::wal::Damage]) -> String {
    damage.iter().map(|d| format!("; log damage {d}")).collect()
}

/// Timestamps are below this (TigerBeetle reserves the top bit).
pub const TIMESTAMP_LIMIT_NS: u64 = 1 << 63;

impl StoreError {
    /// A failed step of opening the store's directory.
    pub(crate) fn from_dir_step(step: crate::storage::io::DirStepError) -> StoreError {
        if step.is_locked() {
            return StoreError::Locked { path: step.path };
        }
        StoreError::Io {
            op: step.op,
            path: step.path,
            source: step.source,
        }
    }

    /// True if this error comes from a full disk (`ENOSPC`).
    pub fn is_no_space(&self) -> bool {
        match self {
            StoreError::Wal(error) => error.is_no_space(),
            StoreError::Snapshot(SnapshotError::Io { source, .. }) => {
                crate::storage::io::is_no_space(source)
            }
            StoreError::Io { source, .. } => crate::storage::io::is_no_space(source),
            StoreError::Poisoned { cause } => cause.is_no_space(),
            _ => false,
        }
    }
}

/// Options of a [`Store`].
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Options of the log (segment size, io, repair).
    pub wal: WalOptions,
    /// Directory of the log; default `<dir>/wal`.
    pub wal_dir: Option<PathBuf>,
    /// Log bytes between automatic checkpoints; 0 disables them.
    pub checkpoint_interval_bytes: u64,
    /// Where timestamps come from.
    pub clock: Arc<dyn Clock>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            wal: WalOptions::default(),
            wal_dir: None,
            checkpoint_interval_bytes: CHECKPOINT_INTERVAL_BYTES_DEFAULT,
            clock: SystemClock::shared(),
        }
    }
}

/// What `checkpoint` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// LSN the snapshot covers (0: nothing applied yet, nothing written).
    pub lsn: Lsn,
    /// Payload bytes written (0 if the snapshot already existed).
    pub bytes: u64,
    /// Log segments deleted behind the older retained snapshot.
    pub segments_removed: usize,
}

/// The applied state and where it stands.
pub(crate) struct Applied<M> {
    pub machine: M,
    pub applied_lsn: Lsn,
    pub last_timestamp: u64,
}

/// Everything the store's threads share.
struct Core<M: StateMachine> {
    wal: Wal,
    state: RwLock<Applied<M>>,
    /// Last timestamp handed out, in log order.
    sequencer: Mutex<u64>,
    snapshots: SnapshotDir,
    clock: Arc<dyn Clock>,
    checkpoint: Mutex<CheckpointState>,
    log_bytes_since_checkpoint: AtomicU64,
    checkpoint_interval_bytes: u64,
    /// After a failed automatic checkpoint, the next is tried once the log
    /// has grown past this (bytes since the last good checkpoint).
    checkpoint_retry_at_bytes: AtomicU64,
    /// Checkpoints written, and failures, since open (with the last error);
    /// `checkpoint_done` is notified after each attempt.
    checkpoint_stats: Mutex<CheckpointStats>,
    checkpoint_done: parking_lot::Condvar,
    poison: crate::storage::poison::Poison<StoreError>,
    /// The LSN whose command applies next: commands apply in log order.
    turnstile: Mutex<Lsn>,
    turnstile_changed: parking_lot::Condvar,
    /// Latency of applying commands (write-only metrics).
    apply_latency: crate::storage::metrics::Histogram,
}

/// A caller's turn to apply its command: waited for in LSN order, and
/// passed on exactly once, also if the caller fails or panics (then the
/// store is poisoned, since its command may be half applied).
struct Turn<'a, M: StateMachine> {
    core: &'a Core<M>,
    lsn: Lsn,
    completed: bool,
}

impl<'a, M: StateMachine> Turn<'a, M> {
    /// Waits until every command before `lsn` was applied (or the store was
    /// poisoned, which also passes the turn on).
    fn wait(core: &'a Core<M>, lsn: Lsn) -> Result<Turn<'a, M>, StoreError> {
        let mut turn = Turn {
            core,
            lsn,
            completed: false,
        };
        let mut next = core.turnstile.lock();
        while *next < lsn {
            core.turnstile_changed.wait(&mut next);
        }
        drop(next);
        if let Err(error) = core.check_poison() {
            // Not a failure of this turn: dropping it just passes it on.
            turn.completed = true;
            return Err(error);
        }
        Ok(turn)
    }

    fn complete(mut self) {
        self.completed = true;
    }

    fn pass(&self) {
        let mut next = self.core.turnstile.lock();
        *next = (*next).max(self.lsn + 1);
        drop(next);
        self.core.turnstile_changed.notify_all();
    }
}

impl<M: StateMachine> Drop for Turn<'_, M> {
    fn drop(&mut self) {
        if !self.completed {
            // Failed or panicked between taking the turn and finishing the
            // apply: the state may be inconsistent.
            self.core.poison(StoreError::Closed);
        }
        self.pass();
    }
}

/// The newest known-good snapshot (verified at open or written by us).
struct CheckpointState {
    newest_good_lsn: Option<Lsn>,
}

/// Checkpoints since the store was opened. A failed checkpoint (disk full,
/// permissions) leaves the store usable: the log keeps every command, and
/// automatic checkpoints are retried after more log is written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// Checkpoints that wrote a snapshot.
    pub completed: u64,
    /// Checkpoints that failed.
    pub failed: u64,
    /// The last failure, if the last attempt failed.
    pub last_error: Option<String>,
}

/// A state machine made durable by a log and snapshots.
///
/// ```
/// use syncpay::storage::store::{ApplyContext, DecodeError, StateMachine, Store, StoreOptions};
///
/// /// A counter: the simplest deterministic state machine.
/// struct Counter(u64);
///
/// impl StateMachine for Counter {
///     type Command = u64;
///     type Output = u64;
///     type Image = u64;
///     fn initial() -> Self { Counter(0) }
///     fn encode_command(c: &u64, out: &mut Vec<u8>) { out.extend_from_slice(&c.to_le_bytes()) }
///     fn decode_command(b: &[u8]) -> Result<u64, DecodeError> {
///         let bytes = b.try_into().map_err(|_| DecodeError { what: "add", reason: "length" })?;
///         Ok(u64::from_le_bytes(bytes))
///     }
///     fn apply(&mut self, c: u64, _: ApplyContext) -> u64 { self.0 += c; self.0 }
///     fn image(&self) -> u64 { self.0 }
///     fn write_image(i: &u64, out: &mut dyn std::io::Write) -> std::io::Result<()> {
///         out.write_all(&i.to_le_bytes())
///     }
///     fn restore(b: &[u8]) -> Result<Self, DecodeError> {
///         Ok(Counter(Self::decode_command(b)?))
///     }
/// }
///
/// let dir = tempfile::tempdir()?;
/// let (store, _) = Store::<Counter>::open(dir.path(), StoreOptions::default())?;
/// assert_eq!(store.execute(5)?, 5); // durable when this returns
/// store.checkpoint()?;
/// assert_eq!(store.execute(2)?, 7);
/// drop(store);
/// let (store, _) = Store::<Counter>::open(dir.path(), StoreOptions::default())?;
/// assert_eq!(store.read(|c| c.0)?, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Store<M: StateMachine> {
    core: Arc<Core<M>>,
    checkpointer: Option<Checkpointer>,
    _lock: Option<Box<dyn File>>,
    read_only: bool,
}

struct Checkpointer {
    wake: Sender<()>,
    thread: JoinHandle<()>,
}

impl<M: StateMachine> std::fmt::Debug for Store<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("wal", &self.core.wal)
            .field("applied_lsn", &self.applied_lsn())
            .finish()
    }
}

/// Name of the store's lock file.
pub const LOCK_FILE_NAME: &str = crate::storage::io::LOCK_FILE_NAME;
/// Subdirectory holding the log.
pub const WAL_DIR_NAME: &str = "wal";
/// Subdirectory holding the snapshots.
pub const SNAPSHOT_DIR_NAME: &str = "snapshots";

impl<M: StateMachine> Store<M> {
    /// Opens (creating if needed) the store in `dir`: newest valid snapshot,
    /// then replay of the log after it.
    pub fn open(
        dir: &Path,
        options: StoreOptions,
    ) -> Result<(Store<M>, StoreRecovery), StoreError> {
        validate_paths(dir, &options)?;
        let read_only = options.wal.read_only;
        let lock = if read_only {
            crate::storage::io::lock_existing(options.wal.io.as_ref(), dir)
                .map_err(StoreError::from_dir_step)?
        } else {
            Some(recovery::lock_dir(options.wal.io.as_ref(), dir)?)
        };
        let recovered = recovery::recover::<M>(dir, &options)?;
        let applied_lsn = recovered.applied.applied_lsn;
        let core = Arc::new(Core {
            wal: recovered.wal,
            sequencer: Mutex::new(recovered.applied.last_timestamp),
            state: RwLock::new(recovered.applied),
            snapshots: recovered.snapshots,
            clock: options.clock,
            checkpoint: Mutex::new(CheckpointState {
                newest_good_lsn: recovered.report.snapshot_lsn,
            }),
            log_bytes_since_checkpoint: AtomicU64::new(recovered.report.replayed_bytes),
            checkpoint_interval_bytes: options.checkpoint_interval_bytes,
            checkpoint_retry_at_bytes: AtomicU64::new(options.checkpoint_interval_bytes),
            checkpoint_stats: Mutex::new(CheckpointStats::default()),
            checkpoint_done: parking_lot::Condvar::new(),
            poison: crate::storage::poison::Poison::default(),
            turnstile: Mutex::new(applied_lsn + 1),
            turnstile_changed: parking_lot::Condvar::new(),
            apply_latency: crate::storage::metrics::Histogram::default(),
        });
        let checkpointer = if options.checkpoint_interval_bytes > 0 && !read_only {
            Some(Checkpointer::spawn(Arc::clone(&core))?)
        } else {
            None
        };
        let store = Store {
            core,
            checkpointer,
            _lock: lock,
            read_only,
        };
        Ok((store, recovered.report))
    }

    /// Computes what opening with `options.wal.repair` would do to the
    /// store in `dir`, changing nothing (a dry run): the log's repair plan
    /// and the snapshots it would move to quarantine. An empty plan means
    /// the store opens as it is.
    pub fn plan_repair(dir: &Path, options: &StoreOptions) -> Result<StoreRepairPlan, StoreError> {
        validate_paths(dir, options)?;
        let io = options.wal.io.as_ref();
        let _lock =
            crate::storage::io::lock_existing(io, dir).map_err(StoreError::from_dir_step)?;
        recovery::plan_repair(dir, options)
    }

    /// Logs `command` durably, applies it, and returns its output. Concurrent
    /// callers share group commits.
    ///
    /// The command is applied while its log record is being written and
    /// synced, under the state's write lock, which is released only once
    /// the record is durable: readers never see the applied command before
    /// it is durable, yet the apply and the `fdatasync` overlap instead of
    /// following each other. Commands are applied in LSN order (a
    /// turnstile). If the record then fails to become durable, the state is
    /// ahead of the disk: the store poisons itself before releasing the
    /// lock, so that no read and no later command ever sees it.
    pub fn execute(&self, command: M::Command) -> Result<M::Output, StoreError> {
        self.execute_with(command, &mut || ())
    }

    /// [`execute`](Self::execute), calling `sequenced` as soon as the
    /// command holds its place in the log (its LSN and timestamps are
    /// assigned; later commands apply after it), before it is applied and
    /// durable. Not called if the command is refused before that. A
    /// gatherer passes its leader's role on there, so the next group forms
    /// while this one is made durable.
    pub fn execute_with(
        &self,
        command: M::Command,
        sequenced: &mut dyn FnMut(),
    ) -> Result<M::Output, StoreError> {
        let core = &self.core;
        core.check_poison()?;
        let mut bytes = Vec::new();
        M::encode_command(&command, &mut bytes);
        let needed = M::timestamps_needed(&command).max(1);
        let record_bytes = (bytes.len() + RECORD_PREFIX_BYTES) as u64;
        let mut timestamp = 0;
        let mut clock_out_of_range = None;
        let submitted = core.wal.submit_with(|batch| {
            let mut last = core.sequencer.lock();
            let now = core.clock.realtime_ns();
            let stamp = now.max(last.saturating_add(needed));
            if now >= TIMESTAMP_LIMIT_NS || stamp >= TIMESTAMP_LIMIT_NS {
                clock_out_of_range = Some(now);
                batch.withdraw();
                return None;
            }
            if batch.push_parts(&[&stamp.to_le_bytes(), &bytes]).is_ok() {
                *last = stamp;
                timestamp = stamp;
            }
            None
        });
        let submitted = match (submitted, clock_out_of_range) {
            (Err(_), Some(now_ns)) => return Err(StoreError::ClockOutOfRange { now_ns }),
            (result, _) => result?,
        };
        drop(bytes);
        sequenced();
        core.note_log_bytes(record_bytes, self.checkpointer.as_ref());
        let lsn = submitted.lsns.start;
        let turn = Turn::wait(core, lsn)?;
        let mut applied = core.state.write();
        // An earlier command may have failed while this one waited.
        core.check_poison()?;
        // Pair assertion with the turnstile: commands apply in log order,
        // each exactly once.
        assert_eq!(
            lsn,
            applied.applied_lsn + 1,
            "command applied out of log order"
        );
        let context = ApplyContext { lsn, timestamp };
        let apply_started = std::time::Instant::now();
        let output = applied.machine.apply(command, context);
        core.apply_latency.record(apply_started.elapsed());
        applied.applied_lsn = lsn;
        applied.last_timestamp = timestamp;
        let durable = core.wal.wait(submitted.ticket);
        let result = match durable {
            Ok(()) => Ok(output),
            Err(error) => Err(core.poison(error.into())),
        };
        // Hand the lock straight to a parked reader (the checkpointer, a
        // `read`) if there is one. parking_lot 0.13 unlocks unfairly, and this
        // caller's next command takes the write lock again within
        // microseconds, so without the hand-off a busy writer starved the
        // checkpointer for seconds on a loaded machine. The turnstile is
        // passed only after, so the hand-off can only go to a reader.
        parking_lot::RwLockWriteGuard::unlock_fair(applied);
        turn.complete();
        result
    }

    /// Runs `f` on the current state: everything in it is durable. Fails
    /// if the store is poisoned (its state may then be ahead of the disk).
    pub fn read<R>(&self, f: impl FnOnce(&M) -> R) -> Result<R, StoreError> {
        let applied = self.core.state.read();
        self.core.check_poison()?;
        Ok(f(&applied.machine))
    }

    /// The LSN of the last applied command.
    pub fn applied_lsn(&self) -> Lsn {
        self.core.state.read().applied_lsn
    }

    /// Writes a snapshot of the current state and truncates the log behind
    /// the older retained snapshot. A failure is returned and counted but
    /// poisons nothing: every command stays in the log.
    pub fn checkpoint(&self) -> Result<CheckpointInfo, StoreError> {
        self.core.check_poison()?;
        if self.read_only {
            return Err(StoreError::Closed);
        }
        self.core.checkpoint_counted()
    }

    /// Checkpoints written and failed since open.
    pub fn checkpoint_stats(&self) -> CheckpointStats {
        self.core.checkpoint_stats.lock().clone()
    }

    /// Blocks until at least `completed` checkpoints have been written
    /// since open, or the store is poisoned or closing. Returns the stats.
    /// (Tests use it to wait for the background checkpointer on a signal.)
    #[doc(hidden)]
    pub fn wait_for_checkpoints(&self, completed: u64) -> CheckpointStats {
        let mut stats = self.core.checkpoint_stats.lock();
        while stats.completed < completed
            && !self.core.poison.is_set()
            && !self.core.wal.is_poisoned()
            && self.checkpointer.is_some()
        {
            self.core.checkpoint_done.wait(&mut stats);
        }
        stats.clone()
    }

    /// Latency of applying commands to the state since open.
    pub fn apply_latency(&self) -> crate::storage::metrics::LatencySummary {
        self.core.apply_latency.summary()
    }

    /// The log (for inspection: sizes, LSNs).
    pub fn wal(&self) -> &Wal {
        &self.core.wal
    }

    /// Stops background work and the log after everything submitted is
    /// durable and applied. Returns the poison cause, if any. Dropping the
    /// store does the same without reporting.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.stop_checkpointer();
        let wal = self.core.wal.close();
        self.core.check_poison()?;
        Ok(wal?)
    }

    fn stop_checkpointer(&mut self) {
        if let Some(checkpointer) = self.checkpointer.take() {
            drop(checkpointer.wake);
            let _ = checkpointer.thread.join();
        }
    }
}

impl<M: StateMachine> Drop for Store<M> {
    fn drop(&mut self) {
        // The checkpointer holds the core; stop it first so that dropping
        // the core stops the log writer after it drains.
        self.stop_checkpointer();
    }
}

impl<M: StateMachine> Core<M> {
    fn check_poison(&self) -> Result<(), StoreError> {
        match self.poison.cause() {
            Some(cause) => Err(StoreError::Poisoned { cause }),
            None => Ok(()),
        }
    }

    fn poison(&self, error: StoreError) -> StoreError {
        StoreError::Poisoned {
            cause: self.poison.set(error, "store"),
        }
    }

    fn note_log_bytes(&self, bytes: u64, checkpointer: Option<&Checkpointer>) {
        let total = self
            .log_bytes_since_checkpoint
            .fetch_add(bytes, Ordering::Relaxed)
            + bytes;
        if let Some(checkpointer) = checkpointer
            && total >= self.checkpoint_retry_at_bytes.load(Ordering::Relaxed)
        {
            // A full channel means a checkpoint is already requested.
            let _ = checkpointer.wake.try_send(());
        }
    }

    fn checkpoint(&self) -> Result<CheckpointInfo, StoreError> {
        let mut checkpoint = self.checkpoint.lock();
        let (lsn, last_timestamp, image) = {
            let applied = self.state.read();
            let lsn = applied.applied_lsn;
            // Nothing new since the newest good snapshot: no image to take.
            if lsn == 0 || checkpoint.newest_good_lsn == Some(lsn) {
                return Ok(CheckpointInfo {
                    lsn,
                    bytes: 0,
                    segments_removed: 0,
                });
            }
            (lsn, applied.last_timestamp, applied.machine.image())
        };
        let logged_since = self.log_bytes_since_checkpoint.load(Ordering::Relaxed);
        let written = self.snapshots.write(lsn, |out| {
            out.write_all(&STORE_SNAPSHOT_VERSION.to_le_bytes())?;
            out.write_all(&0u32.to_le_bytes())?;
            out.write_all(&last_timestamp.to_le_bytes())?;
            M::write_image(&image, out)
        });
        // A failed snapshot write is not a log failure: nothing acknowledged
        // depends on it, so it is reported, never poisons.
        let bytes = written?;
        let previous = checkpoint.newest_good_lsn.replace(lsn);
        self.log_bytes_since_checkpoint
            .fetch_sub(logged_since, Ordering::Relaxed);
        let keep: Vec<Lsn> = std::iter::once(lsn).chain(previous).collect();
        self.snapshots.retain(&keep)?;
        // The log's own failures poison the log where they must (a failed
        // manifest write), not the store.
        let segments_removed = match previous {
            Some(older) => self.wal.truncate_prefix(older + 1)?,
            None => 0,
        };
        Ok(CheckpointInfo {
            lsn,
            bytes,
            segments_removed,
        })
    }
}

impl<M: StateMachine> Core<M> {
    /// A checkpoint, counted in the stats; after a failure the next
    /// automatic one waits for a quarter interval more of log.
    fn checkpoint_counted(&self) -> Result<CheckpointInfo, StoreError> {
        let result = self.checkpoint();
        let mut stats = self.checkpoint_stats.lock();
        match &result {
            Ok(info) => {
                if info.bytes > 0 {
                    stats.completed += 1;
                }
                stats.last_error = None;
                self.checkpoint_retry_at_bytes
                    .store(self.checkpoint_interval_bytes, Ordering::Relaxed);
            }
            Err(error) => {
                stats.failed += 1;
                stats.last_error = Some(error.to_string());
                let now = self.log_bytes_since_checkpoint.load(Ordering::Relaxed);
                let retry = now.saturating_add((self.checkpoint_interval_bytes / 4).max(1));
                self.checkpoint_retry_at_bytes
                    .store(retry, Ordering::Relaxed);
            }
        }
        drop(stats);
        self.checkpoint_done.notify_all();
        result
    }
}

/// Rejects paths that cannot hold a store: an empty path (which would
/// scatter files over the current directory), or a log directory that is
/// the store's directory or its snapshot directory.
fn validate_paths(dir: &Path, options: &StoreOptions) -> Result<(), StoreError> {
    let invalid = |reason: String| Err(StoreError::InvalidOptions { reason });
    if dir.as_os_str().is_empty() {
        return invalid("the store path is empty".into());
    }
    if let Some(wal_dir) = &options.wal_dir {
        if wal_dir.as_os_str().is_empty() {
            return invalid("the log directory path is empty".into());
        }
        let same = |a: &Path, b: &Path| {
            let canonical = |p: &Path| {
                p.canonicalize()
                    .unwrap_or_else(|_| p.components().collect())
            };
            canonical(a) == canonical(b)
        };
        if same(wal_dir, dir) || same(wal_dir, &dir.join(SNAPSHOT_DIR_NAME)) {
            return invalid(format!(
                "the log directory {} must differ from the store directory and its snapshot directory",
                wal_dir.display()
            ));
        }
    }
    Ok(())
}

impl Checkpointer {
    fn spawn<M: StateMachine>(core: Arc<Core<M>>) -> Result<Checkpointer, StoreError> {
        let (wake, wakeups) = crossbeam_channel::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("syncpay-checkpointer".into())
            .spawn(move || {
                for () in wakeups {
                    if core.check_poison().is_err() || core.wal.is_poisoned() {
                        break;
                    }
                    // A failure is counted and retried after more log; it
                    // poisons nothing.
                    let _ = core.checkpoint_counted();
                }
                // Wake anyone waiting for checkpoints: there will be no more.
                core.checkpoint_done.notify_all();
            })
            .map_err(|source| StoreError::Io {
                op: "spawn checkpointer thread",
                path: PathBuf::new(),
                source,
            })?;
        Ok(Checkpointer { wake, thread })
    }
}
