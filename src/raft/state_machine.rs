//! openraft's state machine: the embedded ledger's deterministic apply,
//! client sessions, and snapshots in our snapshot files.
//!
//! In replicated mode the Raft log is the command log: the ledger lives in
//! memory and is rebuilt at open from the newest snapshot, then openraft
//! re-applies the committed entries after it, so no command is logged
//! twice.
//!
//! Timestamps: an entry carries the leader's clock (`now_ns`); applying it
//! stamps its `n` events `max(now_ns, last + n)` ending there, split over
//! its requests as the embedded store splits a gathered command. The rule
//! reads only the log, so every replica computes byte-identical state.
//!
//! Snapshot payload (inside a snapshot file of `storage/snapshot`, named by
//! the last included log index + 1, so an empty state is file 0):
//!
//! ```text
//! offset  size  field
//!      0     4  version (1)
//!      4     4  reserved, zero
//!      8     8  meta length m
//!     16     m  SnapshotMeta (bincode)
//!    ...     8  last timestamp
//!    ...     8  session bytes s
//!    ...     s  sessions (sessions.rs)
//!    ...   ...  the ledger image (ledger/state/image.rs)
//! ```
//!
//! Snapshots are built from an image taken under a read lock and written
//! on a blocking thread, so apply goes on meanwhile; a received snapshot
//! is copied, verified and renamed into place before the state is
//! replaced (`SnapshotDir::install_copy`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use parking_lot::RwLock;

use super::command::{RaftCommand, RaftReply, RequestReply};
use super::sessions::{Check, Sessions};
use super::wire;
use super::{Entry, NodeId, TypeConfig};
use crate::ledger::codec::LedgerCommand;
use crate::ledger::state::LedgerImage;
use crate::ledger::{LedgerMachine, LedgerState};
use crate::storage::io::{Io, RealIo};
use crate::storage::snapshot::{SnapshotDir, SnapshotError};
use crate::storage::store::DecodeError;

const PAYLOAD_VERSION: u32 = 1;
/// Snapshots kept: the newest and the one before it.
const SNAPSHOTS_KEPT: usize = 2;
/// Timestamps stay below 2^63 (the ledger's limit).
const TIMESTAMP_LIMIT: u64 = 1 << 63;

/// The replicated state: the ledger plus what Raft needs of it.
pub(crate) struct ReplicatedState {
    pub(crate) machine: LedgerMachine,
    pub(crate) last_applied: Option<LogId<NodeId>>,
    pub(crate) membership: StoredMembership<NodeId, openraft::BasicNode>,
    pub(crate) last_timestamp: u64,
    pub(crate) sessions: Sessions,
}

impl Default for ReplicatedState {
    fn default() -> Self {
        ReplicatedState {
            machine: LedgerMachine {
                state: LedgerState::new(),
            },
            last_applied: None,
            membership: StoredMembership::default(),
            last_timestamp: 0,
            sessions: Sessions::default(),
        }
    }
}

impl ReplicatedState {
    /// Applies one client command; one reply per request.
    fn apply_command(&mut self, command: RaftCommand) -> RaftReply {
        let needed = command.timestamps_needed();
        // Beyond the limit the ledger refuses nothing here: the leader
        // checks its clock before proposing; saturate so replay never fails.
        let last = command
            .now_ns
            .max(self.last_timestamp.saturating_add(needed))
            .min(TIMESTAMP_LIMIT - 1);
        self.sessions.expire(last);
        let sessions: Vec<_> = command.requests.iter().map(|r| r.session).collect();
        let ledger = LedgerCommand {
            batches: command.requests.into_iter().map(|r| r.batch).collect(),
        };
        let timestamped = ledger
            .into_timestamped(last)
            .expect("last is at least the timestamps needed");
        let mut replies = Vec::with_capacity(sessions.len());
        for ((batch, timestamp), session) in timestamped.zip(sessions) {
            let Some(session) = session else {
                let output = self.machine.apply_batch(batch, timestamp);
                replies.push(RequestReply {
                    output: Ok(output),
                    duplicate: false,
                });
                continue;
            };
            let reply = match self.sessions.check(session, timestamp) {
                Check::Duplicate(output) => RequestReply {
                    output: Ok(output),
                    duplicate: true,
                },
                Check::Forgotten(error) => RequestReply {
                    output: Err(error),
                    duplicate: true,
                },
                Check::New => {
                    let output = self.machine.apply_batch(batch, timestamp);
                    self.sessions.record(session, &output);
                    RequestReply {
                        output: Ok(output),
                        duplicate: false,
                    }
                }
            };
            replies.push(reply);
        }
        self.last_timestamp = last;
        RaftReply { replies }
    }

