//! syncpay: an embedded, persistent, replicated payment ledger engine.
//!
//! A host program opens a ledger in a directory and submits batches of
//! accounts and transfers; when a call returns, its batch is durable. The
//! core is a write-ahead log ([`wal`]) and snapshot files ([`snapshot`])
//! under a durable state-machine host ([`store`]).

#![deny(missing_docs)]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod clock;
pub mod io;
pub mod snapshot;
pub mod store;
pub mod wal;

#[doc(hidden)]
pub mod testing;

#[doc(hidden)]
pub mod rng;
