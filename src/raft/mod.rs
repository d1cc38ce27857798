//! The Raft-replicated ledger (feature `replication`): openraft is the
//! consensus engine, our write-ahead log its log, our ledger its state
//! machine.
//!
//! - `command.rs`: what an entry carries (a group of client requests the
//!   leader gathered, with their sessions) and what applying it returns;
//! - `log_storage.rs`: openraft's log storage on a write-ahead log;
//! - `state_machine.rs`: the ledger, client sessions and snapshots;
//! - `node.rs`: one replica, and the leader's gathering write path;
//! - `local.rs`: an in-process network with injected faults, for tests;
//! - `sessions.rs`: exactly-once replies across retries and failover;
//! - `wire.rs`: the one bincode configuration of records and messages.
//!
//! Invariant: no consensus logic lives here: elections, replication and
//! commitment are openraft's; this module stores and applies what openraft
//! hands it, and proves it durable.

pub mod client;
pub mod command;
pub mod health;
pub mod local;
pub mod log_storage;
pub mod node;
mod sessions;
pub mod state_machine;
pub mod tcp;
mod wire;

#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod tests;

pub use command::{
    ClientRequest, RaftCommand, RaftReply, RequestReply, SessionError, SessionRequest,
};
pub use log_storage::{RaftLogError, RaftLogStore};
pub use node::{
    NodeOptions, NodeStatus, PeerStatus, RaftNode, ReadConsistency, ReadReply, ReadRequest,
    StartError, WriteError, WritePath, default_config,
};
pub use state_machine::LedgerStateMachine;

/// A node's id in the cluster.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The openraft type configuration of the replicated ledger.
    pub TypeConfig:
        D = RaftCommand,
        R = RaftReply,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A Raft log entry of the replicated ledger.
pub type Entry = openraft::Entry<TypeConfig>;
