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

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use openraft::error::{
    CheckIsLeaderError, ClientWriteError, ForwardToLeader, InitializeError, RaftError,
};
use openraft::{BasicNode, ChangeMembers, Config, Raft, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::command::{ClientRequest, RaftCommand, RequestReply};
use super::health::{Monitored, PeerHealth};
use super::log_storage::{RaftLogError, RaftLogStore};
use super::state_machine::LedgerStateMachine;
use super::{NodeId, TypeConfig};
use crate::ledger::{
    Account, AccountBalance, AccountFilter, BATCH_EVENTS_MAX, QueryFilter, Transfer,
};
use crate::storage::clock::{Clock, SystemClock};
use crate::storage::snapshot::SnapshotError;
use crate::storage::wal::WalOptions;

/// Entries the write path proposes at once. Measured with `syncpay
/// benchmark --replicas 3 --transfer-count 2000000 --clients 4`
/// (`--replica-writes-in-flight N`): 64 single-transfer clients got
/// 20,296 and 23,278 transfers/s with 1 in flight, 24,297 with 2 and
/// 12,508 with 8 (more in flight makes smaller groups, and openraft
/// writes them one after another anyway); 4 clients of full batches got
/// 536–683 K/s with 1, 721 K/s with 2 and 588 K/s with 8.
pub const WRITES_IN_FLIGHT_MAX: usize = 2;
/// Log bytes appended after which a node snapshots (as the embedded
/// ledger checkpoints after 1 GiB of log).
pub const SNAPSHOT_LOG_BYTES: u64 = 1 << 30;
/// Entries after which a node snapshots whatever their size: a backstop
/// that, unlike the byte count, survives restarts (openraft counts from
/// the last snapshot's index).
pub const SNAPSHOT_ENTRIES_MAX: u64 = 1 << 20;
/// Requests waiting for the write path before callers wait to enqueue.
pub const WRITE_QUEUE_MAX: usize = 65_536;

/// openraft's configuration as syncpay sets it.
///
/// - Heartbeat every 50 ms, election timeout 150–300 ms. A follower of
///   openraft 0.9 campaigns only after the leader lease (the maximum
///   election timeout) *plus* an election timeout have passed since it
///   last heard the leader, and one that learns its log is behind a
///   peer's waits twice the maximum more; so failover takes two to four
///   times the maximum election timeout. Measured with
///   `syncpay benchmark --replicas 3 --failovers 20` on this 2-core
///   machine: 400–800 ms gave a new leader p50 3.2 s, 200–400 ms p50
///   1.6 s / p99 2.6 s, 150–300 ms p50 1.2 s / p99 1.9 s. Shorter risks
///   needless elections when a loaded machine misses heartbeats.
/// - Snapshot chunks of 4 MiB with 10 s per chunk (0.9's defaults are
///   3 MiB and 200 ms): a chunk written on a busy disk can take longer
///   than 200 ms, and a transfer whose chunks time out restarts from the
///   beginning forever.
/// - At most 8 entries per append-entries RPC: openraft 0.9 times an
///   append-entries RPC out after one heartbeat interval, and an entry
///   carries up to a full batch (about 1 MiB); 64 of them (0.9's default
///   is 300) would not reach a follower and be written there within a
///   heartbeat on this machine, and every timeout resends them.
/// - A snapshot after 1 GiB of log (a task of the node's; see
///   `snapshot_trigger`) or 1,048,576 entries, keeping 1,024 entries of
///   log behind it for lagging followers. openraft's count of 4,096
///   entries snapshotted a large ledger every few MiB of small entries.
pub fn default_config() -> Config {
    Config {
        cluster_name: "syncpay".to_string(),
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        install_snapshot_timeout: 10_000,
        snapshot_max_chunk_size: 4 << 20,
        max_payload_entries: 8,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(SNAPSHOT_ENTRIES_MAX),
        max_in_snapshot_log_to_keep: 1024,
        ..Config::default()
    }
}

/// How a node runs: Raft's timing and snapshots, and its log's segments.
///
/// The defaults: a heartbeat every 50 ms and an election timeout of
/// 150–300 ms, so a dead leader is replaced in one to two seconds (openraft
/// 0.9 adds a leader lease and, for a follower whose log is behind, a
/// further wait); a snapshot after 1 GiB of log or 1,048,576 entries,
/// with 1,024 entries of log kept behind it for followers that lag a
/// little. Snapshot chunks are 4 MiB with 10 s each (openraft's
/// 200 ms would restart a large transfer forever on a busy disk).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeOptions {
    /// The leader's heartbeat interval.
    pub heartbeat_interval: std::time::Duration,
    /// A follower that hears no leader for a random time in this range
    /// starts an election. Must exceed the heartbeat interval.
    pub election_timeout: std::ops::Range<std::time::Duration>,
    /// Log bytes a node appends before it snapshots.
    pub snapshot_log_bytes: u64,
    /// Entries after which a node snapshots whatever their size.
    pub snapshot_every_entries: u64,
    /// Log entries kept behind a snapshot, for followers that lag a little.
    pub log_kept_behind_snapshot: u64,
    /// Size of one log segment file.
    pub log_segment_size_bytes: u64,
    /// How the leader turns client requests into entries.
    pub write_path: WritePath,
    /// A follower relays a client's write to the leader and returns its
    /// answer, instead of answering `NotLeader` (default: off; the client
    /// library follows redirects either way).
    pub forward_writes: bool,
}

