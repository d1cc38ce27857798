//! The writer thread: group commit, segment rollover, suffix truncation.
//!
//! One thread owns the active segment. It blocks for the first request,
//! then takes every append already queued (up to `group_size_max_bytes`),
//! writes them with one `write` per segment touched and one `fdatasync`
//! per segment touched, publishes the new durable end to readers, and only
//! then runs the completions, in LSN order. A group that does not fit in the
//! active segment is split at a frame boundary: the first part is synced
//! before anything is written to the next segment, so a torn write can only
//! ever be at the very end of the log.
//!
//! Every submission starts at a sector boundary (the encoder pads it to a
//! whole number of sectors), and the part of a submission that continues
//! in a new segment starts at the same offset modulo 512 as it had in its
//! submission: so the sector stamps the encoder placed sit at the file's
//! sector boundaries (see `record.rs`).
//!
//! A second thread (the preparer) creates the next segment ahead of need:
//! temporary name, zero-fill, `fdatasync`, rename, directory `fsync`, and
//! then records it in the manifest. So a segment's directory entry, size
//! and listing are durable before any record goes into it, and an append
//! never waits for 64 MiB of zeros.
//!
//! Any error poisons the log: the failing group and every later request
//! fail with [`WalError::Poisoned`].

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::segment::{
    self, SEGMENT_RECORDS_START_BYTES, SPARSE_INTERVAL_BYTES, Segment, SegmentHeader, Spare,
    prepare_segment,
};
use super::{Completion, Lsn, Shared, WalError};
use crate::storage::io::File;

/// The longest a group waits for appenders expected to join it. About one
/// `fdatasync` on a virtio disk: waiting longer would cost more than the
/// sync it saves. (Monotonic time here only schedules work; it never
/// reaches stored state, which is why it does not go through `Clock`.)
const GROUP_GATHER_WAIT_MAX: Duration = Duration::from_micros(100);

pub(super) enum Request {
    Append(Submission),
    TruncateSuffix {
        from_lsn: Lsn,
        done: Sender<Result<(), WalError>>,
    },
    /// Replies once the spare segment is prepared (tests use it to make
    /// fault injection deterministic).
    WaitForSpare {
        done: Sender<()>,
    },
    Shutdown,
}

pub(super) struct Submission {
    pub frames: Vec<u8>,
    /// End offset of each frame in `frames`.
    pub frame_ends: Vec<u32>,
    pub lsns: Range<Lsn>,
    /// Called when the records are durable; `None` for appenders that wait
    /// on their ticket instead.
    pub completion: Option<Completion>,
    pub ticket: u64,
}

/// The segment records are being appended to.
struct Active {
    index: u64,
    path: PathBuf,
    file: Arc<dyn File>,
    base_lsn: Lsn,
    size_bytes: u64,
    /// Where the segment's first frame is (known once it is staged).
    first_frame_offset: u64,
    /// Where the next write goes.
    offset: u64,
    /// The next LSN to be written.
    next_lsn: Lsn,
    /// True until the segment header is durable.
    header_pending: bool,
    /// Offset of the last sparse-index entry.
    sparse_last_offset: Option<u64>,
}

/// What the next write into the active segment consists of: optionally
/// the segment header, then byte ranges of the group's submissions.
#[derive(Default)]
struct Pending {
    /// The segment header, and the offset its first frame starts at (the
    /// bytes between are zero).
    header: Option<([u8; segment::SEGMENT_HEADER_SIZE_BYTES], usize)>,
    /// (submission index in the group, byte range of its frames).
    pieces: Vec<(usize, Range<usize>)>,
    len: usize,
    end_lsn: Lsn,
    sparse: Vec<(Lsn, u64)>,
    /// Reused buffer for joining several pieces into one write.
    buffer: Vec<u8>,
}

impl Pending {
    /// Drops what is staged; the join buffer keeps its capacity.
    fn clear(&mut self) {
        self.header = None;
        self.pieces.clear();
        self.len = 0;
        self.sparse.clear();
    }
}

