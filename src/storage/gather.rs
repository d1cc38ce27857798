//! Gathering: concurrent calls become one logged command and are answered
//! one by one.
//!
//! Many callers with a transfer each would otherwise cost one log record
//! (and one apply turn) each. A [`Gatherer`] queues their requests; one of
//! the waiting callers, the *leader*, takes a group of them from the front
//! of the queue, hands it to an executor that logs and applies it as one
//! command, and passes each caller its own answer. This is flat combining,
//! shaped like the log's group commit: no thread of its own, no wait when
//! idle, and groups that grow with the load.
//!
//! The group closes when as many requests are queued as the previous group
//! held (the callers it answered tend to come straight back), when the
//! weight limit is reached, or at a deadline of half the recent execution
//! time (at most `wait_max`), whichever comes first. A lone caller never
//! waits: its previous group held one request.
//!
//! Invariants:
//! - every request is executed exactly once, in exactly one group, and
//!   groups are taken in arrival order (FIFO), each a contiguous run of the
//!   queue;
//! - a group's total weight is at most `weight_max`, except a single
//!   request heavier than that, which forms a group alone;
//! - at most one thread forms a group at a time; the role passes on when
//!   the group is answered, or as soon as its command holds its place in
//!   the log ([`Handoff::release`]) if a full group is already waiting, so
//!   a backlog is logged and applied while the group before it is made
//!   durable;
//! - a leader that panics in the executor still passes the role on and
//!   answers its group's other callers with `None`, so no caller waits
//!   forever.
//!
//! The embedded ledger gathers its create calls here; the replicated
//! leader gathers client requests into one Raft entry with the same type.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

/// Default bound on how long a leader waits for its group to fill.
pub const GATHER_WAIT_MAX_DEFAULT: Duration = Duration::from_micros(500);

/// Bounds of a [`Gatherer`].
#[derive(Clone, Copy, Debug)]
pub struct GatherOptions {
    /// The most weight one group carries (a heavier lone request still
    /// forms a group alone).
    pub weight_max: u64,
    /// The longest a leader waits for more requests before it closes its
    /// group. Zero: never wait, take what is queued.
    pub wait_max: Duration,
}

/// Counters of a [`Gatherer`] since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GatherStats {
    /// Groups executed.
    pub groups: u64,
    /// Requests executed (in those groups).
    pub requests: u64,
}

/// What a caller's slot holds.
enum SlotState<A> {
    /// Queued or being executed.
    Waiting,
    /// The caller is the leader now: its request heads the queue.
    Lead,
    /// Its answer.
    Done(A),
    /// The leader executing it panicked.
    Abandoned,
}

/// Where a waiting caller receives its answer or the leader's role.
struct Slot<A> {
    state: Mutex<SlotState<A>>,
    ready: Condvar,
}

impl<A> Slot<A> {
    fn set(&self, value: SlotState<A>) {
        *self.state.lock() = value;
        self.ready.notify_one();
    }
}

struct Entry<Q, A> {
    request: Q,
    weight: u64,
    slot: Arc<Slot<A>>,
}

struct State<Q, A> {
    queue: VecDeque<Entry<Q, A>>,
    queued_weight: u64,
    /// A thread holds the leader's role. Invariant: if not, the queue is
    /// empty (whoever finds no leader takes the role).
    leading: bool,
    /// Requests in the previous group: how many the next one waits for.
    expected: usize,
    /// Moving average of the executor's latency, in nanoseconds.
    execute_ns: u64,
}

/// Gathers concurrent requests `Q` into groups answered with `A`s. See the
/// module documentation.
pub struct Gatherer<Q, A> {
    state: Mutex<State<Q, A>>,
    arrived: Condvar,
    options: GatherOptions,
    groups: AtomicU64,
    requests: AtomicU64,
}

impl<Q, A> std::fmt::Debug for Gatherer<Q, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gatherer")
            .field("options", &self.options)
            .field("stats", &self.stats())
            .finish()
    }
}

/// What executes a group: its requests in queue order in, one answer per
/// request in the same order out.
pub type Execute<'e, Q, A> = dyn FnMut(Vec<Q>, &mut Handoff<'_, Q, A>) -> Vec<A> + 'e;

/// The leader's role, passed on when the group's answers are ready, or
/// earlier by [`release`](Handoff::release) if a full group is already
/// waiting.
pub struct Handoff<'a, Q, A> {
    gatherer: &'a Gatherer<Q, A>,
    released: bool,
}

