//! openraft's log storage on one instance of our write-ahead log.
//!
//! Every change is one record of one ordered stream, so the order openraft
//! asks for is the order on disk, and replaying the stream at open rebuilds
//! exactly the state the last durable record left:
//!
//! ```text
//! tag  body (bincode, see wire.rs)   effect when replayed
//!   1  Entry                         appended after the last entry
//!   2  Vote                          the vote
//!   3  Option<LogId>                 the committed log id
//!   4  u64 index                     entries from index on removed (truncate)
//!   5  LogId                         entries up to it removed (purge)
//! ```
//!
//! - `save_vote` returns once the vote's record is durable; every later
//!   entry is behind it in the same stream, so no entry of a term can land
//!   before the vote that term needed.
//! - `append` hands its entries to the log and returns; they are readable at
//!   once from a memory cache. openraft's callback runs from the log's
//!   completion, after the `fdatasync` covering them returned success, in
//!   log order, never early.
//! - `truncate` is a marker record, durable before it returns, not a
//!   physical cut of the file: a cut would also take away any vote record
//!   written after the removed entries, and the log has no atomic
//!   "cut and rewrite the vote". The space comes back at the next purge.
//! - `purge` writes the vote, the committed id and the purge marker first,
//!   durably, and only then drops whole segments before the first entry it
//!   keeps: a crash in between leaves records replay removes again, and
//!   `get_log_state` returns the purged id when no entry is left.
//!
//! Fault model: the write-ahead log's (torn tails cut, corruption refused,
//! a failed write or `fdatasync` poisons the instance: every later call
//! fails). A record that is valid for the log but not for this stream (a
//! gap in entry indexes, undecodable bytes) fails the open with
//! [`RaftLogError::Invalid`].

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, ErrorSubject, ErrorVerb, LogId, RaftLogId, RaftLogReader, StorageError,
    StorageIOError, Vote,
};
use parking_lot::Mutex;

use super::wire;
use super::{Entry, NodeId, TypeConfig};
use crate::storage::wal::{Lsn, Wal, WalError, WalOptions};

const TAG_ENTRY: u8 = 1;
const TAG_VOTE: u8 = 2;
const TAG_COMMITTED: u8 = 3;
const TAG_TRUNCATE: u8 = 4;
const TAG_PURGE: u8 = 5;

/// Bytes of recent entries kept in memory beyond those not yet durable
/// (which are always kept: the log serves reads only of durable records).
/// Followers being caught up read older entries from the log files.
pub const ENTRY_CACHE_BYTES_MAX: usize = 64 << 20;

/// An error opening the Raft log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RaftLogError {
    /// The write-ahead log failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// A durable record does not fit the stream.
    #[error("raft log record at lsn {lsn} is invalid: {reason}")]
    Invalid {
        /// The record.
        lsn: Lsn,
        /// What is wrong.
        reason: String,
    },
}

/// Where a live entry is.
#[derive(Clone, Copy, Debug)]
struct Slot {
    lsn: Lsn,
    log_id: LogId<NodeId>,
}

/// The stream's state, as replay of its records leaves it.
#[derive(Default)]
struct LogIndex {
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    last_purged: Option<LogId<NodeId>>,
    /// The live entries by index. openraft appends consecutive indexes,
    /// but its conformance suite also appends with holes, which a map
    /// takes. LSNs increase with the index (appends go to the end; an
    /// append at or below the last index first removes the entries from
    /// it on, as a truncation would), which is what lets a purge drop the
    /// segments before the first entry it keeps. Missing records are the
    /// write-ahead log's to detect (checksums, LSN continuity, manifest).
    entries: BTreeMap<u64, Slot>,
    /// Recent entries by index, with their record size: all that are not
    /// durable yet, and older ones up to [`ENTRY_CACHE_BYTES_MAX`].
    cache: BTreeMap<u64, (Lsn, usize, Entry)>,
    cache_bytes: usize,
    /// The committed id last written to the log.
    committed_written: Option<LogId<NodeId>>,
}

impl LogIndex {
    fn last_log_id(&self) -> Option<LogId<NodeId>> {
        self.entries
            .last_key_value()
            .map(|(_, s)| s.log_id)
            .or(self.last_purged)
    }

    /// Appends a live entry.
    fn push(&mut self, slot: Slot) {
        let index = slot.log_id.index;
        if self
            .entries
            .last_key_value()
            .is_some_and(|(&last, _)| last >= index)
        {
            self.truncate(index);
        }
        self.entries.insert(index, slot);
    }

    fn truncate(&mut self, index: u64) {
        self.entries.split_off(&index);
        let removed = self.cache.split_off(&index);
        self.cache_bytes -= removed.values().map(|(_, size, _)| size).sum::<usize>();
    }

    fn purge(&mut self, log_id: LogId<NodeId>) {
        if self.last_purged.is_some_and(|p| p.index >= log_id.index) {
            return;
        }
        self.last_purged = Some(log_id);
        let end = log_id.index.saturating_add(1);
        self.entries = self.entries.split_off(&end);
        let kept = self.cache.split_off(&end);
        let removed = std::mem::replace(&mut self.cache, kept);
        self.cache_bytes -= removed.values().map(|(_, size, _)| size).sum::<usize>();
    }