struct Writer {
    shared: Arc<Shared>,
    /// Size of the last group, to estimate how many appenders are active.
    previous_group_submissions: usize,
    rx: Receiver<Request>,
    active: Option<Active>,
    preparer: Preparer,
    pending: Pending,
}

/// What the writer starts from after recovery.
pub(super) struct Start {
    /// The last live segment, which appends continue.
    pub active: Option<Segment>,
    /// Where the next submission goes in it (a sector boundary).
    pub active_offset: u64,
    pub next_lsn: Lsn,
    pub spare: Option<Spare>,
    /// Index the next new segment gets (if there is no spare).
    pub next_index: u64,
}

/// Starts the writer (and its preparer) on the recovered state.
pub(super) fn spawn(
    shared: Arc<Shared>,
    rx: Receiver<Request>,
    recovered: Start,
) -> Result<JoinHandle<()>, WalError> {
    let active = recovered.active.as_ref().map(|s| Active {
        index: s.index,
        path: s.path.clone(),
        file: Arc::clone(&s.file),
        base_lsn: s.base_lsn,
        size_bytes: s.size_bytes,
        first_frame_offset: s.first_frame_offset,
        offset: recovered.active_offset,
        next_lsn: recovered.next_lsn,
        header_pending: false,
        sparse_last_offset: s.sparse.last().map(|&(_, offset)| offset),
    });
    let mut preparer = Preparer::spawn(&shared)?;
    match recovered.spare {
        Some((index, file, _)) => {
            preparer.ready = Some((index, Ok(file)));
            preparer.next_index = index + 1;
        }
        None => preparer.request(recovered.next_index),
    }
    let writer = Writer {
        shared,
        previous_group_submissions: 1,
        rx,
        active,
        preparer,
        pending: Pending::default(),
    };
    std::thread::Builder::new()
        .name("syncpay-wal-writer".into())
        .spawn(move || writer.run())
        .map_err(|e| WalError::io("spawn writer thread", PathBuf::new(), e))
}

/// Marks completions closed when the writer thread ends, also by panic, so
/// that no waiter blocks forever.
struct CloseOnExit(Arc<Shared>);

impl Drop for CloseOnExit {
    fn drop(&mut self) {
        self.0.close_completions();
    }
}

impl Writer {
    fn run(mut self) {
        let _close = CloseOnExit(Arc::clone(&self.shared));
        while let Ok(request) = self.rx.recv() {
            let mut next = Some(request);
            while let Some(request) = next.take() {
                next = match request {
                    Request::Shutdown => return,
                    Request::TruncateSuffix { from_lsn, done } => {
                        let result = self.truncate_suffix(from_lsn);
                        let _ = done.send(result);
                        None
                    }
                    Request::Append(first) => self.group_commit(first),
                    Request::WaitForSpare { done } => {
                        self.preparer.wait_ready();
                        let _ = done.send(());
                        None
                    }
                };
            }
        }
    }