/// How the leader turns client requests into entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WritePath {
    /// Entries proposed at once (at least 1).
    pub in_flight_max: usize,
    /// Gather the requests queued behind the first into its entry (off:
    /// one entry per request, for measuring what gathering buys).
    pub gather: bool,
}

impl Default for WritePath {
    fn default() -> Self {
        WritePath {
            in_flight_max: WRITES_IN_FLIGHT_MAX,
            gather: true,
        }
    }
}

impl Default for NodeOptions {
    fn default() -> Self {
        let config = default_config();
        NodeOptions {
            heartbeat_interval: std::time::Duration::from_millis(config.heartbeat_interval),
            election_timeout: std::time::Duration::from_millis(config.election_timeout_min)
                ..std::time::Duration::from_millis(config.election_timeout_max),
            snapshot_log_bytes: SNAPSHOT_LOG_BYTES,
            snapshot_every_entries: SNAPSHOT_ENTRIES_MAX,
            log_kept_behind_snapshot: config.max_in_snapshot_log_to_keep,
            log_segment_size_bytes: WalOptions::default().segment_size_bytes,
            write_path: WritePath::default(),
            forward_writes: false,
        }
    }
}

impl NodeOptions {
    /// openraft's configuration for these options.
    pub(crate) fn raft_config(&self) -> Config {
        Config {
            heartbeat_interval: self.heartbeat_interval.as_millis() as u64,
            election_timeout_min: self.election_timeout.start.as_millis() as u64,
            election_timeout_max: self.election_timeout.end.as_millis() as u64,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every_entries),
            max_in_snapshot_log_to_keep: self.log_kept_behind_snapshot,
            ..default_config()
        }
    }

    /// The log's options for these options.
    pub(crate) fn wal_options(&self) -> WalOptions {
        WalOptions {
            segment_size_bytes: self.log_segment_size_bytes,
            ..WalOptions::default()
        }
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
    /// The listening socket cannot be bound.
    #[error("listen: {0}")]
    Listen(#[source] std::io::Error),
}

/// An error of a write, a read or a membership change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
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
    /// The request is invalid (a membership change naming unknown nodes,
    /// a cluster initialized twice); retrying it will not help.
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// A read of the replicated ledger: the embedded ledger's lookups and
/// queries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadRequest {
    /// `lookup_accounts`.
    LookupAccounts(Vec<u128>),
    /// `lookup_transfers`.
    LookupTransfers(Vec<u128>),
    /// `get_account_transfers`.
    AccountTransfers(AccountFilter),
    /// `get_account_balances`.
    AccountBalances(AccountFilter),
    /// `query_accounts`.
    QueryAccounts(QueryFilter),
    /// `query_transfers`.
    QueryTransfers(QueryFilter),
}

/// What a read returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadReply {
    /// Accounts.
    Accounts(Vec<Account>),
    /// Transfers.
    Transfers(Vec<Transfer>),
    /// Balance history rows.
    Balances(Vec<AccountBalance>),
}

impl ReadReply {
    /// The accounts, if the reply holds accounts.
    pub fn into_accounts(self) -> Option<Vec<Account>> {
        match self {
            ReadReply::Accounts(accounts) => Some(accounts),
            _ => None,
        }
    }