    fn apply_entry(&mut self, entry: Entry) -> RaftReply {
        self.last_applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => RaftReply::default(),
            EntryPayload::Membership(membership) => {
                self.membership = StoredMembership::new(Some(entry.log_id), membership);
                RaftReply::default()
            }
            EntryPayload::Normal(command) => self.apply_command(command),
        }
    }

    fn meta(&self, snapshot_id: String) -> SnapshotMeta<NodeId, openraft::BasicNode> {
        SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        }
    }

    /// A hash of everything replicated, for checkers comparing replicas:
    /// the ledger image, the sessions and the last timestamp.
    pub(crate) fn state_hash(&self) -> u64 {
        let mut hasher = crc32fast::Hasher::new();
        let mut sink = HashWriter(&mut hasher);
        LedgerState::write_image(&self.machine.state.image(), &mut sink)
            .expect("hashing cannot fail");
        let mut sessions = Vec::new();
        self.sessions.encode(&mut sessions);
        hasher.update(&sessions);
        let image_crc = hasher.finalize();
        (u64::from(image_crc) << 32) ^ self.last_timestamp
    }
}

struct HashWriter<'a>(&'a mut crc32fast::Hasher);

impl Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a snapshot needs, taken under the read lock.
struct SnapshotImage {
    meta: SnapshotMeta<NodeId, openraft::BasicNode>,
    last_timestamp: u64,
    sessions: Vec<u8>,
    ledger: LedgerImage,
}

fn write_payload(image: &SnapshotImage, out: &mut dyn Write) -> std::io::Result<()> {
    let meta = wire::encode(&image.meta);
    out.write_all(&PAYLOAD_VERSION.to_le_bytes())?;
    out.write_all(&[0; 4])?;
    out.write_all(&(meta.len() as u64).to_le_bytes())?;
    out.write_all(&meta)?;
    out.write_all(&image.last_timestamp.to_le_bytes())?;
    out.write_all(&(image.sessions.len() as u64).to_le_bytes())?;
    out.write_all(&image.sessions)?;
    LedgerState::write_image(&image.ledger, out)
}

/// Decodes a verified snapshot payload. Never panics.
fn read_payload(
    payload: &[u8],
) -> Result<(SnapshotMeta<NodeId, openraft::BasicNode>, ReplicatedState), DecodeError> {
    let error = |reason| DecodeError {
        what: "raft snapshot",
        reason,
    };
    let mut rest = payload;
    let mut take = |n: usize| -> Result<&[u8], DecodeError> {
        let (head, tail) = rest
            .split_at_checked(n)
            .ok_or(error("shorter than its header"))?;
        rest = tail;
        Ok(head)
    };
    let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    let head = take(8)?;
    if head[..4] != PAYLOAD_VERSION.to_le_bytes() || head[4..] != [0; 4] {
        return Err(error("unknown version"));
    }
    let meta_len = usize::try_from(u64_of(take(8)?)).map_err(|_| error("meta too long"))?;
    let meta: SnapshotMeta<NodeId, openraft::BasicNode> =
        wire::decode(take(meta_len)?).map_err(|_| error("undecodable meta"))?;
    let last_timestamp = u64_of(take(8)?);
    let sessions_len = usize::try_from(u64_of(take(8)?)).map_err(|_| error("sessions too long"))?;
    let sessions = Sessions::decode(take(sessions_len)?)?;
    let state =
        LedgerState::restore_for_replay(rest, 0).map_err(|_| error("invalid ledger image"))?;
    let replicated = ReplicatedState {
        machine: LedgerMachine { state },
        last_applied: meta.last_log_id,
        membership: meta.last_membership.clone(),
        last_timestamp,
        sessions,
    };
    Ok((meta, replicated))
}

struct Shared {
    state: RwLock<ReplicatedState>,
    snapshots: SnapshotDir,
    dir: PathBuf,
    /// The newest snapshot's meta and file key.
    current: parking_lot::Mutex<Option<(SnapshotMeta<NodeId, openraft::BasicNode>, u64)>>,
    /// Distinguishes snapshot ids and incoming files.
    counter: AtomicU64,
}

/// The ledger as openraft's [`RaftStateMachine`]. Clones share the state
/// (the snapshot builder is a clone).
#[derive(Clone)]
pub struct LedgerStateMachine {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LedgerStateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerStateMachine")
            .field("dir", &self.shared.dir)
            .finish()
    }
}

fn key_of(last: Option<LogId<NodeId>>) -> u64 {
    last.map_or(0, |l| l.index + 1)
}

fn snapshot_error(verb: ErrorVerb, e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::new(ErrorSubject::Snapshot(None), verb, AnyError::new(&e)).into()
}

impl LedgerStateMachine {
    /// Opens the state machine with its snapshots in `dir`: the state is
    /// the newest snapshot that verifies (an older one if the newest is
    /// damaged), or empty.
    pub fn open(dir: &Path) -> Result<LedgerStateMachine, SnapshotError> {
        Self::open_with(dir, Arc::new(RealIo))
    }

