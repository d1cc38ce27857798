//! An in-process network for tests: every node's Raft in one router, with
//! faults a test injects (one-way or symmetric partitions, a node taken
//! off the network, and from a seed: lost messages and replies, delays
//! that reorder messages, duplicated deliveries).
//!
//! An RPC to a node that is down or cut off fails as `Unreachable`, as a
//! refused TCP connection would; openraft retries with its backoff.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use parking_lot::Mutex;

use super::{NodeId, TypeConfig};
use crate::rng::SplitMix64;

#[derive(Default)]
struct Router {
    nodes: BTreeMap<NodeId, Raft<TypeConfig>>,
    /// (from, to) pairs whose messages are lost.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Messages lost at random, per thousand.
    drop_per_mille: u64,
    /// Messages delivered twice, per thousand.
    duplicate_per_mille: u64,
    /// Each message waits a random time up to this before delivery, so
    /// that concurrent messages arrive out of order.
    delay_max: std::time::Duration,
    rng: Option<SplitMix64>,
}

/// How one message travels.
struct Route {
    target: Raft<TypeConfig>,
    delay: std::time::Duration,
    duplicate: bool,
}

/// The in-process network of one test cluster.
#[derive(Clone, Default)]
pub struct LocalNetwork {
    router: Arc<Mutex<Router>>,
}

impl std::fmt::Debug for LocalNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let router = self.router.lock();
        f.debug_struct("LocalNetwork")
            .field("nodes", &router.nodes.keys().collect::<Vec<_>>())
            .field("cut", &router.cut)
            .finish()
    }
}

impl LocalNetwork {
    /// A network whose random drops come from `seed`.
    pub fn seeded(seed: u64) -> LocalNetwork {
        let network = LocalNetwork::default();
        network.router.lock().rng = Some(SplitMix64::new(seed));
        network
    }

    /// The connection factory node `from` gives openraft.
    pub fn factory(&self, from: NodeId) -> LocalFactory {
        LocalFactory {
            network: self.clone(),
            from,
        }
    }

    /// Puts a node on the network.
    pub fn attach(&self, id: NodeId, raft: Raft<TypeConfig>) {
        self.router.lock().nodes.insert(id, raft);
    }

    /// Takes a node off the network (it crashed or stopped).
    pub fn detach(&self, id: NodeId) {
        self.router.lock().nodes.remove(&id);
    }

    /// Loses every message from `from` to `to` (one way).
    pub fn cut(&self, from: NodeId, to: NodeId) {
        self.router.lock().cut.insert((from, to));
    }

    /// Isolates `id` from every other node, both ways.
    pub fn isolate(&self, id: NodeId, others: &[NodeId]) {
        for &other in others {
            self.cut(id, other);
            self.cut(other, id);
        }
    }

    /// Heals every partition.
    pub fn heal(&self) {
        self.router.lock().cut.clear();
    }

    /// Loses messages at random, `per_mille` of a thousand.
    pub fn set_drop_per_mille(&self, per_mille: u64) {
        self.router.lock().drop_per_mille = per_mille.min(1000);
    }

    /// Delivers messages twice at random, `per_mille` of a thousand.
    pub fn set_duplicate_per_mille(&self, per_mille: u64) {
        self.router.lock().duplicate_per_mille = per_mille.min(1000);
    }

    /// Delays each message by a random time up to `max`.
    pub fn set_delay_max(&self, max: std::time::Duration) {
        self.router.lock().delay_max = max;
    }

    /// How a message from `from` to `to` travels, if it gets through.
    fn route(&self, from: NodeId, to: NodeId) -> Option<Route> {
        let mut router = self.router.lock();
        let router = &mut *router;
        if router.cut.contains(&(from, to)) {
            return None;
        }
        let target = router.nodes.get(&to).cloned()?;
        let (mut delay, mut duplicate) = (std::time::Duration::ZERO, false);
        if let Some(rng) = router.rng.as_mut() {
            if router.drop_per_mille > 0 && rng.chance(router.drop_per_mille, 1000) {
                return None;
            }
            if router.duplicate_per_mille > 0 {
                duplicate = rng.chance(router.duplicate_per_mille, 1000);
            }
            let max = router.delay_max.as_micros() as u64;
            if max > 0 {
                delay = std::time::Duration::from_micros(rng.below(max + 1));
            }
        }
        Some(Route {
            target,
            delay,
            duplicate,
        })
    }
}

/// Connections of one node.
#[derive(Debug)]
pub struct LocalFactory {
    network: LocalNetwork,
    from: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for LocalFactory {
    type Network = LocalConnection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> LocalConnection {
        LocalConnection {
            network: self.network.clone(),
            from: self.from,
            to: target,
        }
    }
}

/// One node's connection to another.
#[derive(Debug)]
pub struct LocalConnection {
    network: LocalNetwork,
    from: NodeId,
    to: NodeId,
}

fn unreachable<E: std::error::Error>(from: NodeId, to: NodeId) -> RPCError<NodeId, BasicNode, E> {
    let error = std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        format!("node {to} is unreachable from node {from}"),
    );
    RPCError::Unreachable(Unreachable::new(&error))
}

impl LocalConnection {
    /// The target, or the error an RPC to an unreachable node gets. A
    /// reply can be lost as well: the call then fails after the target
    /// acted on it, as over a real network.
    async fn target(&self) -> Option<Route> {
        let route = self.network.route(self.from, self.to)?;
        if !route.delay.is_zero() {
            tokio::time::sleep(route.delay).await;
        }
        Some(route)
    }

    fn reply_lost<E: std::error::Error>(&self) -> Option<RPCError<NodeId, BasicNode, E>> {
        self.network.route(self.to, self.from).is_none().then(|| {
            let error = std::io::Error::other(format!("reply from node {} lost", self.to));
            RPCError::Network(NetworkError::new(&error))
        })
    }
}

impl RaftNetwork<TypeConfig> for LocalConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let route = self
            .target()
            .await
            .ok_or_else(|| unreachable(self.from, self.to))?;
        if route.duplicate {
            // Delivered twice: the first answer is lost, the second counts.
            let _ = route.target.append_entries(rpc.clone()).await;
        }
        let reply = route
            .target
            .append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))?;
        match self.reply_lost() {
            Some(error) => Err(error),
            None => Ok(reply),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let route = self
            .target()
            .await
            .ok_or_else(|| unreachable(self.from, self.to))?;
        if route.duplicate {
            // Delivered twice: the first answer is lost, the second counts.
            let _ = route.target.install_snapshot(rpc.clone()).await;
        }
        let reply = route
            .target
            .install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))?;
        match self.reply_lost() {
            Some(error) => Err(error),
            None => Ok(reply),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let route = self
            .target()
            .await
            .ok_or_else(|| unreachable(self.from, self.to))?;
        if route.duplicate {
            // Delivered twice: the first answer is lost, the second counts.
            let _ = route.target.vote(rpc.clone()).await;
        }
        let reply = route
            .target
            .vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))?;
        match self.reply_lost() {
            Some(error) => Err(error),
            None => Ok(reply),
        }
    }
}