impl<Q, A> Handoff<'_, Q, A> {
    /// Says the group's command holds its place in the log (its order
    /// among commands is fixed). If the queue already holds a full group,
    /// the role passes on now, so that group is logged and applied while
    /// this one is made durable. Otherwise the role stays until this group
    /// is answered: the callers arriving meanwhile then share one command
    /// instead of each starting its own.
    pub fn release(&mut self) {
        if self.released {
            return;
        }
        let state = self.gatherer.state.lock();
        if state.queued_weight >= self.gatherer.options.weight_max
            && let Some(next) = state.queue.front()
        {
            next.slot.set(SlotState::Lead);
            self.released = true;
        }
        drop(state);
    }

    /// Passes the role on unconditionally (the group is answered, or its
    /// leader is unwinding).
    fn finish(&mut self) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        let mut state = self.gatherer.state.lock();
        match state.queue.front() {
            Some(next) => next.slot.set(SlotState::Lead),
            None => state.leading = false,
        }
    }
}

impl<Q, A> Drop for Handoff<'_, Q, A> {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Answers a group's other callers with `Abandoned` unless disarmed (the
/// executor panicked).
struct AbandonGuard<'a, A> {
    slots: &'a [Arc<Slot<A>>],
    armed: bool,
}

impl<A> Drop for AbandonGuard<'_, A> {
    fn drop(&mut self) {
        if self.armed {
            for slot in self.slots.iter().skip(1) {
                slot.set(SlotState::Abandoned);
            }
        }
    }
}

