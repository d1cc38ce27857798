//! The batch driver: one pass over a batch's events in order, with the batch-level rules
//! (B1–B7: linked chains, imported timestamps, the reserved timestamp of each event), the
//! per-object rules of `create/` for each event, and the dense results TigerBeetle reports.

use super::*;

/// Returns the timestamp of event `index` of a batch of `count` events with batch timestamp
/// `batch_timestamp`: the batch takes the `count` consecutive timestamps ending at
/// `batch_timestamp`. Saturates at 0 for out-of-contract inputs instead of panicking.
pub(super) fn event_timestamp(batch_timestamp: u64, count: usize, index: usize) -> u64 {
    let distance_from_last = count.saturating_sub(index + 1);
    batch_timestamp.saturating_sub(u64::try_from(distance_from_last).unwrap_or(u64::MAX))
}

/// The instant used for the expiry run before a batch: the first event's timestamp, or the
/// batch timestamp itself for an empty batch.
pub(super) fn first_event_timestamp(count: usize, batch_timestamp: u64) -> u64 {
    event_timestamp(batch_timestamp, count, 0)
}

/// The parts of an event that the batch-level steps (B1–B7) look at.
pub(super) trait CreateEvent {
    fn id(&self) -> u128;
    fn is_linked(&self) -> bool;
    fn is_imported(&self) -> bool;
    fn user_timestamp(&self) -> u64;
    /// The timestamp of the stored object of this kind with this id, if any.
    fn stored_timestamp(state: &LedgerState, id: u128) -> Option<u64>;
}

impl CreateEvent for Account {
    fn id(&self) -> u128 {
        self.id
    }
    fn is_linked(&self) -> bool {
        self.flags.contains(AccountFlags::LINKED)
    }
    fn is_imported(&self) -> bool {
        self.flags.contains(AccountFlags::IMPORTED)
    }
    fn user_timestamp(&self) -> u64 {
        self.timestamp
    }
    fn stored_timestamp(state: &LedgerState, id: u128) -> Option<u64> {
        state.account(id).map(|account| account.timestamp)
    }
}

impl CreateEvent for Transfer {
    fn id(&self) -> u128 {
        self.id
    }
    fn is_linked(&self) -> bool {
        self.flags.contains(TransferFlags::LINKED)
    }
    fn is_imported(&self) -> bool {
        self.flags.contains(TransferFlags::IMPORTED)
    }
    fn user_timestamp(&self) -> u64 {
        self.timestamp
    }
    fn stored_timestamp(state: &LedgerState, id: u128) -> Option<u64> {
        state
            .transfer_by_id(id)
            .map(|(_, transfer)| transfer.timestamp)
    }
}

/// The statuses that the batch-level steps produce, common to accounts and transfers.
pub(super) trait CreateStatus: Copy + Eq {
    const CREATED: Self;
    const EXISTS: Self;
    const LINKED_EVENT_FAILED: Self;
    const LINKED_EVENT_CHAIN_OPEN: Self;
    const IMPORTED_EVENT_EXPECTED: Self;
    const IMPORTED_EVENT_NOT_EXPECTED: Self;
    const TIMESTAMP_MUST_BE_ZERO: Self;
    const IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE: Self;
    const IMPORTED_EVENT_TIMESTAMP_MUST_NOT_ADVANCE: Self;
    /// Whether a failure with this status burns the event's id (transfers only).
    fn burns_id(self) -> bool;
}

impl CreateStatus for CreateAccountStatus {
    const CREATED: Self = Self::Created;
    const EXISTS: Self = Self::Exists;
    const LINKED_EVENT_FAILED: Self = Self::LinkedEventFailed;
    const LINKED_EVENT_CHAIN_OPEN: Self = Self::LinkedEventChainOpen;
    const IMPORTED_EVENT_EXPECTED: Self = Self::ImportedEventExpected;
    const IMPORTED_EVENT_NOT_EXPECTED: Self = Self::ImportedEventNotExpected;
    const TIMESTAMP_MUST_BE_ZERO: Self = Self::TimestampMustBeZero;
    const IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE: Self = Self::ImportedEventTimestampOutOfRange;
    const IMPORTED_EVENT_TIMESTAMP_MUST_NOT_ADVANCE: Self =
        Self::ImportedEventTimestampMustNotAdvance;

