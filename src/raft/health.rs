//! A node's view of its peers' health: every RPC it sends, through any
//! transport, is recorded (last contact, last error, consecutive failures),
//! and [`RaftNode::status`](super::RaftNode::status) joins that with
//! openraft's replication progress into a per-peer report.
//!
//! A peer that answers with an error (a higher term, a conflict) was
//! reached: only an RPC that got no answer (unreachable, timeout, lost
//! connection) counts as a failure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, RPCError, RaftError};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::Mutex;

use super::{NodeId, TypeConfig};

/// What one node knows of its RPCs to one peer.
#[derive(Clone, Debug, Default)]
pub struct PeerContact {
    /// When an RPC to the peer last got an answer.
    pub last_contact: Option<Instant>,
    /// The last RPC failure, if the last RPC failed.
    pub last_error: Option<String>,
    /// RPCs in a row that got no answer.
    pub consecutive_failures: u64,
    /// RPCs answered.
    pub answered: u64,
    /// RPCs that got no answer.
    pub failed: u64,
}

impl PeerContact {
    /// Time since the last answer, if there was one.
    pub fn since_contact(&self) -> Option<Duration> {
        self.last_contact.map(|at| at.elapsed())
    }
}

/// The RPC outcomes of one node, per peer.
#[derive(Debug, Default)]
pub struct PeerHealth {
    peers: Mutex<BTreeMap<NodeId, PeerContact>>,
}

impl PeerHealth {
    /// A copy of every peer's record.
    pub fn snapshot(&self) -> BTreeMap<NodeId, PeerContact> {
        self.peers.lock().clone()
    }

    fn record<T, E: std::error::Error>(
        &self,
        peer: NodeId,
        result: &Result<T, RPCError<NodeId, BasicNode, E>>,
    ) {
        let mut peers = self.peers.lock();
        let contact = peers.entry(peer).or_default();
        match result {
            Ok(_) | Err(RPCError::RemoteError(_)) => {
                contact.last_contact = Some(Instant::now());
                contact.last_error = None;
                contact.consecutive_failures = 0;
                contact.answered += 1;
            }
            Err(error) => {
                contact.last_error = Some(error.to_string());
                contact.consecutive_failures += 1;
                contact.failed += 1;
            }
        }
    }
}

/// A network factory whose connections record every RPC's outcome.
#[derive(Debug)]
pub struct Monitored<N> {
    inner: N,
    health: Arc<PeerHealth>,
}

impl<N> Monitored<N> {
    /// Wraps `inner`, recording into `health`.
    pub fn new(inner: N, health: Arc<PeerHealth>) -> Monitored<N> {
        Monitored { inner, health }
    }
}

impl<N: RaftNetworkFactory<TypeConfig>> RaftNetworkFactory<TypeConfig> for Monitored<N> {
    type Network = MonitoredConnection<N::Network>;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        MonitoredConnection {
            inner: self.inner.new_client(target, node).await,
            target,
            health: Arc::clone(&self.health),
        }
    }
}

/// A connection that records its RPCs' outcomes.
#[derive(Debug)]
pub struct MonitoredConnection<C> {
    inner: C,
    target: NodeId,
    health: Arc<PeerHealth>,
}

impl<C: RaftNetwork<TypeConfig>> RaftNetwork<TypeConfig> for MonitoredConnection<C> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let result = self.inner.append_entries(rpc, option).await;
        self.health.record(self.target, &result);
        result
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let result = self.inner.install_snapshot(rpc, option).await;
        self.health.record(self.target, &result);
        result
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let result = self.inner.vote(rpc, option).await;
        self.health.record(self.target, &result);
        result
    }

    fn backoff(&self) -> Backoff {
        self.inner.backoff()
    }
}
