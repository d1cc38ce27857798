//! The time seam: every reading of time in syncpay goes through [`Clock`].
//!
//! [`SystemClock`] reads the operating system; [`SimClock`] is set and
//! advanced by tests, so that anything depending on time (timestamps
//! assigned to batches, expiry of pending transfers) is deterministic.
//!
//! Invariant: no other module calls `SystemTime::now` or `Instant::now` on a
//! path that influences stored state (latency metrics read `Instant`, and
//! nothing stored depends on them).

use std::fmt;
use std::sync::Arc;
#[cfg(any(test, feature = "internals"))]
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Wall-clock time in nanoseconds since the Unix epoch. May jump.
    fn realtime_ns(&self) -> u64;
}

/// The operating system's clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl SystemClock {
    /// A shared system clock, the default of every ledger.
    pub fn shared() -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    fn realtime_ns(&self) -> u64 {
        // A clock set before 1970 reads as 0; the engine's timestamps stay
        // strictly increasing regardless (`max(now, last + 1)`).
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to. Cloning shares the same time.
#[cfg(any(test, feature = "internals"))]
#[derive(Clone, Debug, Default)]
pub struct SimClock {
    realtime_ns: Arc<AtomicU64>,
}

#[cfg(any(test, feature = "internals"))]
impl SimClock {
    /// A simulated clock reading `realtime_ns`.
    pub fn new(realtime_ns: u64) -> SimClock {
        SimClock {
            realtime_ns: Arc::new(AtomicU64::new(realtime_ns)),
        }
    }

    /// Moves the clock forward by `delta_ns`.
    pub fn advance_ns(&self, delta_ns: u64) {
        self.realtime_ns.fetch_add(delta_ns, Ordering::SeqCst);
    }

    /// Sets the wall clock (it may go backwards, like a real one).
    pub fn set_realtime_ns(&self, realtime_ns: u64) {
        self.realtime_ns.store(realtime_ns, Ordering::SeqCst);
    }
}

#[cfg(any(test, feature = "internals"))]
impl Clock for SimClock {
    fn realtime_ns(&self) -> u64 {
        self.realtime_ns.load(Ordering::SeqCst)
    }
}