impl<Q, A> Gatherer<Q, A> {
    /// A gatherer with these bounds.
    pub fn new(options: GatherOptions) -> Self {
        Gatherer {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                queued_weight: 0,
                leading: false,
                expected: 1,
                execute_ns: 0,
            }),
            arrived: Condvar::new(),
            options,
            groups: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        }
    }

    /// Counters since the gatherer was made.
    pub fn stats(&self) -> GatherStats {
        GatherStats {
            groups: self.groups.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
        }
    }

    /// Queues `request` (of `weight`) and returns its answer: executed by
    /// this thread as the leader of a group, or by another's. `execute`
    /// gets a group of requests in queue order and returns one answer per
    /// request, in the same order; it should call
    /// [`Handoff::release`] as soon as the group's place in the log is
    /// fixed. `None` if the leader executing this request panicked.
    pub fn submit(&self, request: Q, weight: u64, execute: &mut Execute<'_, Q, A>) -> Option<A> {
        let slot = Arc::new(Slot {
            state: Mutex::new(SlotState::Waiting),
            ready: Condvar::new(),
        });
        let mut state = self.state.lock();
        state.queue.push_back(Entry {
            request,
            weight,
            slot: Arc::clone(&slot),
        });
        state.queued_weight += weight;
        if !state.leading {
            state.leading = true;
            return Some(self.lead(state, &slot, execute));
        }
        drop(state);
        self.arrived.notify_one();
        let mut waiting = slot.state.lock();
        loop {
            match std::mem::replace(&mut *waiting, SlotState::Waiting) {
                SlotState::Waiting => slot.ready.wait(&mut waiting),
                SlotState::Done(answer) => return Some(answer),
                SlotState::Abandoned => return None,
                SlotState::Lead => {
                    drop(waiting);
                    let state = self.state.lock();
                    return Some(self.lead(state, &slot, execute));
                }
            }
        }
    }

    /// Forms a group headed by `own`, executes it, answers the others, and
    /// returns `own`'s answer.
    fn lead(
        &self,
        mut state: MutexGuard<'_, State<Q, A>>,
        own: &Arc<Slot<A>>,
        execute: &mut Execute<'_, Q, A>,
    ) -> A {
        self.wait_for_group(&mut state);
        let mut requests = Vec::with_capacity(state.queue.len());
        let mut slots = Vec::with_capacity(state.queue.len());
        let mut weight = 0u64;
        while let Some(front) = state.queue.front() {
            if !slots.is_empty() && weight.saturating_add(front.weight) > self.options.weight_max {
                break;
            }
            let entry = state.queue.pop_front().expect("front exists");
            weight += entry.weight;
            requests.push(entry.request);
            slots.push(entry.slot);
        }
        state.queued_weight -= weight;
        state.expected = slots.len();
        drop(state);
        // Pair assertion with `submit` and `release`: the leader heads its group.
        assert!(
            Arc::ptr_eq(&slots[0], own),
            "the leader's request heads the queue"
        );
        let count = slots.len();
        let mut guard = AbandonGuard {
            slots: &slots,
            armed: true,
        };
        let mut handoff = Handoff {
            gatherer: self,
            released: false,
        };
        let started = Instant::now();
        let answers = execute(requests, &mut handoff);
        assert_eq!(answers.len(), count, "one answer per request");
        guard.armed = false;
        self.note_group(count, started.elapsed());
        let mut answers = answers.into_iter();
        let own_answer = answers.next().expect("one answer per request");
        for (slot, answer) in slots.iter().skip(1).zip(answers) {
            slot.set(SlotState::Done(answer));
        }
        // After the answers: a caller answered here and back at once finds
        // the next group still open.
        handoff.finish();
        own_answer
    }

    /// Waits, holding the leader's role, until the queue holds as many
    /// requests as the previous group did, or the weight limit, or the
    /// deadline.
    fn wait_for_group(&self, state: &mut MutexGuard<'_, State<Q, A>>) {
        let full = |state: &State<Q, A>| {
            state.queue.len() >= state.expected || state.queued_weight >= self.options.weight_max
        };
        if full(state) {
            return;
        }
        let wait = self
            .options
            .wait_max
            .min(Duration::from_nanos(state.execute_ns / 2));
        let deadline = Instant::now() + wait;
        while !full(state) && !self.arrived.wait_until(state, deadline).timed_out() {}
    }

    fn note_group(&self, count: usize, elapsed: Duration) {
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(count as u64, Ordering::Relaxed);
        let elapsed_ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let mut state = self.state.lock();
        state.execute_ns = if state.execute_ns == 0 {
            elapsed_ns
        } else {
            (state.execute_ns / 8).saturating_mul(7) + elapsed_ns / 8
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    fn gatherer(weight_max: u64, wait_max: Duration) -> Arc<Gatherer<u64, u64>> {
        Arc::new(Gatherer::new(GatherOptions {
            weight_max,
            wait_max,
        }))
    }

    // Goal: a lone caller is executed alone and at once, answered with its
    // own answer.
    #[test]
    fn lone_caller_is_its_own_group() {
        let g = gatherer(10, Duration::from_secs(10));
        let mut executed = Vec::new();
        for value in 0..5u64 {
            let answer = g.submit(value, 1, &mut |group, _| {
                executed.push(group.clone());
                group.iter().map(|v| v * 2).collect()
            });
            assert_eq!(answer, Some(value * 2));
        }
        assert_eq!(executed, (0..5).map(|v| vec![v]).collect::<Vec<_>>());
        assert_eq!(g.stats().groups, 5);
    }

    // Goal: under concurrency every request is executed exactly once, in
    // groups within the weight limit, each caller gets its own answer, and
    // some groups really hold several requests.
    #[test]
    fn concurrent_callers_are_gathered_and_answered_individually() {
        const THREADS: u64 = 8;
        const PER_THREAD: u64 = 200;
        let g = gatherer(5, Duration::from_millis(2));
        let log = Arc::new(Mutex::new(Vec::<Vec<u64>>::new()));
        let barrier = Arc::new(Barrier::new(THREADS as usize));
        let threads: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (g, log, barrier) = (Arc::clone(&g), Arc::clone(&log), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    for i in 0..PER_THREAD {
                        let value = thread * 1000 + i;
                        let weight = 1 + value % 3;
                        let answer = g.submit(value, weight, &mut |group, handoff| {
                            log.lock().push(group.clone());
                            handoff.release();
                            std::thread::sleep(Duration::from_micros(200));
                            group.iter().map(|v| v + 7).collect()
                        });
                        assert_eq!(answer, Some(value + 7));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let groups = log.lock().clone();
        let mut all: Vec<u64> = groups.iter().flatten().copied().collect();
        all.sort_unstable();
        let mut expected: Vec<u64> = (0..THREADS)
            .flat_map(|t| (0..PER_THREAD).map(move |i| t * 1000 + i))
            .collect();
        expected.sort_unstable();
        assert_eq!(all, expected, "every request exactly once");
        for group in &groups {
            let weight: u64 = group.iter().map(|v| 1 + v % 3).sum();
            assert!(
                group.len() == 1 || weight <= 5,
                "group {group:?} over the limit"
            );
        }
        assert!(groups.iter().any(|g| g.len() > 1), "nothing was gathered");
        assert_eq!(g.stats().requests, THREADS * PER_THREAD);
    }

    // Goal: a panicking executor answers its group's other callers with
    // `None` and passes the leader's role on, so later callers proceed.
    #[test]
    fn panicking_leader_abandons_its_group_and_hands_off() {
        let g = gatherer(100, Duration::from_millis(50));
        let barrier = Arc::new(Barrier::new(2));
        let first = {
            let (g, barrier) = (Arc::clone(&g), Arc::clone(&barrier));
            std::thread::spawn(move || {
                g.submit(1, 1, &mut |_, _| {
                    barrier.wait();
                    // Let the second caller queue behind this group.
                    std::thread::sleep(Duration::from_millis(50));
                    panic!("executor bug");
                })
            })
        };
        barrier.wait();
        let second = g.submit(2, 1, &mut |group, _| group);
        assert!(first.join().is_err(), "the leader's panic propagates to it");
        // The second request was queued behind the panicking group: it was
        // either executed by a later leader (itself) or never taken.
        assert_eq!(second, Some(2));
        assert_eq!(g.submit(3, 1, &mut |group, _| group), Some(3));
    }
}