    /// Account statuses never depend on transient state, so no account id is ever burnt.
    fn burns_id(self) -> bool {
        false
    }
}

impl CreateStatus for CreateTransferStatus {
    const CREATED: Self = Self::Created;
    const EXISTS: Self = Self::Exists;
    const LINKED_EVENT_FAILED: Self = Self::LinkedEventFailed;
    const LINKED_EVENT_CHAIN_OPEN: Self = Self::LinkedEventChainOpen;
    const IMPORTED_EVENT_EXPECTED: Self = Self::ImportedEventExpected;
    const IMPORTED_EVENT_NOT_EXPECTED: Self = Self::ImportedEventNotExpected;
    const TIMESTAMP_MUST_BE_ZERO: Self = Self::TimestampMustBeZero;
    const IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE: Self = Self::ImportedEventTimestampOutOfRange;
    const IMPORTED_EVENT_TIMESTAMP_MUST_NOT_ADVANCE: Self =
        Self::ImportedEventTimestampMustNotAdvance;

    fn burns_id(self) -> bool {
        self.is_transient()
    }
}

/// Where an event sits in its batch, as the batch-level steps need it.
#[derive(Clone, Copy)]
pub(super) struct EventPosition {
    pub(super) index: usize,
    pub(super) count: usize,
    pub(super) assigned_timestamp: u64,
    pub(super) batch_timestamp: u64,
    pub(super) batch_imported: bool,
    pub(super) chain_broken: bool,
}

/// The linked chain currently open in a batch.
pub(super) struct OpenChain {
    pub(super) start_index: usize,
    pub(super) broken: bool,
}

impl LedgerState {
    /// Runs the batch-level steps B1–B7 and the linked-chain rules for every event, applying
    /// each event with `create`, and returns `(status, result timestamp)` per event.
    ///
    /// Before each group of [`WARM_GROUP_LEN`] events, `warm` reads the memory the group will
    /// touch (see `warm_transfers`). `create` gets the event's index in the batch.
    pub(super) fn execute_batch<E, S>(
        &mut self,
        events: &[E],
        batch_timestamp: u64,
        warm: impl Fn(&Self, Range<usize>) -> u64,
        create: impl Fn(&mut Self, usize, &E, u64) -> Result<(), S>,
    ) -> Vec<(S, u64)>
    where
        E: CreateEvent,
        S: CreateStatus,
    {
        let count = events.len();
        // The first event decides whether the whole batch is imported, even if it fails.
        let batch_imported = events.first().is_some_and(CreateEvent::is_imported);
        let mut results: Vec<(S, u64)> = Vec::with_capacity(count);
        let mut chain: Option<OpenChain> = None;
        for (index, event) in events.iter().enumerate() {
            if index % WARM_GROUP_LEN == 0 {
                let group_end = (index + WARM_GROUP_LEN).min(count);
                std::hint::black_box(warm(self, index..group_end));
            }
            let assigned_timestamp = event_timestamp(batch_timestamp, count, index);
            // B1: a linked event with no open chain opens one.
            if event.is_linked() && chain.is_none() {
                chain = Some(OpenChain {
                    start_index: index,
                    broken: false,
                });
                self.begin_chain();
            }
            let position = EventPosition {
                index,
                count,
                assigned_timestamp,
                batch_timestamp,
                batch_imported,
                chain_broken: chain.as_ref().is_some_and(|open| open.broken),
            };
            let outcome = self.evaluate_event(event, position, &create);
            let status = outcome.err().unwrap_or(S::CREATED);
            // Computed before a rollback, so `exists` still sees an object created earlier
            // in the same chain.
            let result_timestamp = self.result_timestamp(event, assigned_timestamp, &outcome);
            if status != S::CREATED {
                self.fail_event(&mut chain, &mut results, index);
                // A transient failure burns the id after the rollback, so it survives it.
                if status.burns_id() {
                    self.failed_ids.insert(event.id());
                }
            }
            results.push((status, result_timestamp));
            // The chain ends at its first unlinked event, or at the batch's end.
            if (!event.is_linked() || status == S::LINKED_EVENT_CHAIN_OPEN)
                && chain.take().is_some_and(|open| !open.broken)
            {
                self.commit_chain();
            }
        }
        if chain.is_some_and(|open| !open.broken) {
            self.commit_chain();
        }
        results
    }

