//! syncpay: an embedded, persistent payment ledger engine.
//!
//! A host program opens a [`Ledger`] in a directory and submits batches of
//! accounts and transfers (TigerBeetle 0.17 semantics); when a call
//! returns, its batch is durable. Underneath is a storage core of its own
//! (a write-ahead log with group commit, snapshot files and recovery by
//! replay); the ledger and its exact idempotency index are a deterministic
//! state machine on it.
//!
//! ```
//! use syncpay::{Account, CreateAccountStatus, Ledger, LedgerOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let ledger = Ledger::create(dir.path(), LedgerOptions::default())?;
//! let results = ledger.create_accounts(&[Account { id: 1, ledger: 1, code: 1, ..Account::default() }])?;
//! assert_eq!(results[0].status, CreateAccountStatus::Created);
//! ledger.close()?;
//!
//! // Opening needs an existing ledger: a missing directory is an error,
//! // never a new empty ledger.
//! let ledger = Ledger::open(dir.path(), LedgerOptions::default())?;
//! assert_eq!(ledger.lookup_accounts(&[1])?.len(), 1);
//! assert!(Ledger::open(dir.path().join("elsewhere"), LedgerOptions::default())
//!     .unwrap_err()
//!     .is_not_found());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Cargo features
//!
//! - `cli` (default): the `syncpay` command (benchmark and operator
//!   commands). An embedder turns it off with `default-features = false`.
//! - `internals`: makes the storage core public (unstable, for this
//!   crate's benchmarks and fuzzers; no compatibility promise).
//! - `testing`: the test kit (simulators, reference model, generators);
//!   implies `internals`.

#![deny(missing_docs)]
#![forbid(unsafe_op_in_unsafe_fn)]

mod error;
mod inspect;
mod options;
mod stats;

#[cfg(feature = "internals")]
pub mod ledger;
#[cfg(not(feature = "internals"))]
mod ledger;

#[cfg(feature = "internals")]
pub mod storage;
#[cfg(not(feature = "internals"))]
mod storage;

#[cfg(all(feature = "replication", feature = "internals"))]
pub mod raft;
#[cfg(all(feature = "replication", not(feature = "internals")))]
#[allow(dead_code, unused_imports)] // Parts only tests and `internals` use.
mod raft;

#[cfg(feature = "replication")]
pub mod replication {
    //! The Raft-replicated ledger (feature `replication`): a [`Node`] serves
    //! one replica over TCP; a [`ReplicatedClient`] finds the leader and
    //! retries through failover with its session, so each write applies
    //! exactly once.
    //!
    //! ```
    //! # #[tokio::main(flavor = "current_thread")]
    //! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    //! use std::collections::BTreeMap;
    //! use syncpay::replication::{Node, NodeOptions, ReplicatedClient};
    //! use syncpay::{Account, CreateAccountStatus};
    //!
    //! let dir = tempfile::tempdir()?;
    //! let node = Node::start(1, dir.path(), "127.0.0.1:0", &NodeOptions::default()).await?;
    //! let addr = node.addr().to_string();
    //! node.initialize(BTreeMap::from([(1, addr.clone())])).await?;
    //!
    //! let mut client = ReplicatedClient::new([addr]);
    //! let results = client
    //!     .create_accounts(&[Account { id: 1, ledger: 1, code: 1, ..Account::default() }])
    //!     .await?;
    //! assert_eq!(results[0].status, CreateAccountStatus::Created);
    //! assert_eq!(client.lookup_accounts(&[1]).await?.len(), 1);
    //! node.shutdown().await;
    //! # Ok(())
    //! # }
    //! ```

    pub use crate::raft::client::{ClientError, ClientOptions, ReplicatedClient, WriteReply};
    pub use crate::raft::tcp::{TcpNode as Node, TransportError};
    pub use crate::raft::{
        NodeId, NodeOptions, NodeStatus, PeerStatus, ReadConsistency, ReadReply, ReadRequest,
        StartError, WriteError, WritePath,
    };
}

#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;

#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod rng;
#[cfg(not(feature = "internals"))]
mod rng;

pub use error::{Error, ErrorKind, Result};
pub use inspect::{Inspection, LogBatch, LogRecord, SegmentInfo, SnapshotInfo, Verification};
pub use ledger::{
    AMOUNT_MAX, Account, AccountBalance, AccountFilter, AccountFilterFlags, AccountFlags,
    BATCH_EVENTS_MAX, CreateAccountResult, CreateAccountStatus, CreateTransferResult,
    CreateTransferStatus, Ledger, MemoryUsage, QueryFilter, QueryFilterFlags, Transfer,
    TransferFlags,
};
pub use options::{LedgerOptions, RecoveryMode};
pub use stats::{LatencySummary, Stats};

/// What opening a ledger found and did, and what a repair would do.
pub mod recovery {
    pub use crate::storage::store::{
        CheckpointInfo, CheckpointStats, RejectedSnapshot, StoreRecovery as Recovery,
        StoreRepairPlan as RepairPlan,
    };
    pub use crate::storage::wal::{
        CorruptReason, Damage, RecoveryReport as LogRecovery, RepairAction,
        RepairPlan as LogRepairPlan, TornTail,
    };
}

/// Statically asserted: a ledger can be shared between threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Ledger>();
    send_sync::<Error>();
};

/// The README's code blocks, compiled and run as doctests so that the
/// embedding example cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
