//! The differential walk: random batches go to both the reference model and
//! `LedgerState`. The results must be equal event by event. After every batch, every
//! account, every transfer and the results of random queries must be equal, and both
//! ledgers must pass their invariants. At random points the state is replaced by
//! `LedgerState::restore(LedgerState::write_image(image()))`; re-writing the restored image must give the same bytes,
//! and the walk goes on with the restored state. An image held across a batch must still
//! write the bytes it wrote before the batch.
//!
//! Each walk prints its seed and length. `SEED=<n>` replays only that seed (in the short-walk
//! test), and `BATCHES=<n>` sets the number of batches per walk, so a failing walk replays
//! with `SEED=<seed> BATCHES=<batches> cargo test random_batches_match_the_model`.

use std::collections::BTreeSet;

use crate::ledger::state::Sizes;
use crate::ledger::{
    Account, AccountFlags, CreateAccountStatus, CreateTransferStatus, QueryFilter, Transfer,
    TransferFlags,
};
use crate::ledger::{LedgerImage, LedgerState};
use crate::testing::ledger_gen::{self as generate, ACCOUNT_IDS_MAX, Random};
use crate::testing::model_ledger::ModelLedger;
use crate::testing::model_ledger::TIMESTAMP_MAX;

/// Distinguishes account statuses from transfer statuses in the coverage set.
pub const ACCOUNT_TAG: u32 = 1 << 16;

/// One random walk over both ledgers.
pub struct Walk {
    seed: u64,
    batch: usize,
    random: Random,
    model: ModelLedger,
    state: LedgerState,
    clock: u64,
    /// Walks near 2^63 take small steps, so that timeouts overflow without the clock
    /// leaving the valid range.
    high_clock: bool,
    pending_ids: Vec<u128>,
    submitted: Vec<Transfer>,
    transfer_ids: BTreeSet<u128>,
    timestamps: Vec<u64>,
    /// An image taken before the previous batch, with the bytes it wrote then.
    held_image: Option<(LedgerImage, Vec<u8>)>,
}

/// Writes an image to a new byte vector.
fn image_bytes(image: &LedgerImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    LedgerState::write_image(image, &mut bytes).expect("writing to a Vec cannot fail");
    bytes
}

impl Walk {
    /// A walk whose choices come from `random`.
    pub fn new(seed: u64, random: Random) -> Self {
        let high_clock = seed % 8 == 7;
        Self {
            seed,
            batch: 0,
            random,
            model: ModelLedger::new(),
            state: LedgerState::with_sizes(Sizes::SMALL),
            clock: if high_clock {
                TIMESTAMP_MAX - 4_000_000_000
            } else {
                1_000
            },
            high_clock,
            pending_ids: Vec::new(),
            submitted: Vec::new(),
            transfer_ids: BTreeSet::new(),
            timestamps: Vec::new(),
            held_image: None,
        }
    }

    fn context(&self) -> String {
        format!("seed {} batch {}", self.seed, self.batch)
    }

    /// Creates the walk's first accounts, mostly valid, with random limits and history.
    fn create_initial_accounts(&mut self, seen: &mut BTreeSet<u32>) {
        let accounts: Vec<Account> = (1..=ACCOUNT_IDS_MAX - 3)
            .map(|id| {
                let limit = self.random.pick(&[
                    AccountFlags::empty(),
                    AccountFlags::empty(),
                    AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
                    AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
                ]);
                let history = if self.random.chance(50) {
                    AccountFlags::HISTORY
                } else {
                    AccountFlags::empty()
                };
                Account {
                    id,
                    ledger: if id % 6 == 0 { 2 } else { 1 },
                    code: 1,
                    flags: limit | history,
                    ..Account::default()
                }
            })
            .collect();
        self.clock += accounts.len() as u64;
        self.apply_accounts(&accounts, seen);
    }

    /// Advances the clock past the previous batch by at least `count + 1`, sometimes by
    /// seconds, so that pending transfers expire now and then.
    fn advance_clock(&mut self, count: usize) {
        let jump = if !self.high_clock && self.random.chance(30) {
            self.random.below(3_500_000_000)
        } else {
            0
        };
        self.clock += count as u64 + 1 + jump;
    }

    fn apply_accounts(&mut self, events: &[Account], seen: &mut BTreeSet<u32>) {
        let expected = self.model.create_accounts(events, self.clock);
        let actual = self.state.create_accounts(events, self.clock);
        assert_eq!(actual, expected, "{}: {events:?}", self.context());
        for result in &actual {
            seen.insert(result.status.as_u32() | ACCOUNT_TAG);
            if result.status == CreateAccountStatus::Created {
                self.timestamps.push(result.timestamp);
            }
        }
    }

    fn apply_transfers(&mut self, events: &[Transfer], seen: &mut BTreeSet<u32>) {
        let expected = self.model.create_transfers(events, self.clock);
        let actual = self.state.create_transfers(events, self.clock);
        assert_eq!(actual, expected, "{}: {events:?}", self.context());
        for (event, result) in events.iter().zip(&actual) {
            seen.insert(result.status.as_u32());
            self.transfer_ids.insert(event.id);
            if result.status == CreateTransferStatus::Created {
                self.timestamps.push(result.timestamp);
                if event.flags.contains(TransferFlags::PENDING) {
                    self.pending_ids.push(event.id);
                }
            }
        }
        self.submitted.extend_from_slice(events);
    }

