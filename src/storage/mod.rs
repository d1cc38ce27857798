//! The storage core: everything below the ledger.
//!
//! Layers, each using only the ones above it in this list:
//! - [`io`]: the file-system seam (real and simulated disks);
//! - [`clock`]: the time seam;
//! - [`wal`]: the segmented, checksummed write-ahead log with group commit
//!   and the recovery decision table;
//! - [`snapshot`]: atomic, checksummed snapshot files;
//! - [`store`]: a durable host for a deterministic state machine (log +
//!   snapshots + recovery by replay);
//! - [`gather`]: concurrent calls gathered into one command (above the
//!   store, used by the ledger and the replicated leader).
//!
//! Not part of the stable API: public only with the `internals` feature,
//! which this crate's own tests, benchmarks and fuzzers use.

pub mod clock;
pub mod gather;
pub(crate) mod header;
pub mod io;
pub mod metrics;
pub(crate) mod poison;
pub mod snapshot;
pub mod store;
pub mod wal;
