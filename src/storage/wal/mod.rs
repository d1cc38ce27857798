//! The write-ahead log: a segmented, checksummed log of opaque records with
//! group commit.
//!
//! Each record gets a log sequence number (LSN); LSNs are consecutive and
//! start at 1. [`Wal::append`] returns only after the record is durable
//! (written and `fdatasync`ed). One writer thread owns the files; appenders
//! hand it frames over a channel, and everything queued while a sync runs
//! shares the next write and the next sync (group commit).
//!
//! Invariants:
//! - a completion reports success only after `fdatasync` of every byte of
//!   its records (and of the directory entry of every segment they are in)
//!   returned `Ok`;
//! - after any failed write or sync the log is poisoned: every later call
//!   fails until it is reopened, because the kernel may already have
//!   dropped the unsynced pages, so a retry could falsely succeed;
//! - records visible to readers are exactly the durable ones.
//!
//! Fault model: see `recovery/` for what opening a damaged log does, and
//! `docs/file-format.md` for the decision table it implements. Segment
//! files are preallocated and zero-filled ahead of use by a background
//! thread, so an append never waits for allocation and an `fdatasync`
//! never has to persist a size change. The manifest (`manifest.rs`) lists
//! the segments that must exist and carries the clean-close mark.

// The API is wider than the embedded ledger uses: the replicated mode,
// benchmarks and tests (with `internals`) use the rest.
#![cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]

mod error;
pub(crate) mod manifest;
mod reader;
mod record;
mod recovery;
mod segment;
mod writer;

#[cfg(test)]
mod tests;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use parking_lot::{Mutex, RwLock};

use crate::storage::io::{File, Io, RealIo};

pub use error::{CorruptReason, WalError};
pub use manifest::MANIFEST_FILE_NAME;
pub use reader::{WalIter, WalReader};
pub use record::{RECORD_ALIGN_BYTES, RECORD_HEADER_SIZE_BYTES, frame_size_max};
pub use recovery::{Damage, RecoveryReport, RepairAction, RepairPlan, TornTail};
pub use segment::{SEGMENT_FORMAT_VERSION, SEGMENT_HEADER_SIZE_BYTES};

/// Name of the directory in the log directory that repair moves what it
/// removes to.
pub const QUARANTINE_DIR_NAME: &str = "quarantine";

use segment::Segment;
use writer::{Request, Submission};

/// A log sequence number. The first record of a log has LSN 1.
pub type Lsn = u64;

/// Called once when a submitted batch is durable (or failed). Runs on the
/// log's writer thread, in LSN order, so it must be short and must not call
/// back into the same log.
pub type Completion = Box<dyn FnOnce(Result<Range<Lsn>, WalError>) + Send>;

/// Default size of a segment file.
pub const SEGMENT_SIZE_BYTES_DEFAULT: u64 = 64 << 20;
/// Smallest allowed segment (tests use small segments to exercise rollover).
pub const SEGMENT_SIZE_BYTES_MIN: u64 = 4096;
/// Default maximum payload of one record.
pub const RECORD_SIZE_MAX_BYTES_DEFAULT: usize = 16 << 20;
/// Default maximum bytes one group commit writes at once.
pub const GROUP_SIZE_MAX_BYTES_DEFAULT: usize = 16 << 20;
/// Default number of submissions that may wait for the writer before
/// appenders block (back-pressure).
pub const QUEUE_DEPTH_MAX_DEFAULT: usize = 4096;
/// How many times a waiter yields before it parks (see `Shared::wait`).
const WAIT_YIELDS_MAX: u32 = 100;
/// Name of the lock file held while a log is open.
pub const LOCK_FILE_NAME: &str = crate::storage::io::LOCK_FILE_NAME;

const _: () = assert!(
    segment_overhead_bytes(RECORD_SIZE_MAX_BYTES_DEFAULT) <= SEGMENT_SIZE_BYTES_DEFAULT,
    "a maximal record must fit in an empty default segment"
);

/// Bytes an empty segment needs to take a record of `payload_len` bytes
/// wherever it lands: the header's sector, up to one sector less 32 bytes
/// of offset (a submission continued from the previous segment keeps its
/// offset modulo 512), the frame with all its stamps, and the padding to
/// the next sector.
pub const fn segment_overhead_bytes(payload_len: usize) -> u64 {
    let sector = crate::storage::io::SECTOR_SIZE_BYTES;
    segment::SEGMENT_RECORDS_START_BYTES
        + sector
        + record::frame_size_max(payload_len) as u64
        + sector
}