    /// One random batch of accounts or transfers, applied to both ledgers.
    fn step(&mut self, seen: &mut BTreeSet<u32>) {
        let count = if self.random.chance(2) {
            self.random.below(60) as usize
        } else {
            self.random.below(10) as usize
        };
        self.advance_clock(count);
        let clock = self.clock;
        if self.random.chance(30) {
            let imported_batch = self.random.chance(20);
            let events: Vec<Account> = (0..count)
                .map(|_| {
                    generate::account(&mut self.random, imported_batch, clock, &self.timestamps)
                })
                .collect();
            self.apply_accounts(&events, seen);
        } else {
            let imported_batch = self.random.chance(10);
            let events: Vec<Transfer> = (0..count)
                .map(|_| {
                    if !self.submitted.is_empty() && self.random.chance(20) {
                        generate::resubmission(&mut self.random, &self.submitted)
                    } else {
                        let (pending_ids, timestamps) = (&self.pending_ids, &self.timestamps);
                        generate::transfer(
                            &mut self.random,
                            imported_batch,
                            clock,
                            pending_ids,
                            timestamps,
                        )
                    }
                })
                .collect();
            self.apply_transfers(&events, seen);
        }
        if self.random.chance(4) {
            let now = self.clock.saturating_sub(self.random.below(2_000_000_000));
            self.model.expire_pending(now);
            self.state.expire_pending(now);
        }
    }

    /// Every account, every transfer, full and random queries, and both invariant checks.
    fn compare(&mut self) {
        let context = self.context();
        let account_ids: Vec<u128> = (0..=ACCOUNT_IDS_MAX + 1).chain([u128::MAX]).collect();
        assert_eq!(
            self.state.lookup_accounts(&account_ids),
            self.model.lookup_accounts(&account_ids),
            "{context}: accounts"
        );
        let transfer_ids: Vec<u128> = self.transfer_ids.iter().copied().collect();
        assert_eq!(
            self.state.lookup_transfers(&transfer_ids),
            self.model.lookup_transfers(&transfer_ids),
            "{context}: transfers"
        );
        let everything = QueryFilter {
            limit: u32::MAX,
            ..QueryFilter::default()
        };
        assert_eq!(
            self.state.query_transfers(&everything),
            self.model.query_transfers(&everything),
            "{context}: all transfers"
        );
        for _ in 0..3 {
            self.compare_random_queries();
        }
        if let Err(violation) = self.model.check_invariants() {
            panic!("{context}: model invariant: {violation}");
        }
        if let Err(violation) = self.state.check_invariants() {
            panic!("{context}: state invariant: {violation}");
        }
    }

    fn compare_random_queries(&mut self) {
        let context = self.context();
        let filter = generate::account_filter(&mut self.random, &self.timestamps);
        assert_eq!(
            self.state.get_account_transfers(&filter),
            self.model.get_account_transfers(&filter),
            "{context}: {filter:?}"
        );
        assert_eq!(
            self.state.get_account_balances(&filter),
            self.model.get_account_balances(&filter),
            "{context}: {filter:?}"
        );
        let filter = generate::query_filter(&mut self.random, &self.timestamps);
        assert_eq!(
            self.state.query_accounts(&filter),
            self.model.query_accounts(&filter),
            "{context}: {filter:?}"
        );
        assert_eq!(
            self.state.query_transfers(&filter),
            self.model.query_transfers(&filter),
            "{context}: {filter:?}"
        );
    }

    /// Sometimes replaces the state by its restored image, and sometimes holds an image
    /// across the next batch to check that later writes do not leak into it.
    fn maybe_snapshot(&mut self) {
        if let Some((image, bytes)) = self.held_image.take() {
            assert!(
                image_bytes(&image) == bytes,
                "{}: a held image changed",
                self.context()
            );
        }
        if self.random.chance(6) {
            let bytes = image_bytes(&self.state.image());
            let restored = LedgerState::restore_with_sizes(&bytes, Sizes::SMALL)
                .unwrap_or_else(|error| panic!("{}: restore failed: {error}", self.context()));
            assert!(
                image_bytes(&restored.image()) == bytes,
                "{}: re-written image differs",
                self.context()
            );
            self.state = restored;
        }
        // Often enough that chains rolled back across a chunk boundary meet a held image.
        if self.random.chance(30) {
            let image = self.state.image();
            let bytes = image_bytes(&image);
            self.held_image = Some((image, bytes));
        }
    }
}

/// Runs one seeded walk of `batches` batches; `seen` collects the statuses
/// produced (transfer statuses as is, account statuses with `ACCOUNT_TAG`).
pub fn walk(seed: u64, batches: usize, seen: &mut BTreeSet<u32>) {
    eprintln!("differential walk: SEED={seed} BATCHES={batches}");
    run(Walk::new(seed, Random::new(seed)), batches, seen);
}

/// Runs a walk until `batches` batches or, for a byte-driven walk, until
/// its bytes are used up.
pub fn run(mut walk: Walk, batches: usize, seen: &mut BTreeSet<u32>) {
    walk.create_initial_accounts(seen);
    walk.compare();
    for batch in 1..=batches {
        if walk.random.is_exhausted() {
            break;
        }
        walk.batch = batch;
        walk.step(seen);
        walk.compare();
        walk.maybe_snapshot();
    }
}