    /// [`open`](Self::open) with the given I/O (simulated in tests).
    pub fn open_with(dir: &Path, io: Arc<dyn Io>) -> Result<LedgerStateMachine, SnapshotError> {
        let snapshots = SnapshotDir::open(dir, io)?;
        let mut loaded = None;
        for key in snapshots.list()? {
            let Ok(snapshot) = snapshots.load(key) else {
                tracing::warn!(key, "raft snapshot does not verify; trying an older one");
                continue;
            };
            match read_payload(snapshot.payload()) {
                Ok((meta, state)) => {
                    loaded = Some((meta, key, state));
                    break;
                }
                Err(error) => tracing::warn!(key, %error, "raft snapshot does not decode"),
            }
        }
        let (current, state) = match loaded {
            Some((meta, key, state)) => (Some((meta, key)), state),
            None => (None, ReplicatedState::default()),
        };
        Ok(LedgerStateMachine {
            shared: Arc::new(Shared {
                state: RwLock::new(state),
                snapshots,
                dir: dir.to_path_buf(),
                current: parking_lot::Mutex::new(current),
                counter: AtomicU64::new(0),
            }),
        })
    }

    /// Reads the replicated state.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&ReplicatedState) -> R) -> R {
        f(&self.shared.state.read())
    }

    async fn open_snapshot(
        &self,
        meta: SnapshotMeta<NodeId, openraft::BasicNode>,
        key: u64,
    ) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let path = self.shared.snapshots.path(key);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }

    fn retain(&self, newest: u64) {
        let keys = match self.shared.snapshots.list() {
            Ok(keys) => keys,
            Err(error) => {
                tracing::warn!(%error, "cannot list raft snapshots");
                return;
            }
        };
        let mut keep: Vec<u64> = keys.into_iter().take(SNAPSHOTS_KEPT).collect();
        if !keep.contains(&newest) {
            keep.push(newest);
        }
        if let Err(error) = self.shared.snapshots.retain(&keep) {
            tracing::warn!(%error, "cannot remove old raft snapshots");
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for LedgerStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let image = {
            let state = self.shared.state.read();
            let n = self.shared.counter.fetch_add(1, Ordering::Relaxed);
            let last = state.last_applied;
            let id = format!(
                "{}-{}-{n}",
                last.map_or(0, |l| l.leader_id.term),
                key_of(last)
            );
            let mut sessions = Vec::new();
            state.sessions.encode(&mut sessions);
            SnapshotImage {
                meta: state.meta(id),
                last_timestamp: state.last_timestamp,
                sessions,
                ledger: state.machine.state.image(),
            }
        };
        let key = key_of(image.meta.last_log_id);
        let snapshots = self.shared.snapshots.clone();
        let image = tokio::task::spawn_blocking(move || {
            snapshots
                .write(key, |out| write_payload(&image, out))
                .map(|_| image)
        })
        .await
        .map_err(|e| snapshot_error(ErrorVerb::Write, e))?
        .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
        *self.shared.current.lock() = Some((image.meta.clone(), key));
        self.retain(key);
        self.open_snapshot(image.meta, key).await
    }
}

impl RaftStateMachine<TypeConfig> for LedgerStateMachine {
    type SnapshotBuilder = LedgerStateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<
        (
            Option<LogId<NodeId>>,
            StoredMembership<NodeId, openraft::BasicNode>,
        ),
        StorageError<NodeId>,
    > {
        let state = self.shared.state.read();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<RaftReply>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut state = self.shared.state.write();
        Ok(entries
            .into_iter()
            .map(|entry| state.apply_entry(entry))
            .collect())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<tokio::fs::File>, StorageError<NodeId>> {
        let n = self.shared.counter.fetch_add(1, Ordering::Relaxed);
        let path = self.shared.dir.join(format!("incoming-{n}.part"));
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError<NodeId>> {
        use tokio::io::AsyncSeekExt;
        let mut file = *snapshot;
        file.rewind()
            .await
            .map_err(|e| snapshot_error(ErrorVerb::Read, e))?;
        let mut file = file.into_std().await;
        let key = key_of(meta.last_log_id);
        let snapshots = self.shared.snapshots.clone();
        let dir = self.shared.dir.clone();
        let (file_meta, state) = tokio::task::spawn_blocking(move || {
            let snapshot = snapshots
                .install_copy(key, &mut file)
                .map_err(std::io::Error::other)?;
            remove_incoming(&dir);
            read_payload(snapshot.payload()).map_err(std::io::Error::other)
        })
        .await
        .map_err(|e| snapshot_error(ErrorVerb::Write, e))?
        .map_err(|e| snapshot_error(ErrorVerb::Write, e))?;
        if file_meta.last_log_id != meta.last_log_id
            || file_meta.last_membership != meta.last_membership
        {
            return Err(snapshot_error(
                ErrorVerb::Read,
                std::io::Error::other("snapshot file does not match its meta"),
            ));
        }
        *self.shared.state.write() = state;
        *self.shared.current.lock() = Some((meta.clone(), key));
        self.retain(key);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let current = self.shared.current.lock().clone();
        match current {
            Some((meta, key)) => Ok(Some(self.open_snapshot(meta, key).await?)),
            None => Ok(None),
        }
    }
}

/// Removes received snapshot files once one is installed (and leftovers
/// of interrupted transfers).
fn remove_incoming(dir: &Path) {
    let Ok(names) = std::fs::read_dir(dir) else {
        return;
    };
    for name in names.flatten() {
        let path = name.path();
        if path.extension().is_some_and(|e| e == "part") {
            let _ = std::fs::remove_file(&path);
        }
    }
}