    /// Writes `first` and every append queued behind it; returns a non-append
    /// request that ended the group, to be handled next.
    fn group_commit(&mut self, first: Submission) -> Option<Request> {
        let group_size_max = self.shared.options.group_size_max_bytes;
        let mut bytes = first.frames.len();
        let mut group = vec![first];
        let mut deferred = None;
        // Appenders served by the previous group are waking up one after
        // another to submit again; give them a moment (bounded) to join this
        // group instead of each paying for a sync of its own. A lone
        // appender (previous group of one) never waits.
        let expected = self.previous_group_submissions;
        let deadline = Instant::now() + GROUP_GATHER_WAIT_MAX;
        while bytes < group_size_max {
            let next = if group.len() < expected {
                // Sleep until the next appender arrives (or the deadline):
                // spinning here would take a core from the appenders.
                match deadline.checked_duration_since(Instant::now()) {
                    Some(remaining) => self.rx.recv_timeout(remaining).ok(),
                    None => self.rx.try_recv().ok(),
                }
            } else {
                self.rx.try_recv().ok()
            };
            match next {
                Some(Request::Append(submission)) => {
                    bytes += submission.frames.len();
                    group.push(submission);
                }
                Some(other) => {
                    deferred = Some(other);
                    break;
                }
                None => break,
            }
        }
        // Decay slowly: one slow appender should not shrink the next groups.
        self.previous_group_submissions = group.len().max(expected.saturating_sub(1));
        self.shared
            .last_group_submissions
            .store(group.len(), Ordering::Relaxed);
        self.shared.stats_groups.fetch_add(1, Ordering::Relaxed);
        self.shared
            .stats_submissions
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        let result = match self.shared.check_poison() {
            Ok(()) => self.write_group(&group),
            Err(error) => Err(error),
        };
        let first_ticket = group[0].ticket;
        let last_ticket = group[group.len() - 1].ticket;
        match result {
            Ok(()) => {
                for submission in group {
                    if let Some(completion) = submission.completion {
                        completion(Ok(submission.lsns));
                    }
                }
                self.shared.finish(last_ticket, None);
            }
            Err(error) => {
                // Staged pieces refer to this group: drop them with it.
                self.pending.clear();
                let cause = match error {
                    WalError::Poisoned { cause } => cause,
                    error => self.shared.poison(error),
                };
                for submission in group {
                    if let Some(completion) = submission.completion {
                        completion(Err(WalError::Poisoned {
                            cause: Arc::clone(&cause),
                        }));
                    }
                }
                self.shared.finish(last_ticket, Some(first_ticket));
            }
        }
        deferred
    }

    fn write_group(&mut self, group: &[Submission]) -> Result<(), WalError> {
        for (index, submission) in group.iter().enumerate() {
            let mut frame = 0usize; // first frame not yet staged
            let count = submission.frame_ends.len();
            while frame < count {
                if self.active.is_none() {
                    self.open_next_segment(submission.lsns.start + frame as u64)?;
                }
                let mut staged = self.stage(index, submission, frame);
                if staged == 0 {
                    // The active segment is full: make what is staged durable
                    // before anything goes into the next segment.
                    self.flush(group)?;
                    self.open_next_segment(submission.lsns.start + frame as u64)?;
                    staged = self.stage(index, submission, frame);
                    assert!(staged > 0, "a record always fits in an empty segment");
                }
                frame += staged;
            }
        }
        self.flush(group)
    }

    /// Stages the longest run of frames of `submission` from frame `first`
    /// that fits in the active segment; returns how many frames.
    fn stage(&mut self, index: usize, submission: &Submission, first: usize) -> usize {
        let active = self.active.as_mut().expect("stage needs an active segment");
        // Pair assertion with the sequencer: frames reach the file in LSN
        // order with no gap, whatever the grouping and segment rollover.
        let expected_lsn = if self.pending.pieces.is_empty() {
            active.next_lsn
        } else {
            self.pending.end_lsn
        };
        assert_eq!(
            submission.lsns.start + first as u64,
            expected_lsn,
            "log frames staged out of LSN order"
        );
        let ends = &submission.frame_ends;
        let start_byte = if first == 0 {
            0
        } else {
            ends[first - 1] as usize
        };
        // Nothing staged yet (a staged header counts in `len`): the header
        // goes with the first records, which start at the offset modulo 512
        // they have in their submission.
        if active.header_pending && self.pending.len == 0 {
            let first_frame_offset =
                SEGMENT_RECORDS_START_BYTES as usize + start_byte % super::record::SECTOR_BYTES;
            let header = SegmentHeader {
                index: active.index,
                base_lsn: active.base_lsn,
                segment_size_bytes: active.size_bytes,
                log_id: self.shared.log_id,
                first_frame_offset: first_frame_offset as u32,
            };
            active.first_frame_offset = first_frame_offset as u64;
            self.pending.header = Some((header.encode(), first_frame_offset));
            self.pending.len = first_frame_offset;
        }
        // File offset at which frame `first` lands.
        let base_offset = active.offset + self.pending.len as u64;
        let room = active.size_bytes.saturating_sub(base_offset) as usize;
        let last = first + ends[first..].partition_point(|&end| end as usize - start_byte <= room);
        if last == first {
            return 0;
        }
        let end_byte = ends[last - 1] as usize;
        // Sparse index: the first frame at least SPARSE_INTERVAL_BYTES after
        // the previous entry, repeatedly (frame starts are `ends[i - 1]`).
        let mut frame = first;
        while frame < last {
            let frame_start = if frame == 0 {
                0
            } else {
                ends[frame - 1] as usize
            };
            let offset = base_offset + (frame_start - start_byte) as u64;
            let due = active
                .sparse_last_offset
                .map_or(offset, |previous| previous + SPARSE_INTERVAL_BYTES);
            if offset >= due {
                self.pending
                    .sparse
                    .push((submission.lsns.start + frame as u64, offset));
                active.sparse_last_offset = Some(offset);
                continue;
            }
            // Jump to the first frame starting at or after `due`.
            let target = start_byte + (due - base_offset) as usize;
            let next = ends.partition_point(|&end| (end as usize) < target) + 1;
            if next <= frame || next >= last {
                break;
            }
            frame = next;
        }
        self.pending.pieces.push((index, start_byte..end_byte));
        self.pending.len += end_byte - start_byte;
        self.pending.end_lsn = submission.lsns.start + last as u64;
        last - first
    }