/// The largest record payload a segment of `segment_size_bytes` can hold.
pub fn record_size_max_for_segment(segment_size_bytes: u64) -> usize {
    // frame_size_max grows by at most 33 bytes per 32 of payload; start from
    // an upper bound and step down to the largest payload that fits.
    let mut payload =
        segment_size_bytes.saturating_sub(4 * crate::storage::io::SECTOR_SIZE_BYTES) as usize;
    while payload > 0 && segment_overhead_bytes(payload) > segment_size_bytes {
        let excess = (segment_overhead_bytes(payload) - segment_size_bytes) as usize;
        payload = payload.saturating_sub(excess.max(1));
    }
    payload
}
const _: () = assert!(SEGMENT_SIZE_BYTES_MIN.is_multiple_of(crate::storage::io::SECTOR_SIZE_BYTES));

/// Options of a [`Wal`].
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// Size of each preallocated segment file. Default 64 MiB.
    pub segment_size_bytes: u64,
    /// Largest payload one record may have. Default 16 MiB.
    pub record_size_max_bytes: usize,
    /// Most bytes one group commit writes before syncing. Default 16 MiB.
    pub group_size_max_bytes: usize,
    /// Submissions queued before appenders block. Default 4096.
    pub queue_depth_max: usize,
    /// Opt-in repair: if recovery finds damage that blocks the open, cut
    /// the log at the first damaged record the caller needs (moving what
    /// the cut removes to `quarantine/`) instead of failing, and report it
    /// in [`RecoveryReport::repair`]. Refused if the result could not open.
    pub repair: bool,
    /// The first LSN the caller needs: damage wholly before it (records a
    /// snapshot already covers) is skipped and reported instead of failing
    /// the open. Default 1: every record the log holds is needed.
    pub needed_from_lsn: Lsn,
    /// Open without writing anything: no lock file or directory is
    /// created, no torn tail zeroed, no leftover removed, no manifest
    /// updated, no writer started (appends fail with [`WalError::Closed`]).
    /// Everything is verified as in a writable open; damage that a writable
    /// open would act on is only reported. Default false.
    pub read_only: bool,
    /// The file system.
    pub io: Arc<dyn Io>,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size_bytes: SEGMENT_SIZE_BYTES_DEFAULT,
            record_size_max_bytes: RECORD_SIZE_MAX_BYTES_DEFAULT,
            group_size_max_bytes: GROUP_SIZE_MAX_BYTES_DEFAULT,
            queue_depth_max: QUEUE_DEPTH_MAX_DEFAULT,
            repair: false,
            needed_from_lsn: 1,
            read_only: false,
            io: Arc::new(RealIo),
        }
    }
}

impl WalOptions {
    fn validate(&self) -> Result<(), WalError> {
        let invalid = |reason| Err(WalError::InvalidOptions { reason });
        if self.segment_size_bytes < SEGMENT_SIZE_BYTES_MIN {
            return invalid("segment_size_bytes is below the minimum of 4096");
        }
        if !self
            .segment_size_bytes
            .is_multiple_of(crate::storage::io::SECTOR_SIZE_BYTES)
        {
            return invalid("segment_size_bytes must be a multiple of 512");
        }
        if self.record_size_max_bytes > u32::MAX as usize - 64 {
            return invalid("record_size_max_bytes must fit in 32 bits");
        }
        if segment_overhead_bytes(self.record_size_max_bytes) > self.segment_size_bytes {
            return invalid("record_size_max_bytes does not fit in one segment");
        }
        if self.needed_from_lsn == 0 {
            return invalid("needed_from_lsn must be at least 1");
        }
        if self.queue_depth_max == 0 {
            return invalid("queue_depth_max must be at least 1");
        }
        Ok(())
    }
}