    /// The transfers, if the reply holds transfers.
    pub fn into_transfers(self) -> Option<Vec<Transfer>> {
        match self {
            ReadReply::Transfers(transfers) => Some(transfers),
            _ => None,
        }
    }
}

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadConsistency {
    /// Linearizable: served by the leader after it confirms with a quorum
    /// that it still leads (openraft's `ensure_linearizable`), so it sees
    /// every write acknowledged before it started. The default.
    Linearizable,
    /// This replica's applied state, without a barrier: any node serves
    /// it, and it may miss recent writes.
    Stale,
}

/// One node's view of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// This node's id.
    pub id: NodeId,
    /// Leader, Follower, Candidate, Learner or Shutdown.
    pub state: String,
    /// False when Raft stopped on a fatal error (a failed log write, say).
    pub running: bool,
    /// The current term.
    pub term: u64,
    /// The leader this node knows of.
    pub leader_id: Option<NodeId>,
    /// The leader's address.
    pub leader_addr: Option<String>,
    /// The last log index.
    pub last_log_index: Option<u64>,
    /// The last applied index.
    pub last_applied_index: Option<u64>,
    /// The index the newest snapshot covers.
    pub snapshot_index: Option<u64>,
    /// The last purged index.
    pub purged_index: Option<u64>,
    /// On the leader: milliseconds since a quorum last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
    /// Every member and learner, with what this node knows of it.
    pub peers: Vec<PeerStatus>,
    /// Clients with a session.
    pub sessions: usize,
    /// A hash of the applied state (equal on replicas at the same index).
    pub state_hash: u64,
}