    /// Writes and syncs what is staged, then publishes it to readers.
    fn flush(&mut self, group: &[Submission]) -> Result<(), WalError> {
        if self.pending.len == 0 {
            return Ok(());
        }
        let active = self.active.as_mut().expect("flush needs an active segment");
        let pending = &mut self.pending;
        let bytes: &[u8] = match (&pending.header, pending.pieces.as_slice()) {
            // One submission's frames as they are: no copy.
            (None, [(index, range)]) => &group[*index].frames[range.clone()],
            (header, pieces) => {
                pending.buffer.clear();
                pending.buffer.reserve(pending.len);
                if let Some((header, first_frame_offset)) = header {
                    pending.buffer.extend_from_slice(header);
                    pending.buffer.resize(*first_frame_offset, 0);
                }
                for (index, range) in pieces {
                    pending
                        .buffer
                        .extend_from_slice(&group[*index].frames[range.clone()]);
                }
                &pending.buffer
            }
        };
        active
            .file
            .write_all_at(bytes, active.offset)
            .map_err(|e| WalError::io("write", &active.path, e))?;
        let sync_started = std::time::Instant::now();
        active
            .file
            .sync_data()
            .map_err(|e| WalError::io("sync_data", &active.path, e))?;
        // Write-only metrics: never read on a path that influences state.
        self.shared.sync_latency.record(sync_started.elapsed());
        self.shared.stats_syncs.fetch_add(1, Ordering::Relaxed);
        active.offset += pending.len as u64;
        let first_publish = active.header_pending;
        active.header_pending = false;
        if pending.end_lsn > active.next_lsn {
            active.next_lsn = pending.end_lsn;
        }
        let sparse = std::mem::take(&mut pending.sparse);
        pending.clear();
        self.publish(first_publish, sparse);
        Ok(())
    }

    /// Makes the active segment's durable end visible to readers.
    fn publish(&self, new_segment: bool, sparse: Vec<(Lsn, u64)>) {
        let active = self
            .active
            .as_ref()
            .expect("publish needs an active segment");
        {
            let mut segments = self.shared.segments.write();
            if new_segment {
                segments.push(Segment {
                    index: active.index,
                    path: active.path.clone(),
                    file: Arc::clone(&active.file),
                    base_lsn: active.base_lsn,
                    first_frame_offset: active.first_frame_offset,
                    end_lsn: active.next_lsn,
                    end_offset: active.offset,
                    size_bytes: active.size_bytes,
                    sparse,
                });
            } else if let Some(last) = segments.last_mut().filter(|s| s.index == active.index) {
                last.end_lsn = active.next_lsn;
                last.end_offset = active.offset;
                last.sparse.extend(sparse);
            }
        }
        self.shared
            .durable_next_lsn
            .store(active.next_lsn, Ordering::SeqCst);
    }