/// State shared by the handle, the writer thread and readers.
pub(crate) struct Shared {
    dir: PathBuf,
    options: WalOptions,
    sequencer: Mutex<Sequencer>,
    poison: crate::storage::poison::Poison<WalError>,
    segments: RwLock<Vec<Segment>>,
    /// Superseded segments still on disk, (index, path): deleted when the
    /// prefix is purged past them.
    dead: Mutex<Vec<(u64, PathBuf)>>,
    /// The manifest; every update is serialized by this lock.
    manifest: Mutex<manifest::ManifestFile>,
    /// The log's id, stamped into every segment header.
    log_id: u64,
    /// Every LSN below this is durable and readable.
    durable_next_lsn: AtomicU64,
    /// Counters for [`Wal::stats`].
    stats_groups: AtomicU64,
    stats_syncs: AtomicU64,
    /// Latency of the group commits' `fdatasync`.
    sync_latency: crate::storage::metrics::Histogram,
    stats_submissions: AtomicU64,
    /// Submissions in the writer's last group: more than one means
    /// concurrent appenders, whose waits are worth a short spin.
    last_group_submissions: std::sync::atomic::AtomicUsize,
    /// Which submissions the writer has finished, for waiters.
    completed: Mutex<Completed>,
    /// Appenders blocked in `wait`: (ticket, thread). The writer unparks
    /// each one directly when its ticket is finished, so a group's
    /// appenders wake in parallel instead of handing a condition
    /// variable's mutex to each other one after the other (which, with
    /// 16 appenders on 2 cores, cost more than the `fdatasync` itself).
    waiters: Mutex<Vec<(u64, std::thread::Thread)>>,
}

struct Sequencer {
    next_lsn: Lsn,
    /// The ticket the next submission gets; tickets start at 1.
    next_ticket: u64,
    /// `None` once the log is closing.
    tx: Option<Sender<Request>>,
}

/// Progress of the writer, published once per group.
#[derive(Default)]
struct Completed {
    /// Every submission with a ticket up to this one is finished.
    ticket: u64,
    /// The first ticket that failed; it and every later one failed.
    failed_from: Option<u64>,
    /// The writer has stopped.
    closed: bool,
}

/// Counters of the writer's work since the log was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Group commits performed.
    pub groups: u64,
    /// `fdatasync` calls on segments by the writer.
    pub syncs: u64,
    /// Submissions written.
    pub submissions: u64,
}

/// Identifies a submission, to wait for it with [`Wal::wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

/// What [`Wal::submit_with`] returns: the records' LSNs and a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// The LSNs given to the records.
    pub lsns: Range<Lsn>,
    /// Wait for durability with [`Wal::wait`].
    pub ticket: Ticket,
}

impl Shared {
    /// Records the first failure and returns it as the poison cause.
    fn poison(&self, error: WalError) -> Arc<WalError> {
        self.poison
            .set(error, &format!("log {}", self.dir.display()))
    }

    fn check_poison(&self) -> Result<(), WalError> {
        match self.poison.cause() {
            Some(cause) => Err(WalError::Poisoned { cause }),
            None => Ok(()),
        }
    }

    /// Publishes that every submission up to `ticket` is finished, and that
    /// those from `failed_from` on failed, then wakes their appenders.
    fn finish(&self, ticket: u64, failed_from: Option<u64>) {
        {
            let mut completed = self.completed.lock();
            completed.ticket = completed.ticket.max(ticket);
            if let Some(failed) = failed_from {
                completed.failed_from =
                    Some(completed.failed_from.map_or(failed, |f| f.min(failed)));
            }
        }
        self.wake(|waiter_ticket| waiter_ticket <= ticket);
    }

    /// Marks the writer stopped (also when it panicked) and wakes waiters.
    fn close_completions(&self) {
        self.completed.lock().closed = true;
        self.wake(|_| true);
    }

    fn wake(&self, due: impl Fn(u64) -> bool) {
        let woken: Vec<std::thread::Thread> = {
            let mut waiters = self.waiters.lock();
            let mut woken = Vec::new();
            waiters.retain(|(ticket, thread)| {
                if due(*ticket) {
                    woken.push(thread.clone());
                    false
                } else {
                    true
                }
            });
            woken
        };
        for thread in woken {
            thread.unpark();
        }
    }

    /// The outcome of `ticket` if the writer is done with it.
    fn outcome(&self, ticket: Ticket) -> Option<Result<(), WalError>> {
        let completed = self.completed.lock();
        if completed.ticket >= ticket.0 {
            let failed = completed
                .failed_from
                .is_some_and(|failed| failed <= ticket.0);
            drop(completed);
            if !failed {
                return Some(Ok(()));
            }
            let cause = self.poison.cause();
            return Some(Err(
                cause.map_or(WalError::Closed, |cause| WalError::Poisoned { cause })
            ));
        }
        completed.closed.then_some(Err(WalError::Closed))
    }

