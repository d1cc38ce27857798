//! One replica of the replicated ledger: openraft on our log and state
//! machine, and the leader's write path that gathers concurrent client
//! requests into one entry.
//!
//! Gathering: openraft 0.9 flushes one append before it starts the next,
//! so an entry per request would cost a log `fdatasync` per request. The
//! write path is one task: it takes the first waiting request, then every
//! other request already queued (up to one batch's worth of events), and
//! proposes them as one entry. Up to [`WRITES_IN_FLIGHT_MAX`] entries are
//! proposed at once; while they are all in flight requests queue up, so
//! the groups grow with the load, as the embedded ledger's gathering and
//! the log's group commit do, with no timer.
//!
//! Replies: each request gets its own [`RequestReply`] from the entry's
//! reply, in order; a retry of a request the sessions already answered
//! gets the original reply (`duplicate`).

use std::path::Path;
use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::command::{ClientRequest, RaftCommand, RequestReply};
use super::log_storage::{RaftLogError, RaftLogStore};
use super::state_machine::LedgerStateMachine;
use super::{NodeId, TypeConfig};
use crate::ledger::BATCH_EVENTS_MAX;
use crate::storage::clock::{Clock, SystemClock};
use crate::storage::snapshot::SnapshotError;
use crate::storage::wal::WalOptions;

/// Entries the write path proposes at once.
pub const WRITES_IN_FLIGHT_MAX: usize = 8;
/// Requests waiting for the write path before callers wait to enqueue.
pub const WRITE_QUEUE_MAX: usize = 65_536;

/// openraft's configuration as syncpay sets it.
///
/// - Heartbeat every 100 ms, election timeout 400–800 ms: a dead leader is
///   replaced in about a second, and a loaded 2-core machine (an apply of
///   a full batch takes milliseconds, an `fdatasync` up to tens) does not
///   miss four heartbeats in a row and start needless elections.
/// - Snapshot chunks of 4 MiB with 10 s per chunk (0.9's defaults are
///   3 MiB and 200 ms): a chunk written on a busy disk can take longer
///   than 200 ms, and a transfer whose chunks time out restarts from the
///   beginning forever.
/// - A snapshot every 4,096 entries (entries carry up to a full batch
///   each), keeping 1,024 entries of log behind it for lagging followers.
pub fn default_config() -> Config {
    Config {
        cluster_name: "syncpay".to_string(),
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        install_snapshot_timeout: 10_000,
        snapshot_max_chunk_size: 4 << 20,
        max_payload_entries: 64,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(4096),
        max_in_snapshot_log_to_keep: 1024,
        ..Config::default()
    }
}

/// An error starting a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The Raft log cannot be opened.
    #[error(transparent)]
    Log(#[from] RaftLogError),
    /// The snapshot directory cannot be opened.
    #[error(transparent)]
    Snapshots(#[from] SnapshotError),
    /// openraft refused the configuration or failed to start.
    #[error("raft: {0}")]
    Raft(String),
}

/// An error of a write.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// This node is not the leader; write to the leader (if known).
    #[error("not the leader; the leader is {leader_id:?} at {leader_addr:?}")]
    NotLeader {
        /// The leader's id, if this node knows it.
        leader_id: Option<NodeId>,
        /// The leader's address, if this node knows it.
        leader_addr: Option<String>,
    },
    /// The batch has more events than one batch may hold.
    #[error("{count} events, more than the {max} a batch may hold")]
    TooManyEvents {
        /// Events given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The node stopped, or Raft failed; the request may or may not have
    /// been applied: retry it with the same session request.
    #[error("raft: {0}")]
    Raft(String),
}

struct Pending {
    request: ClientRequest,
    reply: oneshot::Sender<Result<RequestReply, WriteError>>,
}

/// One replica.
pub struct RaftNode {
    id: NodeId,
    raft: Raft<TypeConfig>,
    log: RaftLogStore,
    state_machine: LedgerStateMachine,
    writes: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode").field("id", &self.id).finish()
    }
}