    /// Makes the next prepared segment active, starting at `base_lsn`. Its
    /// header is written with its first records.
    fn open_next_segment(&mut self, base_lsn: Lsn) -> Result<(), WalError> {
        let index = self.preparer.next_index();
        let file = self.preparer.take(index)?;
        self.preparer.request(index + 1);
        self.active = Some(Active {
            index,
            path: segment::segment_path(&self.shared.dir, index),
            file,
            base_lsn,
            size_bytes: self.shared.options.segment_size_bytes,
            first_frame_offset: SEGMENT_RECORDS_START_BYTES,
            offset: 0,
            next_lsn: base_lsn,
            header_pending: true,
            sparse_last_offset: None,
        });
        Ok(())
    }

    /// Durably removes records from `from_lsn` on: the clean-close mark is
    /// lowered first (so that it never claims a removed record), then the
    /// header of a new segment whose base is `from_lsn` is written (one
    /// atomic sector write). The segments it makes dead stay on disk until
    /// the log's prefix is purged past them: deleting them now would leave
    /// index gaps that recovery could not tell from lost segments.
    fn truncate_suffix(&mut self, from_lsn: Lsn) -> Result<(), WalError> {
        self.shared.check_poison()?;
        let next_lsn = self.active.as_ref().map_or(1, |a| a.next_lsn);
        let first_lsn = self.shared.first_lsn();
        if from_lsn >= next_lsn {
            return Ok(());
        }
        if from_lsn < first_lsn {
            return Err(WalError::LsnOutOfRange {
                lsn: from_lsn,
                first_lsn,
                next_lsn,
            });
        }
        // The manifest stays locked until the superseding header is durable
        // and published, so that the preparer, which raises the mark to the
        // durable end, cannot raise it past `from_lsn` in between. The spare
        // is made ready first: the preparer needs the lock to finish one.
        self.preparer.ensure_ready();
        let shared = Arc::clone(&self.shared);
        let mut manifest = shared.manifest.lock();
        let lowered = manifest.update(|m| {
            m.acked_lsn = m.acked_lsn.min(from_lsn);
            m.clean = false;
        });
        let result = lowered.and_then(|()| self.write_superseding_segment(from_lsn));
        drop(manifest);
        match result {
            Ok(dead) => {
                let mut list = self.shared.dead.lock();
                list.extend(dead.into_iter().map(|s| (s.index, s.path)));
                list.sort();
                Ok(())
            }
            Err(error) => {
                let cause = self.shared.poison(error);
                Err(WalError::Poisoned { cause })
            }
        }
    }

    fn write_superseding_segment(&mut self, from_lsn: Lsn) -> Result<Vec<Segment>, WalError> {
        self.open_next_segment(from_lsn)?;
        let active = self.active.as_mut().expect("just opened");
        let header = SegmentHeader {
            index: active.index,
            base_lsn: from_lsn,
            segment_size_bytes: active.size_bytes,
            log_id: self.shared.log_id,
            first_frame_offset: SEGMENT_RECORDS_START_BYTES as u32,
        };
        active
            .file
            .write_all_at(&header.encode(), 0)
            .map_err(|e| WalError::io("write", &active.path, e))?;
        active
            .file
            .sync_data()
            .map_err(|e| WalError::io("sync_data", &active.path, e))?;
        active.offset = SEGMENT_RECORDS_START_BYTES;
        active.first_frame_offset = SEGMENT_RECORDS_START_BYTES;
        active.header_pending = false;
        let mut dead = Vec::new();
        {
            let mut segments = self.shared.segments.write();
            while segments.last().is_some_and(|s| s.base_lsn >= from_lsn) {
                dead.push(segments.pop().expect("checked non-empty"));
            }
            if let Some(last) = segments.last_mut() {
                last.end_lsn = from_lsn;
                last.sparse.retain(|&(lsn, _)| lsn < from_lsn);
            }
            segments.push(Segment {
                index: active.index,
                path: active.path.clone(),
                file: Arc::clone(&active.file),
                base_lsn: from_lsn,
                first_frame_offset: SEGMENT_RECORDS_START_BYTES,
                end_lsn: from_lsn,
                end_offset: active.offset,
                size_bytes: active.size_bytes,
                sparse: Vec::new(),
            });
        }
        self.shared
            .durable_next_lsn
            .store(from_lsn, Ordering::SeqCst);
        Ok(dead)
    }
}

