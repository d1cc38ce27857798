//! syncpay: an embedded, persistent, replicated payment ledger engine.
//!
//! A host program opens a [`Ledger`] in a directory and submits batches of
//! accounts and transfers (TigerBeetle 0.17 semantics); when a call
//! returns, its batch is durable. The core is a write-ahead log ([`wal`])
//! and snapshot files ([`snapshot`]) under a durable state-machine host
//! ([`store`]); the ledger ([`ledger`]) and its exact idempotency index
//! ([`dedup`]) are a deterministic state machine on top.
//!
//! ```
//! use syncpay::{Ledger, Options};
//! use syncpay::ledger::{Account, CreateAccountStatus};
//!
//! let dir = tempfile::tempdir()?;
//! let ledger = Ledger::open(dir.path(), Options::default())?;
//! let results = ledger.create_accounts(&[Account { id: 1, ledger: 1, code: 1, ..Account::default() }])?;
//! assert_eq!(results[0].status, CreateAccountStatus::Created);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod benchmark;
pub mod chunked;
pub mod clock;
pub mod dedup;
pub mod error;
pub mod io;
pub mod ledger;
pub mod snapshot;
pub mod store;
pub mod wal;

pub use error::{Error, Result};
pub use ledger::{Ledger, Options};

#[doc(hidden)]
pub mod testing;

#[doc(hidden)]
pub mod rng;

/// The README's code blocks, compiled and run as doctests so that the
/// embedding example cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