/// What one node knows of one peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// The peer's id.
    pub id: NodeId,
    /// Its address.
    pub addr: String,
    /// A voter (false: a learner).
    pub voter: bool,
    /// On the leader: the last log index known replicated to the peer.
    pub matched_index: Option<u64>,
    /// On the leader: entries the peer is behind the leader's log.
    pub lag: Option<u64>,
    /// Milliseconds since an RPC to it last got an answer (this node's
    /// RPCs only: a follower sends none until it campaigns).
    pub millis_since_contact: Option<u64>,
    /// RPCs in a row that got no answer.
    pub consecutive_failures: u64,
    /// The last RPC failure, while failing.
    pub last_error: Option<String>,
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
    health: Arc<PeerHealth>,
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
        RaftNode::start_with(
            id,
            dir,
            config,
            wal,
            WritePath::default(),
            SNAPSHOT_LOG_BYTES,
            network,
        )
        .await
    }

    /// [`start`](Self::start) with an explicit write path and snapshot
    /// size trigger.
    pub async fn start_with<N>(
        id: NodeId,
        dir: &Path,
        config: Config,
        wal: WalOptions,
        write: WritePath,
        snapshot_log_bytes: u64,
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
        // The snapshots live on the same io as the log (a simulated disk
        // in tests).
        let io = Arc::clone(&wal.io);
        let log = RaftLogStore::open(&dir.join("log"), wal)?;
        let state_machine = LedgerStateMachine::open_with(&dir.join("snapshots"), io)?;
        let health = Arc::new(PeerHealth::default());
        let network = Monitored::new(network, Arc::clone(&health));
        let raft = Raft::new(id, config, network, log.clone(), state_machine.clone())
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        let (writes, queue) = mpsc::channel(WRITE_QUEUE_MAX);
        tokio::spawn(write_path(
            raft.clone(),
            queue,
            SystemClock::shared(),
            write,
        ));
        tokio::spawn(snapshot_trigger(
            raft.clone(),
            log.clone(),
            snapshot_log_bytes,
        ));
        Ok(RaftNode {
            id,
            raft,
            log,
            state_machine,
            writes,
            health,
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

    /// Reads the replicated ledger. A linearizable read on a node that is
    /// not the leader fails with [`WriteError::NotLeader`].
    pub async fn read(
        &self,
        request: &ReadRequest,
        consistency: ReadConsistency,
    ) -> Result<ReadReply, WriteError> {
        let ids = match request {
            ReadRequest::LookupAccounts(ids) | ReadRequest::LookupTransfers(ids) => ids.len(),
            _ => 0,
        };
        if ids > BATCH_EVENTS_MAX {
            return Err(WriteError::TooManyEvents {
                count: ids,
                max: BATCH_EVENTS_MAX,
            });
        }
        if consistency == ReadConsistency::Linearizable {
            self.raft.ensure_linearizable().await.map_err(read_error)?;
        }
        Ok(self.state_machine.read(|s| {
            let state = &s.machine.state;
            match request {
                ReadRequest::LookupAccounts(ids) => ReadReply::Accounts(state.lookup_accounts(ids)),
                ReadRequest::LookupTransfers(ids) => {
                    ReadReply::Transfers(state.lookup_transfers(ids))
                }
                ReadRequest::AccountTransfers(filter) => {
                    ReadReply::Transfers(state.get_account_transfers(filter))
                }
                ReadRequest::AccountBalances(filter) => {
                    ReadReply::Balances(state.get_account_balances(filter))
                }
                ReadRequest::QueryAccounts(filter) => {
                    ReadReply::Accounts(state.query_accounts(filter))
                }
                ReadRequest::QueryTransfers(filter) => {
                    ReadReply::Transfers(state.query_transfers(filter))
                }
            }
        }))
    }

    /// Looks accounts up after a linearizable read barrier (leader only).
    pub async fn lookup_accounts(&self, ids: &[u128]) -> Result<Vec<Account>, WriteError> {
        self.read(
            &ReadRequest::LookupAccounts(ids.to_vec()),
            ReadConsistency::Linearizable,
        )
        .await?
        .into_accounts()
        .ok_or_else(|| WriteError::Raft("a lookup returned no accounts".to_string()))
    }

    /// Looks accounts up in this replica's applied state, without a read
    /// barrier: possibly stale, served by any node.
    pub fn lookup_accounts_stale(&self, ids: &[u128]) -> Vec<Account> {
        self.state_machine
            .read(|s| s.machine.state.lookup_accounts(ids))
    }

    /// Makes this node the first member of a new cluster of `members` (id
    /// and address of each, this node among them). Run once, on one node,
    /// when every member's log is empty.
    pub async fn initialize(&self, members: BTreeMap<NodeId, String>) -> Result<(), WriteError> {
        let members: BTreeMap<NodeId, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode { addr }))
            .collect();
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                Err(WriteError::Invalid(e.to_string()))
            }
            Err(RaftError::APIError(InitializeError::NotInMembers(e))) => {
                Err(WriteError::Invalid(e.to_string()))
            }
            Err(RaftError::Fatal(e)) => Err(WriteError::Raft(e.to_string())),
        }
    }

    /// Adds `id` at `addr` as a learner (leader only) and waits until it
    /// has caught up with the log (by log or by snapshot).
    pub async fn add_learner(&self, id: NodeId, addr: String) -> Result<(), WriteError> {
        self.raft
            .add_learner(id, BasicNode { addr }, true)
            .await
            .map(|_| ())
            .map_err(write_error)
    }

    /// Makes `voters` the voting members (leader only): promotes learners
    /// among them and demotes to learner every voter not among them. Use
    /// [`remove_nodes`](Self::remove_nodes) to drop nodes entirely.
    pub async fn change_membership(&self, voters: BTreeSet<NodeId>) -> Result<(), WriteError> {
        self.raft
            .change_membership(voters, true)
            .await
            .map(|_| ())
            .map_err(write_error)
    }

    /// Removes `nodes` from the cluster, voters and learners alike (leader
    /// only): voters among them are removed from the voters and the nodes
    /// (a joint change), then learners among them from the nodes.
    pub async fn remove_nodes(&self, nodes: BTreeSet<NodeId>) -> Result<(), WriteError> {
        let membership = self.raft.metrics().borrow().membership_config.clone();
        let voters: BTreeSet<NodeId> = membership.membership().voter_ids().collect();
        if voters.iter().all(|id| nodes.contains(id)) {
            return Err(WriteError::Invalid(
                "removing every voter would leave no cluster".to_string(),
            ));
        }
        let removed_voters: BTreeSet<NodeId> = nodes.intersection(&voters).copied().collect();
        if !removed_voters.is_empty() {
            self.raft
                .change_membership(ChangeMembers::RemoveVoters(removed_voters), false)
                .await
                .map_err(write_error)?;
        }
        let membership = self.raft.metrics().borrow().membership_config.clone();
        let learners: BTreeSet<NodeId> = membership
            .membership()
            .learner_ids()
            .filter(|id| nodes.contains(id))
            .collect();
        if !learners.is_empty() {
            self.raft
                .change_membership(ChangeMembers::RemoveNodes(learners), false)
                .await
                .map_err(write_error)?;
        }
        Ok(())
    }

    /// This node's view of itself and its peers.
    pub fn status(&self) -> NodeStatus {
        let metrics = self.raft.metrics().borrow().clone();
        let contacts = self.health.snapshot();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let leader_addr = metrics
            .current_leader
            .and_then(|leader| membership.get_node(&leader).map(|n| n.addr.clone()));
        let last_log = metrics.last_log_index;
        let peers = membership
            .nodes()
            .map(|(&id, node)| {
                let matched = metrics
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&id))
                    .map(|m| m.map(|l| l.index));
                let contact = contacts.get(&id);
                PeerStatus {
                    id,
                    addr: node.addr.clone(),
                    voter: voters.contains(&id),
                    matched_index: matched.flatten(),
                    lag: matched.map(|m| last_log.unwrap_or(0).saturating_sub(m.unwrap_or(0))),
                    millis_since_contact: contact
                        .and_then(|c| c.since_contact())
                        .map(|d| d.as_millis() as u64),
                    consecutive_failures: contact.map_or(0, |c| c.consecutive_failures),
                    last_error: contact.and_then(|c| c.last_error.clone()),
                }
            })
            .collect();
        let (sessions, state_hash) = self
            .state_machine
            .read(|s| (s.sessions.len(), s.state_hash()));
        NodeStatus {
            id: self.id,
            state: match metrics.state {
                ServerState::Leader => "Leader",
                ServerState::Follower => "Follower",
                ServerState::Candidate => "Candidate",
                ServerState::Learner => "Learner",
                ServerState::Shutdown => "Shutdown",
            }
            .to_string(),
            running: metrics.running_state.is_ok(),
            term: metrics.current_term,
            leader_id: metrics.current_leader,
            leader_addr,
            last_log_index: last_log,
            last_applied_index: metrics.last_applied.map(|l| l.index),
            snapshot_index: metrics.snapshot.map(|l| l.index),
            purged_index: metrics.purged.map(|l| l.index),
            millis_since_quorum_ack: metrics.millis_since_quorum_ack,
            peers,
            sessions,
            state_hash,
        }
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

