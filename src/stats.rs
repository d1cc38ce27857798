//! What a ledger reports about itself: [`Stats`] on demand, and `tracing`
//! events (target `syncpay`) for every recovery action, checkpoint and
//! failure. The library installs no subscriber; the host chooses.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::storage::metrics::Histogram;
pub use crate::storage::metrics::LatencySummary;
use crate::storage::store::{CheckpointStats, StoreError, StoreRecovery};

/// Counters and latency figures of a ledger since it was opened
/// ([`Ledger::stats`](crate::Ledger::stats)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Create calls (`create_accounts`, `create_transfers`) that succeeded.
    pub batches: u64,
    /// Events in those calls.
    pub events: u64,
    /// Logged commands those calls became: concurrent calls are gathered
    /// into one, so `batches / commands` is the mean gathering factor.
    pub commands: u64,
    /// Latency of those calls, from entry to durable and applied.
    pub call_latency: LatencySummary,
    /// Latency of applying a batch to the state (overlaps its `fdatasync`).
    pub apply_latency: LatencySummary,
    /// Latency of the log's `fdatasync`, one per group commit.
    pub fsync_latency: LatencySummary,
    /// Group commits the log performed; `log_submissions / group_commits`
    /// is the mean group size.
    pub group_commits: u64,
    /// `fdatasync` calls on log segments.
    pub fsyncs: u64,
    /// Submissions (batches) the log accepted.
    pub log_submissions: u64,
    /// The LSN of the last durable log record (0: none).
    pub last_durable_lsn: u64,
    /// The first LSN still in the log.
    pub first_lsn: u64,
    /// Live log segments.
    pub log_segments: usize,
    /// Bytes of live log records.
    pub log_bytes: u64,
    /// Checkpoints written and failed.
    pub checkpoints: CheckpointStats,
    /// What opening found and did.
    pub recovery: StoreRecovery,
}

/// The ledger-level counters, updated on every call.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    batches: AtomicU64,
    events: AtomicU64,
    call_latency: Histogram,
}

impl Recorder {
    pub(crate) fn batch(&self, events: usize, elapsed: Duration) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.events.fetch_add(events as u64, Ordering::Relaxed);
        self.call_latency.record(elapsed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            batches: self.batches.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            call_latency: self.call_latency.summary(),
            ..Stats::default()
        }
    }
}

/// One event per thing recovery did or found.
pub(crate) fn trace_recovery(path: &Path, report: &StoreRecovery, read_only: bool) {
    let path = path.display();
    let wal = &report.wal;
    tracing::info!(
        target: "syncpay",
        %path,
        read_only,
        snapshot_lsn = report.snapshot_lsn,
        replayed_records = report.replayed_records,
        first_lsn = wal.first_lsn,
        next_lsn = wal.next_lsn,
        previous_close_clean = wal.previous_close_clean,
        "ledger opened"
    );
    if let Some(torn) = &wal.torn_tail {
        tracing::warn!(
            target: "syncpay",
            %path,
            segment = %torn.path.display(),
            offset = torn.offset,
            lsn = torn.lsn,
            bytes = torn.bytes,
            zeroed = !read_only,
            "torn tail of an unacknowledged last write"
        );
    }
    for damage in &wal.damage_skipped {
        tracing::warn!(target: "syncpay", %path, %damage, "log damage skipped (a snapshot covers it, or harmless)");
    }
    for rejected in &report.snapshots_skipped {
        tracing::warn!(target: "syncpay", %path, snapshot = %rejected, "snapshot rejected");
    }
    for (from, to) in &report.snapshots_quarantined {
        tracing::warn!(target: "syncpay", %path, from = %from.display(), to = %to.display(), "snapshot moved to quarantine");
    }
    if let Some(repair) = &wal.repair {
        tracing::warn!(target: "syncpay", %path, plan = ?repair, "log repaired");
    }
    for note in &wal.notes {
        tracing::info!(target: "syncpay", %path, note, "recovery note");
    }
    if wal.temp_files_removed + wal.leftover_segments_removed > 0 {
        tracing::info!(
            target: "syncpay",
            %path,
            temp_files = wal.temp_files_removed,
            leftover_segments = wal.leftover_segments_removed,
            "leftover files removed"
        );
    }
}

/// A failure of a call; poisoning failures are errors, others warnings.
pub(crate) fn trace_failure(operation: &'static str, error: &StoreError) {
    match error {
        StoreError::Poisoned { .. } | StoreError::Wal(_) | StoreError::Io { .. } => {
            tracing::error!(target: "syncpay", operation, %error, "ledger call failed")
        }
        _ => tracing::warn!(target: "syncpay", operation, %error, "ledger call failed"),
    }
}
