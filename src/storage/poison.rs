//! The one poison type of the storage core: the first failure that left
//! durable state unknown (a failed log write or `fdatasync`, a command
//! applied whose record then failed), kept so that every later call fails
//! with it until the instance is reopened. The log and the store each hold
//! one; the first cause wins and is never replaced.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// A sticky failure.
#[derive(Debug)]
pub(crate) struct Poison<E> {
    set: AtomicBool,
    cause: Mutex<Option<Arc<E>>>,
}

impl<E> Default for Poison<E> {
    fn default() -> Self {
        Poison {
            set: AtomicBool::new(false),
            cause: Mutex::new(None),
        }
    }
}

impl<E: std::fmt::Display> Poison<E> {
    /// Records `error` unless a cause is recorded already; returns the
    /// cause (the first one). `what` names the instance in the `tracing`
    /// event emitted once, when it is first poisoned.
    pub(crate) fn set(&self, error: E, what: &str) -> Arc<E> {
        let mut cause = self.cause.lock();
        let first = cause.get_or_insert_with(|| {
            tracing::error!(
                target: "syncpay",
                instance = what,
                %error,
                "poisoned: every later call fails until it is reopened"
            );
            Arc::new(error)
        });
        let first = Arc::clone(first);
        self.set.store(true, Ordering::SeqCst);
        first
    }

    /// The cause, if poisoned. One atomic load when not.
    pub(crate) fn cause(&self) -> Option<Arc<E>> {
        if !self.set.load(Ordering::SeqCst) {
            return None;
        }
        self.cause.lock().clone()
    }

    /// True once poisoned.
    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the first cause sticks; later failures do not replace it.
    #[test]
    fn the_first_cause_wins() {
        let poison = Poison::<String>::default();
        assert!(!poison.is_set() && poison.cause().is_none());
        assert_eq!(*poison.set("first".into(), "test"), "first");
        assert_eq!(*poison.set("second".into(), "test"), "first");
        assert!(poison.is_set());
        assert_eq!(poison.cause().as_deref().map(String::as_str), Some("first"));
    }
}