    fn wait(&self, ticket: Ticket) -> Result<(), WalError> {
        // Yield for a moment before parking, like RocksDB's adaptive yield
        // in its write thread: an `fdatasync` takes tens of microseconds,
        // about what a park and unpark cost on a virtual machine, so a
        // waiter that only yields usually sees its group finish without the
        // writer having to wake it. Bounded, so that a slow disk costs no
        // more than this much spinning per append.
        // Only with company: a lone appender measured faster parking
        // (its yields competed with the writer and the disk's completion
        // work for the same two cores).
        if self.last_group_submissions.load(Ordering::Relaxed) > 1 {
            for _ in 0..WAIT_YIELDS_MAX {
                if let Some(outcome) = self.outcome(ticket) {
                    return outcome;
                }
                std::thread::yield_now();
            }
        }
        if let Some(outcome) = self.outcome(ticket) {
            return outcome;
        }
        // Register, then check again: a finish between the first check and
        // the registration would otherwise never wake this thread. A stale
        // registration only causes a spurious unpark later, which every
        // park loop tolerates.
        self.waiters.lock().push((ticket.0, std::thread::current()));
        loop {
            if let Some(outcome) = self.outcome(ticket) {
                return outcome;
            }
            std::thread::park();
        }
    }

    fn first_lsn(&self) -> Lsn {
        match self.segments.read().first() {
            Some(segment) => segment.base_lsn,
            None => self.durable_next_lsn.load(Ordering::SeqCst),
        }
    }
}

/// A write-ahead log open on a directory.
///
/// ```
/// use syncpay::storage::wal::{Wal, WalOptions};
/// let dir = tempfile::tempdir()?;
/// let (wal, _report) = Wal::open(dir.path(), WalOptions::default())?;
/// let lsn = wal.append(b"first")?; // durable when this returns
/// assert_eq!(lsn, 1);
/// let records: Vec<_> = wal.iter(1).collect::<Result<_, _>>()?;
/// assert_eq!(records, vec![(1, b"first".to_vec())]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Wal {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    _lock: Option<Box<dyn File>>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.shared.dir)
            .field("next_lsn", &self.next_lsn())
            .finish()
    }
}

/// Records of one submission, built under the log's sequencing lock so
/// that their LSNs are known while they are encoded.
pub struct RecordBatch {
    frames: Vec<u8>,
    /// End offset of each frame in `frames`.
    frame_ends: Vec<u32>,
    first_lsn: Lsn,
    next_lsn: Lsn,
    record_size_max_bytes: usize,
    error: Option<WalError>,
}

impl RecordBatch {
    /// The LSN the next pushed record will get.
    pub fn next_lsn(&self) -> Lsn {
        self.next_lsn
    }

    /// Reserves room for `bytes` more bytes of frames.
    pub fn reserve(&mut self, bytes: usize) {
        self.frames.reserve(bytes);
    }

    /// Adds a record whose payload is the concatenation of `parts`.
    pub fn push_parts(&mut self, parts: &[&[u8]]) -> Result<Lsn, WalError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > self.record_size_max_bytes {
            return self.refuse(len, self.record_size_max_bytes);
        }
        let lsn = self.next_lsn;
        record::encode_frame(&mut self.frames, lsn, parts);
        // Frame ends are u32, with room left for the padding to a sector.
        let limit = u32::MAX as usize - record::SECTOR_BYTES;
        if self.frames.len() > limit {
            return self.refuse(self.frames.len(), limit);
        }
        self.frame_ends.push(self.frames.len() as u32);
        self.next_lsn += 1;
        Ok(lsn)
    }

    /// Records that the batch holds a record it cannot take (the first such
    /// error fails the whole batch) and returns that error for this record.
    fn refuse(&mut self, len: usize, max: usize) -> Result<Lsn, WalError> {
        self.error
            .get_or_insert(WalError::RecordTooLarge { len, max });
        Err(WalError::RecordTooLarge { len, max })
    }

    /// Withdraws the whole submission: [`Wal::submit_with`] then writes
    /// nothing, uses no LSN, and returns [`WalError::Withdrawn`].
    pub fn withdraw(&mut self) {
        self.error.get_or_insert(WalError::Withdrawn);
    }

    /// Adds a record.
    pub fn push(&mut self, payload: &[u8]) -> Result<Lsn, WalError> {
        self.push_parts(&[payload])
    }

    /// Pads the frames to a whole number of sectors, so that the next
    /// submission starts at a sector boundary; the padding belongs to the
    /// last frame's extent.
    fn pad_to_sector(&mut self) {
        if let Some(last) = self.frame_ends.last_mut() {
            let padded = record::sector_align_up(self.frames.len() as u64) as usize;
            self.frames.resize(padded, 0);
            // Checked when pushed: frame ends stay a sector below u32::MAX.
            *last = u32::try_from(padded).expect("frame ends leave room for padding");
        }
    }
}