fn not_leader(forward: ForwardToLeader<NodeId, BasicNode>) -> WriteError {
    WriteError::NotLeader {
        leader_id: forward.leader_id,
        leader_addr: forward.leader_node.map(|n| n.addr),
    }
}

fn read_error(error: RaftError<NodeId, CheckIsLeaderError<NodeId, BasicNode>>) -> WriteError {
    match error {
        RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward)) => not_leader(forward),
        RaftError::APIError(e) => WriteError::Raft(e.to_string()),
        RaftError::Fatal(e) => WriteError::Raft(e.to_string()),
    }
}

fn write_error(error: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> WriteError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => not_leader(forward),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            WriteError::Invalid(e.to_string())
        }
        RaftError::Fatal(e) => WriteError::Raft(e.to_string()),
    }
}

/// Snapshots this node after every `every` bytes of log appended. openraft
/// 0.9's own policy counts entries, and an entry holds one request or a
/// full batch: 4,096 small entries are a few MiB of log, and a snapshot
/// of a large ledger after each would write more than the log itself.
async fn snapshot_trigger(raft: Raft<TypeConfig>, log: RaftLogStore, every: u64) {
    let mut mark = 0u64;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    // The metrics channel closes when Raft stops: then this task ends and
    // lets go of the log (whose lock a restart needs).
    let mut metrics = raft.metrics();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = metrics.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        let appended = log.appended_bytes();
        if appended.saturating_sub(mark) >= every.max(1) {
            if raft.trigger().snapshot().await.is_err() {
                return; // Raft stopped.
            }
            mark = appended;
        }
    }
}

/// The gathering write path (see the module documentation).
async fn write_path(
    raft: Raft<TypeConfig>,
    mut queue: mpsc::Receiver<Pending>,
    clock: Arc<dyn Clock>,
    options: WritePath,
) {
    let in_flight = Arc::new(Semaphore::new(options.in_flight_max.max(1)));
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
        while options.gather
            && let Ok(next) = queue.try_recv()
        {
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
                Ok(response) if response.data.replies.len() == replies.len() => {
                    for (reply, answer) in replies.into_iter().zip(response.data.replies) {
                        let _ = reply.send(Ok(answer));
                    }
                }
                Ok(response) => {
                    // The state machine answers every request of an entry;
                    // a mismatch is a defect, reported, never a panic.
                    let error = WriteError::Raft(format!(
                        "{} replies to an entry of {} requests",
                        response.data.replies.len(),
                        replies.len()
                    ));
                    tracing::error!(%error, "raft reply");
                    for reply in replies {
                        let _ = reply.send(Err(error.clone()));
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