    /// The first failure inside a chain breaks it: undo every effect of the chain's earlier
    /// events and report them as `linked_event_failed`, keeping their timestamps.
    pub(super) fn fail_event<S: CreateStatus>(
        &mut self,
        chain: &mut Option<OpenChain>,
        results: &mut [(S, u64)],
        index: usize,
    ) {
        if let Some(open) = chain.as_mut().filter(|open| !open.broken) {
            open.broken = true;
            self.rollback_chain();
            for earlier in results.get_mut(open.start_index..index).unwrap_or_default() {
                earlier.0 = S::LINKED_EVENT_FAILED;
            }
        }
    }

    /// Decides one event's outcome (steps B2–B7): `Ok(timestamp)` when it was applied.
    pub(super) fn evaluate_event<E, S>(
        &mut self,
        event: &E,
        position: EventPosition,
        create: &impl Fn(&mut Self, usize, &E, u64) -> Result<(), S>,
    ) -> Result<u64, S>
    where
        E: CreateEvent,
        S: CreateStatus,
    {
        // B2: the batch must not end inside a chain; checked before B3.
        if event.is_linked() && position.index + 1 == position.count {
            return Err(S::LINKED_EVENT_CHAIN_OPEN);
        }
        // B3: once a chain broke, its remaining events are not evaluated.
        if position.chain_broken {
            return Err(S::LINKED_EVENT_FAILED);
        }
        // B4: every event must agree with the first one on being imported.
        if event.is_imported() != position.batch_imported {
            return Err(if event.is_imported() {
                S::IMPORTED_EVENT_NOT_EXPECTED
            } else {
                S::IMPORTED_EVENT_EXPECTED
            });
        }
        let event_timestamp = if event.is_imported() {
            // B5: an imported timestamp must be valid and strictly before the batch's.
            if !timestamp_valid(event.user_timestamp()) {
                return Err(S::IMPORTED_EVENT_TIMESTAMP_OUT_OF_RANGE);
            }
            if event.user_timestamp() >= position.batch_timestamp {
                return Err(S::IMPORTED_EVENT_TIMESTAMP_MUST_NOT_ADVANCE);
            }
            event.user_timestamp()
        } else {
            // B6: a non-imported event must leave its timestamp to the ledger.
            if event.user_timestamp() != 0 {
                return Err(S::TIMESTAMP_MUST_BE_ZERO);
            }
            position.assigned_timestamp
        };
        // B7: the per-object rules.
        create(self, position.index, event, event_timestamp)?;
        Ok(event_timestamp)
    }

    /// Returns the timestamp TigerBeetle 0.17 reports with an event's dense result.
    pub(super) fn result_timestamp<E, S>(
        &self,
        event: &E,
        assigned_timestamp: u64,
        outcome: &Result<u64, S>,
    ) -> u64
    where
        E: CreateEvent,
        S: CreateStatus,
    {
        match outcome {
            Ok(event_timestamp) => *event_timestamp,
            Err(status) if *status == S::EXISTS => {
                E::stored_timestamp(self, event.id()).unwrap_or(assigned_timestamp)
            }
            Err(status) if *status == S::LINKED_EVENT_FAILED => {
                if event.is_imported() && event.user_timestamp() != 0 {
                    event.user_timestamp()
                } else {
                    assigned_timestamp
                }
            }
            Err(_) => assigned_timestamp,
        }
    }
}