/// A handle to wait for a submission to become durable.
pub struct AppendHandle {
    lsns: Range<Lsn>,
    ticket: Ticket,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AppendHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendHandle")
            .field("lsns", &self.lsns)
            .field("ticket", &self.ticket)
            .finish()
    }
}

impl AppendHandle {
    /// The LSNs assigned to the submission.
    pub fn lsns(&self) -> Range<Lsn> {
        self.lsns.clone()
    }

    /// Blocks until the records are durable.
    pub fn wait(self) -> Result<Range<Lsn>, WalError> {
        self.shared.wait(self.ticket)?;
        Ok(self.lsns)
    }
}

impl Wal {
    /// Opens (creating if needed) the log in `dir`, recovering it. See
    /// [`RecoveryReport`] for what recovery found.
    pub fn open(dir: &Path, options: WalOptions) -> Result<(Wal, RecoveryReport), WalError> {
        options.validate()?;
        let io = Arc::clone(&options.io);
        let lock = if options.read_only {
            crate::storage::io::lock_existing(io.as_ref(), dir).map_err(WalError::from_dir_step)?
        } else {
            crate::storage::io::create_dir_durable(io.as_ref(), dir)
                .map_err(WalError::from_dir_step)?;
            Some(crate::storage::io::lock_dir(io.as_ref(), dir).map_err(WalError::from_dir_step)?)
        };
        let recovery::Recovered {
            segments,
            next_lsn,
            active_offset,
            spare,
            next_index,
            dead,
            manifest,
            report,
        } = recovery::recover(dir, &options)?;
        let log_id = manifest.lock().current().log_id;
        let start = writer::Start {
            active: segments.last().cloned(),
            active_offset,
            next_lsn,
            spare,
            next_index,
        };
        let (tx, rx) = crossbeam_channel::bounded(options.queue_depth_max);
        let read_only = options.read_only;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            options,
            sequencer: Mutex::new(Sequencer {
                next_lsn,
                next_ticket: 1,
                tx: (!read_only).then_some(tx),
            }),
            poison: crate::storage::poison::Poison::default(),
            segments: RwLock::new(segments),
            dead: Mutex::new(dead),
            manifest,
            log_id,
            durable_next_lsn: AtomicU64::new(next_lsn),
            stats_groups: AtomicU64::new(0),
            stats_syncs: AtomicU64::new(0),
            sync_latency: crate::storage::metrics::Histogram::default(),
            stats_submissions: AtomicU64::new(0),
            last_group_submissions: std::sync::atomic::AtomicUsize::new(1),
            completed: Mutex::new(Completed::default()),
            waiters: Mutex::new(Vec::new()),
        });
        let writer = if read_only {
            None
        } else {
            Some(writer::spawn(Arc::clone(&shared), rx, start)?)
        };
        Ok((
            Wal {
                shared,
                writer: Mutex::new(writer),
                _lock: lock,
            },
            report,
        ))
    }

    /// Computes what [`WalOptions::repair`] would do to the log in `dir`,
    /// changing nothing (a dry run). An empty plan means the log opens as
    /// it is. Fails with [`WalError::RepairImpossible`] if no repair could
    /// make it open.
    pub fn plan_repair(dir: &Path, options: &WalOptions) -> Result<RepairPlan, WalError> {
        options.validate()?;
        let io = options.io.as_ref();
        // Hold the lock while reading, so that no open log changes under us.
        let _lock = crate::storage::io::lock_existing(io, dir).map_err(WalError::from_dir_step)?;
        recovery::plan_repair(dir, options)
    }

    /// The log's id (random, chosen when it was created; stamped into
    /// every segment header and the manifest). The ledger's id.
    pub fn log_id(&self) -> u64 {
        self.shared.log_id
    }

    /// The id of the log in `dir` from its manifest, reading nothing else
    /// and changing nothing; `None` if there is no readable manifest.
    pub fn read_log_id(dir: &Path, io: &dyn Io) -> Result<Option<u64>, WalError> {
        Ok(match manifest::ManifestFile::open(io, dir, false)? {
            Ok((manifest, _)) => Some(manifest.current().log_id),
            Err(_) => None,
        })
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The first LSN still in the log.
    pub fn first_lsn(&self) -> Lsn {
        self.shared.first_lsn()
    }

    /// One past the last durable LSN (the LSN the next record will get once
    /// everything submitted so far is durable).
    pub fn next_lsn(&self) -> Lsn {
        self.shared.durable_next_lsn.load(Ordering::SeqCst)
    }

    /// Appends one record and returns its LSN once it is durable.
    pub fn append(&self, payload: &[u8]) -> Result<Lsn, WalError> {
        Ok(self.append_batch(&[payload])?.start)
    }

    /// Appends records as one unit and returns their LSNs once all are durable.
    pub fn append_batch<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<Range<Lsn>, WalError> {
        self.submit_handle(payloads)?.wait()
    }

    /// Submits records without blocking for durability; the handle waits.
    pub fn submit_handle<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<AppendHandle, WalError> {
        let submitted = self.submit_with(|batch| {
            push_all(batch, payloads);
            None
        })?;
        Ok(AppendHandle {
            lsns: submitted.lsns,
            ticket: submitted.ticket,
            shared: Arc::clone(&self.shared),
        })
    }

    /// Submits records; `on_durable` is called once, on the writer thread,
    /// when they are durable or have failed. Returns their LSNs. If this
    /// returns `Err`, `on_durable` is never called.
    pub fn submit<P, F>(&self, payloads: &[P], on_durable: F) -> Result<Range<Lsn>, WalError>
    where
        P: AsRef<[u8]>,
        F: FnOnce(Result<Range<Lsn>, WalError>) + Send + 'static,
    {
        let submitted = self.submit_with(|batch| {
            push_all(batch, payloads);
            Some(Box::new(on_durable))
        })?;
        Ok(submitted.lsns)
    }

    /// The general submission: `build` runs under the sequencing lock, is
    /// told the next LSN, pushes records and returns an optional completion
    /// callback. The lock makes the order of `build` calls the order of
    /// LSNs, which lets a layer above stamp records (with timestamps, say)
    /// in log order. Callbacks run on the writer thread in LSN order before
    /// [`Wal::wait`] returns for the same ticket.
    pub fn submit_with<F>(&self, build: F) -> Result<Submitted, WalError>
    where
        F: FnOnce(&mut RecordBatch) -> Option<Completion>,
    {
        self.shared.check_poison()?;
        let mut sequencer = self.shared.sequencer.lock();
        let mut batch = RecordBatch {
            frames: Vec::new(),
            frame_ends: Vec::new(),
            first_lsn: sequencer.next_lsn,
            next_lsn: sequencer.next_lsn,
            record_size_max_bytes: self.shared.options.record_size_max_bytes,
            error: None,
        };
        let completion = build(&mut batch);
        if let Some(error) = batch.error {
            return Err(error);
        }
        batch.pad_to_sector();
        let lsns = batch.first_lsn..batch.next_lsn;
        let ticket = sequencer.next_ticket;
        let Some(tx) = sequencer.tx.as_ref() else {
            return Err(WalError::Closed);
        };
        let submission = Submission {
            frames: batch.frames,
            frame_ends: batch.frame_ends,
            lsns: lsns.clone(),
            completion,
            ticket,
        };
        tx.send(Request::Append(submission))
            .map_err(|_| WalError::Closed)?;
        sequencer.next_lsn = lsns.end;
        sequencer.next_ticket += 1;
        Ok(Submitted {
            lsns,
            ticket: Ticket(ticket),
        })
    }

    /// Blocks until the submission with `ticket` is durable (or failed).
    pub fn wait(&self, ticket: Ticket) -> Result<(), WalError> {
        self.shared.wait(ticket)
    }

    /// Removes every record with LSN `from_lsn` or greater, durably, so that
    /// the next record gets `from_lsn`. Records submitted before this call
    /// are made durable first (and then removed if in range).
    pub fn truncate_suffix(&self, from_lsn: Lsn) -> Result<(), WalError> {
        self.shared.check_poison()?;
        // Holding the sequencer blocks new submissions until the truncation
        // is durable, so no LSN is handed out twice.
        let mut sequencer = self.shared.sequencer.lock();
        if from_lsn >= sequencer.next_lsn {
            return Ok(());
        }
        let Some(tx) = sequencer.tx.as_ref() else {
            return Err(WalError::Closed);
        };
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        tx.send(Request::TruncateSuffix {
            from_lsn,
            done: done_tx,
        })
        .map_err(|_| WalError::Closed)?;
        done_rx.recv().unwrap_or(Err(WalError::Closed))?;
        sequencer.next_lsn = from_lsn;
        Ok(())
    }

    /// Deletes whole segments all of whose records are below `keep_from_lsn`
    /// (the segment holding `keep_from_lsn`, and the last segment, stay),
    /// with any superseded segments behind them. The manifest is moved past
    /// them first, so a crash in between leaves only files that the next
    /// open removes. Returns how many live segments were deleted.
    ///
    /// A failed manifest update poisons the log (it is a log write); a
    /// failed deletion does not (the file is removed at the next open) and
    /// is returned as an error.
    pub fn truncate_prefix(&self, keep_from_lsn: Lsn) -> Result<usize, WalError> {
        self.shared.check_poison()?;
        // One truncation at a time: the manifest update and the deletions
        // must not interleave with another's.
        let mut manifest = self.shared.manifest.lock();
        let (victims, first_index) = {
            let mut segments = self.shared.segments.write();
            let count = segments
                .windows(2)
                .take_while(|pair| pair[1].base_lsn <= keep_from_lsn)
                .count();
            let victims: Vec<Segment> = segments.drain(..count).collect();
            (victims, segments.first().map(|s| s.index))
        };
        let Some(first_index) = first_index.filter(|_| !victims.is_empty()) else {
            return Ok(0);
        };
        let durable = self.next_lsn();
        let moved = manifest.update(|m| {
            m.first_index = m.first_index.max(first_index);
            m.acked_lsn = m.acked_lsn.max(durable);
        });
        if let Err(error) = moved {
            let cause = self.shared.poison(error);
            return Err(WalError::Poisoned { cause });
        }
        drop(manifest);
        let mut paths: Vec<PathBuf> = victims.iter().map(|v| v.path.clone()).collect();
        {
            let mut dead = self.shared.dead.lock();
            paths.extend(
                dead.iter()
                    .filter(|(index, _)| *index < first_index)
                    .map(|(_, path)| path.clone()),
            );
            dead.retain(|(index, _)| *index >= first_index);
        }
        let io = &self.shared.options.io;
        for path in &paths {
            io.remove_file(path)
                .map_err(|e| WalError::io("remove", path, e))?;
        }
        io.sync_dir(&self.shared.dir)
            .map_err(|e| WalError::io("sync_dir", &self.shared.dir, e))?;
        Ok(victims.len())
    }

    /// Reads records `[from_lsn, to_lsn)`; `to_lsn` is clamped to the durable
    /// end. Fails with `LsnOutOfRange` if `from_lsn` is before the first LSN.
    pub fn reader(&self, from_lsn: Lsn, to_lsn: Lsn) -> Result<WalReader, WalError> {
        WalReader::new(Arc::clone(&self.shared), from_lsn, to_lsn)
    }

    /// Iterates over the durable records from `from_lsn` on.
    pub fn iter(&self, from_lsn: Lsn) -> WalIter {
        WalIter::new(self.reader(from_lsn, Lsn::MAX))
    }

    /// Reads one durable record.
    pub fn read(&self, lsn: Lsn) -> Result<Vec<u8>, WalError> {
        let mut reader = self.reader(lsn, lsn.saturating_add(1))?;
        match reader.next_record()? {
            Some((_, payload)) => Ok(payload.to_vec()),
            None => Err(WalError::LsnOutOfRange {
                lsn,
                first_lsn: self.first_lsn(),
                next_lsn: self.next_lsn(),
            }),
        }
    }

    /// Blocks until the background preparation of the next segment is done.
    /// Tests call this before injecting faults, so that the faults hit the
    /// operations they target.
    #[doc(hidden)]
    pub fn wait_for_spare_segment(&self) {
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let sent = match self.shared.sequencer.lock().tx.as_ref() {
            Some(tx) => tx.send(Request::WaitForSpare { done: done_tx }).is_ok(),
            None => false,
        };
        if sent {
            let _ = done_rx.recv();
        }
    }

    /// True if an earlier failure poisoned the log.
    pub fn is_poisoned(&self) -> bool {
        self.shared.poison.is_set()
    }

    /// Counters of the writer's work since open.
    pub fn stats(&self) -> WalStats {
        WalStats {
            groups: self.shared.stats_groups.load(Ordering::Relaxed),
            syncs: self.shared.stats_syncs.load(Ordering::Relaxed),
            submissions: self.shared.stats_submissions.load(Ordering::Relaxed),
        }
    }

    /// Latency of the group commits' `fdatasync` since open.
    pub fn sync_latency(&self) -> crate::storage::metrics::LatencySummary {
        self.shared.sync_latency.summary()
    }

    /// The live segments: (index, file, first LSN, one past the last LSN,
    /// bytes up to the end of the last record).
    pub fn segment_infos(&self) -> Vec<(u64, PathBuf, Lsn, Lsn, u64)> {
        self.shared
            .segments
            .read()
            .iter()
            .map(|s| (s.index, s.path.clone(), s.base_lsn, s.end_lsn, s.end_offset))
            .collect()
    }

    /// Number of live segment files.
    pub fn segment_count(&self) -> usize {
        self.shared.segments.read().len()
    }

    /// Bytes of live records (frames) in the log.
    pub fn live_bytes(&self) -> u64 {
        self.shared
            .segments
            .read()
            .iter()
            .map(|s| s.end_offset - s.first_frame_offset)
            .sum()
    }

    /// Bytes of live frames from `lsn` on: an upper bound, counted in the
    /// segment holding `lsn` from the nearest sparse-index entry at or
    /// before it.
    pub fn live_bytes_from(&self, lsn: Lsn) -> u64 {
        self.shared
            .segments
            .read()
            .iter()
            .filter(|s| s.end_lsn > lsn)
            .map(|s| s.end_offset.saturating_sub(s.seek_hint(lsn).1))
            .sum()
    }

    /// Stops the writer after everything submitted so far is durable;
    /// later calls fail with [`WalError::Closed`]. Returns the poison cause
    /// if the log was poisoned. Dropping the log does the same.
    pub fn close(&self) -> Result<(), WalError> {
        self.shutdown()?;
        self.shared.check_poison()
    }

    /// Stops the writer, then records the clean-close mark: where the log
    /// ends, so that the next open treats anything missing before it as
    /// damage rather than a torn write. One manifest write (one
    /// `fdatasync`); skipped if the log is poisoned (its end is unknown).
    fn shutdown(&self) -> Result<(), WalError> {
        let tx = self.shared.sequencer.lock().tx.take();
        if let Some(tx) = tx {
            // The writer drains everything queued before this message.
            let _ = tx.send(Request::Shutdown);
        }
        let writer = self.writer.lock().take();
        let Some(writer) = writer else {
            return Ok(()); // Already shut down.
        };
        // A panicked writer has already failed its submissions (their
        // completion senders were dropped), so there is nothing to add.
        let finished = writer.join().is_ok();
        if !finished || self.is_poisoned() {
            return Ok(());
        }
        let next_lsn = self.next_lsn();
        let end_index = self.shared.segments.read().last().map_or(0, |s| s.index);
        self.shared.manifest.lock().update(|m| {
            m.acked_lsn = next_lsn;
            m.end_index = end_index;
            m.clean = true;
        })
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        // A failed clean-close mark only weakens the next open's checks;
        // `close` reports it.
        let _ = self.shutdown();
    }
}

fn push_all<P: AsRef<[u8]>>(batch: &mut RecordBatch, payloads: &[P]) {
    let bytes: usize = payloads
        .iter()
        .map(|p| frame_size_max(p.as_ref().len()))
        .sum();
    batch.reserve(bytes);
    for payload in payloads {
        if batch.push(payload.as_ref()).is_err() {
            break;
        }
    }
}