    /// Drops cached entries from the oldest while over the cache bound,
    /// never one that is not durable (`durable_next_lsn`).
    fn evict(&mut self, durable_next_lsn: Lsn) {
        while self.cache_bytes > ENTRY_CACHE_BYTES_MAX {
            let Some(entry) = self.cache.first_entry() else {
                break;
            };
            if entry.get().0 >= durable_next_lsn {
                break;
            }
            self.cache_bytes -= entry.get().1;
            entry.remove();
        }
    }
}

struct Shared {
    wal: Wal,
    index: Mutex<LogIndex>,
    /// Bytes of entries appended since this log was opened.
    appended_bytes: std::sync::atomic::AtomicU64,
}

/// The Raft log of one node: openraft's [`RaftLogStorage`] on a
/// write-ahead log. Clones share the log (a clone is the log reader).
#[derive(Clone)]
pub struct RaftLogStore {
    shared: Arc<Shared>,
}

impl Debug for RaftLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftLogStore")
            .field("dir", &self.shared.wal.dir())
            .finish()
    }
}

impl RaftLogStore {
    /// Opens (creating if needed) the Raft log in `dir` and replays it.
    pub fn open(dir: &Path, options: WalOptions) -> Result<RaftLogStore, RaftLogError> {
        let (wal, _report) = Wal::open(dir, options)?;
        let mut index = LogIndex::default();
        for record in wal.iter(wal.first_lsn()) {
            let (lsn, payload) = record?;
            replay(&mut index, lsn, &payload)
                .map_err(|reason| RaftLogError::Invalid { lsn, reason })?;
        }
        index.committed_written = index.committed;
        Ok(RaftLogStore {
            shared: Arc::new(Shared {
                wal,
                index: Mutex::new(index),
                appended_bytes: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    /// The write-ahead log underneath (for statistics and tests).
    pub fn wal(&self) -> &Wal {
        &self.shared.wal
    }

    /// Bytes of entries appended since the log was opened.
    pub fn appended_bytes(&self) -> u64 {
        self.shared
            .appended_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Appends entries: readable when this returns; `done` runs on the log's
    /// writer thread once the `fdatasync` covering them returned (or
    /// failed), in log order. What openraft's `append` calls.
    pub fn append_with(
        &self,
        entries: Vec<Entry>,
        done: impl FnOnce(Result<(), WalError>) + Send + 'static,
    ) -> Result<(), WalError> {
        let records: Vec<Vec<u8>> = entries.iter().map(|e| record(TAG_ENTRY, e)).collect();
        let bytes: usize = records.iter().map(Vec::len).sum();
        self.shared
            .appended_bytes
            .fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
        let mut index = self.shared.index.lock();
        let submitted = self.shared.wal.submit_with(|batch| {
            if index.committed != index.committed_written {
                let committed = index.committed;
                if batch.push(&record(TAG_COMMITTED, &committed)).is_err() {
                    return None;
                }
            }
            let mut lsns = Vec::with_capacity(records.len());
            for bytes in &records {
                lsns.push(batch.next_lsn());
                if batch.push(bytes).is_err() {
                    // Entries are far below the record limit; refused whole,
                    // with the index untouched.
                    return None;
                }
            }
            for ((entry, bytes), lsn) in entries.into_iter().zip(&records).zip(lsns) {
                let log_id = *entry.get_log_id();
                index.push(Slot { lsn, log_id });
                index.cache_bytes += bytes.len();
                index.cache.insert(log_id.index, (lsn, bytes.len(), entry));
            }
            Some(Box::new(move |result| done(result.map(|_| ()))))
        });
        submitted?;
        index.committed_written = index.committed;
        let durable = self.shared.wal.next_lsn();
        index.evict(durable);
        Ok(())
    }

    /// Submits records built under the index lock and returns a future
    /// that resolves once they are durable.
    fn submit(
        &self,
        build: impl FnOnce(&mut LogIndex, &mut crate::storage::wal::RecordBatch),
    ) -> Result<tokio::sync::oneshot::Receiver<Result<(), WalError>>, WalError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut index = self.shared.index.lock();
        self.shared.wal.submit_with(|batch| {
            build(&mut index, batch);
            Some(Box::new(move |result| {
                let _ = tx.send(result.map(|_| ()));
            }))
        })?;
        Ok(rx)
    }

    /// Writes one small record and waits until it is durable.
    async fn write_durably(
        &self,
        record: Vec<u8>,
        update: impl FnOnce(&mut LogIndex),
    ) -> Result<(), WalError> {
        let done = self.submit(|index, batch| {
            if batch.push(&record).is_ok() {
                update(index);
            }
        })?;
        done.await.unwrap_or(Err(WalError::Closed))
    }
}

fn record(tag: u8, body: &impl serde::Serialize) -> Vec<u8> {
    let mut out = vec![tag];
    wire::encode_into(body, &mut out);
    out
}

/// Applies one durable record to the index, as at the time it was written.
fn replay(index: &mut LogIndex, lsn: Lsn, payload: &[u8]) -> Result<(), String> {
    let (&tag, body) = payload.split_first().ok_or("empty record")?;
    let bad = |e: bincode::Error| format!("undecodable body: {e}");
    match tag {
        TAG_ENTRY => {
            let entry: Entry = wire::decode(body).map_err(bad)?;
            index.push(Slot {
                lsn,
                log_id: *entry.get_log_id(),
            });
        }
        TAG_VOTE => index.vote = Some(wire::decode(body).map_err(bad)?),
        TAG_COMMITTED => index.committed = wire::decode(body).map_err(bad)?,
        TAG_TRUNCATE => index.truncate(wire::decode(body).map_err(bad)?),
        TAG_PURGE => index.purge(wire::decode(body).map_err(bad)?),
        _ => return Err(format!("unknown tag {tag}")),
    }
    Ok(())
}

fn io_error(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StorageError<NodeId> {
    StorageIOError::new(subject, verb, AnyError::new(&e)).into()
}

fn write_error(e: WalError) -> StorageError<NodeId> {
    io_error(ErrorSubject::Logs, ErrorVerb::Write, e)
}

fn read_error(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    io_error(ErrorSubject::Logs, ErrorVerb::Read, e)
}

impl RaftLogReader<TypeConfig> for RaftLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        // Under the lock: which entries, and those the cache holds. The log
        // is read outside it, so appends are not held up by a catch-up read.
        let (wanted, mut cached) = {
            let index = self.shared.index.lock();
            if start >= end {
                return Ok(Vec::new());
            }
            let wanted: Vec<Slot> = index.entries.range(start..end).map(|(_, s)| *s).collect();
            let cached: BTreeMap<u64, Entry> = index
                .cache
                .range(start..end)
                .map(|(&i, (_, _, entry))| (i, entry.clone()))
                .collect();
            (wanted, cached)
        };
        let mut out = Vec::with_capacity(wanted.len());
        let mut reader = None;
        for slot in wanted {
            if let Some(entry) = cached.remove(&slot.log_id.index) {
                out.push(entry);
                continue;
            }
            let reader = match &mut reader {
                Some(reader) => reader,
                None => reader.insert(
                    self.shared
                        .wal
                        .reader(slot.lsn, Lsn::MAX)
                        .map_err(read_error)?,
                ),
            };
            // Records between live entries (votes, markers, truncated
            // entries) are skipped by LSN.
            loop {
                let (lsn, payload) = reader
                    .next_record()
                    .map_err(read_error)?
                    .ok_or_else(|| read_error(WalError::Closed))?;
                if lsn < slot.lsn {
                    continue;
                }
                let entry: Entry = match payload.split_first() {
                    Some((&TAG_ENTRY, body)) => wire::decode(body).map_err(read_error)?,
                    _ => return Err(read_error(std::io::Error::other("not an entry record"))),
                };
                assert_eq!(
                    *entry.get_log_id(),
                    slot.log_id,
                    "the index names the record"
                );
                out.push(entry);
                break;
            }
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for RaftLogStore {
    type LogReader = RaftLogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let index = self.shared.index.lock();
        Ok(LogState {
            last_purged_log_id: index.last_purged,
            last_log_id: index.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let vote = *vote;
        self.write_durably(record(TAG_VOTE, &vote), |index| index.vote = Some(vote))
            .await
            .map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Write, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.shared.index.lock().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        // Need not be durable (openraft re-learns it); it goes out with the
        // next append, vote or purge.
        self.shared.index.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.shared.index.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        self.append_with(entries.into_iter().collect(), move |result| {
            callback.log_io_completed(result.map_err(std::io::Error::other));
        })
        .map_err(write_error)
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let since = log_id.index;
        self.write_durably(record(TAG_TRUNCATE, &since), |index| index.truncate(since))
            .await
            .map_err(write_error)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let done = self
            .submit(|index, batch| {
                index.purge(log_id);
                let committed = index.committed;
                let mut records = vec![
                    record(TAG_COMMITTED, &committed),
                    record(TAG_PURGE, &log_id),
                ];
                if let Some(vote) = index.vote {
                    records.insert(0, record(TAG_VOTE, &vote));
                }
                for bytes in &records {
                    if batch.push(bytes).is_err() {
                        return;
                    }
                }
                index.committed_written = committed;
            })
            .map_err(write_error)?;
        done.await
            .unwrap_or(Err(WalError::Closed))
            .map_err(write_error)?;
        // Everything before the first kept entry is now superseded by the
        // records just made durable.
        let keep_from = {
            let index = self.shared.index.lock();
            index
                .entries
                .first_key_value()
                .map(|(_, s)| s)
                .map_or(self.shared.wal.next_lsn().saturating_sub(1), |s| s.lsn)
        };
        self.shared
            .wal
            .truncate_prefix(keep_from)
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        Ok(())
    }
}