impl RaftNode {
    /// Starts node `id` on the data directory `dir` (its Raft log in
    /// `dir/log`, its snapshots in `dir/snapshots`), talking to its peers
    /// through `network`. Must run inside a tokio runtime.
    pub async fn start<N>(
        id: NodeId,
        dir: &Path,
        config: Config,
        wal: WalOptions,
        network: N,
    ) -> Result<RaftNode, StartError>
    where
        N: openraft::network::RaftNetworkFactory<TypeConfig>,
    {
        let config = Arc::new(
            config
                .validate()
                .map_err(|e| StartError::Raft(e.to_string()))?,
        );
        let log = RaftLogStore::open(&dir.join("log"), wal)?;
        let state_machine = LedgerStateMachine::open(&dir.join("snapshots"))?;
        let raft = Raft::new(id, config, network, log.clone(), state_machine.clone())
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        let (writes, queue) = mpsc::channel(WRITE_QUEUE_MAX);
        tokio::spawn(write_path(raft.clone(), queue, SystemClock::shared()));
        Ok(RaftNode {
            id,
            raft,
            log,
            state_machine,
            writes,
        })
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// openraft's handle (membership changes, metrics, RPC entry points).
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// The Raft log (for statistics and tests).
    pub fn log(&self) -> &RaftLogStore {
        &self.log
    }

    /// Submits one request through the leader's gathering write path and
    /// waits for its reply (after the entry is committed and applied).
    pub async fn submit(&self, request: ClientRequest) -> Result<RequestReply, WriteError> {
        let count = request.batch.len();
        if count > BATCH_EVENTS_MAX {
            return Err(WriteError::TooManyEvents {
                count,
                max: BATCH_EVENTS_MAX,
            });
        }
        let (reply, answer) = oneshot::channel();
        self.writes
            .send(Pending { request, reply })
            .await
            .map_err(|_| WriteError::Raft("the node stopped".to_string()))?;
        answer
            .await
            .unwrap_or_else(|_| Err(WriteError::Raft("the node stopped".to_string())))
    }

    /// Looks accounts up after a linearizable read barrier (leader only).
    pub async fn lookup_accounts(
        &self,
        ids: &[u128],
    ) -> Result<Vec<crate::ledger::Account>, WriteError> {
        self.raft
            .ensure_linearizable()
            .await
            .map_err(|e| read_error(e, &self.raft))?;
        Ok(self
            .state_machine
            .read(|s| s.machine.state.lookup_accounts(ids)))
    }

    /// Looks accounts up in this replica's applied state, without a read
    /// barrier: possibly stale, served by any node.
    pub fn lookup_accounts_stale(&self, ids: &[u128]) -> Vec<crate::ledger::Account> {
        self.state_machine
            .read(|s| s.machine.state.lookup_accounts(ids))
    }

    /// Clients with a session in the replicated state.
    pub fn session_count(&self) -> usize {
        self.state_machine.read(|s| s.sessions.len())
    }

    /// A hash of the replicated state and the last applied log index, to
    /// compare replicas.
    pub fn state_hash(&self) -> (Option<u64>, u64) {
        self.state_machine
            .read(|s| (s.last_applied.map(|l| l.index), s.state_hash()))
    }

    /// Stops Raft. The log closes with its clean-close mark when the last
    /// handle to it is dropped.
    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }
}

fn read_error<E: std::fmt::Display>(
    error: RaftError<NodeId, E>,
    raft: &Raft<TypeConfig>,
) -> WriteError {
    let _ = raft;
    match error {
        RaftError::APIError(e) => {
            // `CheckIsLeaderError::ForwardToLeader` is the common case.
            WriteError::Raft(e.to_string())
        }
        RaftError::Fatal(e) => WriteError::Raft(e.to_string()),
    }
}

fn write_error(error: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> WriteError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => WriteError::NotLeader {
            leader_id: forward.leader_id,
            leader_addr: forward.leader_node.map(|n| n.addr),
        },
        RaftError::APIError(e) => WriteError::Raft(e.to_string()),
        RaftError::Fatal(e) => WriteError::Raft(e.to_string()),
    }
}

/// The gathering write path (see the module documentation).
async fn write_path(
    raft: Raft<TypeConfig>,
    mut queue: mpsc::Receiver<Pending>,
    clock: Arc<dyn Clock>,
) {
    let in_flight = Arc::new(Semaphore::new(WRITES_IN_FLIGHT_MAX));
    let mut carried: Option<Pending> = None;
    loop {
        let first = match carried.take() {
            Some(first) => first,
            None => match queue.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            return;
        };
        let mut weight = first.request.batch.timestamps_needed();
        let mut group = vec![first];
        while let Ok(next) = queue.try_recv() {
            let next_weight = next.request.batch.timestamps_needed();
            if weight + next_weight > BATCH_EVENTS_MAX as u64 {
                carried = Some(next);
                break;
            }
            weight += next_weight;
            group.push(next);
        }
        let raft = raft.clone();
        let now_ns = clock.realtime_ns();
        tokio::spawn(async move {
            let (requests, replies): (Vec<_>, Vec<_>) =
                group.into_iter().map(|p| (p.request, p.reply)).unzip();
            let result = raft.client_write(RaftCommand { now_ns, requests }).await;
            drop(permit);
            match result {
                Ok(response) => {
                    let answers = response.data.replies;
                    assert_eq!(answers.len(), replies.len(), "one reply per request");
                    for (reply, answer) in replies.into_iter().zip(answers) {
                        let _ = reply.send(Ok(answer));
                    }
                }
                Err(error) => {
                    let error = write_error(error);
                    for reply in replies {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
        });
    }
}