/// Zero-fills `file` to `size_bytes` in chunks, syncing each: the device
/// then never holds more than one chunk of zeros in its write cache, so an
/// appender's `fdatasync` (which flushes that cache) waits for at most one
/// chunk instead of a whole segment. Without this, every rollover put a
/// 64 MiB write burst in front of the next appends (tens of milliseconds of
/// latency every segment).
/// A prepared segment (or why preparing it failed), by index.
type Prepared = (u64, Result<Arc<dyn File>, WalError>);

/// The background thread that prepares the next segment.
struct Preparer {
    request_tx: Option<Sender<u64>>,
    ready_rx: Receiver<Prepared>,
    /// A finished preparation not yet taken.
    ready: Option<Prepared>,
    /// Index of a preparation under way.
    outstanding: Option<u64>,
    /// Index the next segment will get.
    next_index: u64,
    thread: Option<JoinHandle<()>>,
}

impl Preparer {
    fn spawn(shared: &Arc<Shared>) -> Result<Preparer, WalError> {
        let (request_tx, request_rx) = crossbeam_channel::unbounded::<u64>();
        let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
        let shared = Arc::clone(shared);
        let thread = std::thread::Builder::new()
            .name("syncpay-wal-preparer".into())
            .spawn(move || {
                let io = Arc::clone(&shared.options.io);
                let size_bytes = shared.options.segment_size_bytes;
                for index in request_rx {
                    let result = prepare_segment(
                        io.as_ref(),
                        &shared.dir,
                        index,
                        size_bytes,
                        &shared.manifest,
                        Some(&shared.durable_next_lsn),
                    );
                    if ready_tx.send((index, result)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| WalError::io("spawn preparer thread", PathBuf::new(), e))?;
        Ok(Preparer {
            request_tx: Some(request_tx),
            ready_rx,
            ready: None,
            outstanding: None,
            next_index: 0,
            thread: Some(thread),
        })
    }

    fn next_index(&self) -> u64 {
        match &self.ready {
            Some((index, _)) => *index,
            None => self.outstanding.unwrap_or(self.next_index),
        }
    }

    fn request(&mut self, index: u64) {
        self.next_index = index;
        if self.ready.is_some() || self.outstanding.is_some() {
            return;
        }
        if let Some(tx) = &self.request_tx
            && tx.send(index).is_ok()
        {
            self.outstanding = Some(index);
        }
    }

    /// Makes sure a prepared segment is ready, so that `take` will not wait.
    fn ensure_ready(&mut self) {
        if self.ready.is_none() && self.outstanding.is_none() {
            self.request(self.next_index);
        }
        self.wait_ready();
    }

    /// Waits for an outstanding preparation to finish (without taking it).
    fn wait_ready(&mut self) {
        if self.ready.is_none()
            && self.outstanding.is_some()
            && let Ok(received) = self.ready_rx.recv()
        {
            self.outstanding = None;
            self.ready = Some(received);
        }
    }

    /// Waits for segment `index` to be prepared and takes it.
    fn take(&mut self, index: u64) -> Result<Arc<dyn File>, WalError> {
        if self.ready.is_none() {
            if self.outstanding.is_none() {
                self.request(index);
            }
            let received = self.ready_rx.recv().map_err(|_| {
                WalError::io(
                    "prepare segment",
                    PathBuf::new(),
                    std::io::Error::other("the segment preparer stopped"),
                )
            })?;
            self.outstanding = None;
            self.ready = Some(received);
        }
        let (ready_index, result) = self.ready.take().expect("filled above");
        assert_eq!(ready_index, index, "segments are prepared in index order");
        result
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        self.request_tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
