//! Random ledger events and filters for the differential tests, the
//! restore tests and the `ledger_model` fuzz target.
//!
//! The id spaces are small, so duplicates, resubmissions, posts of real pending transfers,
//! chains and limits collide often. Every input field also sometimes takes an invalid or
//! extreme value: ids 0 and 2^128 − 1, padding bits, mutually exclusive flags, amounts near
//! 2^128, and timeouts that overflow.

use crate::ledger::{
    AMOUNT_MAX, Account, AccountFilter, AccountFilterFlags, AccountFlags, QueryFilter,
    QueryFilterFlags, Transfer, TransferFlags,
};
use crate::rng::SplitMix64;

/// Where the generator's choices come from: a seeded SplitMix64 stream, or
/// a fuzzer's input bytes (8 per draw, zeros once they run out).
pub struct Random {
    seeded: SplitMix64,
    bytes: Option<Vec<u8>>,
    position: usize,
}

impl Random {
    /// A seeded stream.
    pub fn new(seed: u64) -> Self {
        Random {
            seeded: SplitMix64::new(seed),
            bytes: None,
            position: 0,
        }
    }

    /// A stream read from `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Random {
            seeded: SplitMix64::new(0),
            bytes: Some(bytes.to_vec()),
            position: 0,
        }
    }

    /// True once a byte stream is used up.
    pub fn is_exhausted(&self) -> bool {
        self.bytes
            .as_ref()
            .is_some_and(|bytes| self.position >= bytes.len())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        if let Some(bytes) = &self.bytes {
            let mut word = [0u8; 8];
            let start = self.position.min(bytes.len());
            let end = (start + 8).min(bytes.len());
            word[..end - start].copy_from_slice(&bytes[start..end]);
            self.position += 8;
            return u64::from_le_bytes(word);
        }
        self.seeded.next_u64()
    }

    /// A value in `0..bound` (0 for a zero bound).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// True with probability `percent`%.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `choices` (which must not be empty).
    pub fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.below(choices.len() as u64) as usize]
    }
}

/// The accounts the walks use: ids 1..=ACCOUNT_IDS_MAX (14 and above are never created by
/// the initial batch, so some of them stay missing).
pub const ACCOUNT_IDS_MAX: u128 = 16;

/// The transfer id space: 1000..1000 + TRANSFER_IDS.
pub const TRANSFER_IDS: u64 = 500;

/// An id from `base..base + count`, occasionally 0 or 2^128 − 1.
fn random_id(random: &mut Random, base: u128, count: u64) -> u128 {
    match random.below(60) {
        0 => 0,
        1 => u128::MAX,
        _ => base + u128::from(random.below(count)),
    }
}

/// An imported timestamp near the clock or next to a stored object's timestamp (from
/// `timestamps`), occasionally invalid or in the future.
fn imported_timestamp(random: &mut Random, clock: u64, timestamps: &[u64]) -> u64 {
    match random.below(40) {
        0 => 0,
        1 => u64::MAX,
        2 => clock + 1,
        3 => clock,
        4..=9 if !timestamps.is_empty() => {
            let recent = &timestamps[timestamps.len().saturating_sub(8)..];
            random
                .pick(recent)
                .saturating_add(random.below(3))
                .saturating_sub(1)
        }
        _ => clock.saturating_sub(random.below(60)),
    }
}

/// The batch's imported mode, flipped for 5% of the events.
fn imported_for_event(random: &mut Random, imported_batch: bool) -> bool {
    if random.chance(5) {
        !imported_batch
    } else {
        imported_batch
    }
}

/// A random account event; `timestamps` are timestamps of stored objects, oldest first.
pub fn account(
    random: &mut Random,
    imported_batch: bool,
    clock: u64,
    timestamps: &[u64],
) -> Account {
    let mut flags = AccountFlags::empty();
    for (flag, percent) in [
        (AccountFlags::LINKED, 18),
        (AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS, 25),
        (AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS, 15),
        (AccountFlags::HISTORY, 40),
        (AccountFlags::CLOSED, 4),
        (AccountFlags(1 << (6 + random.below(10))), 2),
    ] {
        if random.chance(percent) {
            flags = flags | flag;
        }
    }
    let imported = imported_for_event(random, imported_batch);
    if imported {
        flags = flags | AccountFlags::IMPORTED;
    }
    let mut balances = [0u128; 4];
    if random.chance(6) {
        balances[random.below(4) as usize] = 1;
    }
    Account {
        id: random_id(random, 1, ACCOUNT_IDS_MAX as u64),
        debits_pending: balances[0],
        debits_posted: balances[1],
        credits_pending: balances[2],
        credits_posted: balances[3],
        user_data_128: random.pick(&[0, 0, 9, u128::MAX]),
        user_data_64: random.pick(&[0, 0, 7]),
        user_data_32: random.pick(&[0, 0, 5]),
        reserved: u32::from(random.chance(2)),
        ledger: random.pick(&[1, 1, 1, 2, 0]),
        code: random.pick(&[1, 1, 2, 0]),
        flags,
        timestamp: if imported {
            imported_timestamp(random, clock, timestamps)
        } else if random.chance(2) {
            5
        } else {
            0
        },
    }
}

/// The flags of a random transfer: its kind plus occasional extra (often invalid) flags.
fn transfer_flags(random: &mut Random, imported: bool) -> TransferFlags {
    let kind = random.pick(&[
        TransferFlags::empty(),
        TransferFlags::empty(),
        TransferFlags::PENDING,
        TransferFlags::PENDING,
        TransferFlags::POST_PENDING_TRANSFER,
        TransferFlags::POST_PENDING_TRANSFER,
        TransferFlags::VOID_PENDING_TRANSFER,
    ]);
    let resolves = kind != TransferFlags::empty() && kind != TransferFlags::PENDING;
    let extras: &[(TransferFlags, u64)] = if resolves {
        &[
            (TransferFlags::LINKED, 20),
            (TransferFlags::PENDING, 2),
            (TransferFlags::BALANCING_DEBIT, 2),
            (TransferFlags::CLOSING_CREDIT, 1),
            (TransferFlags::VOID_PENDING_TRANSFER, 2),
        ]
    } else {
        &[
            (TransferFlags::LINKED, 20),
            (TransferFlags::BALANCING_DEBIT, 12),
            (TransferFlags::BALANCING_CREDIT, 12),
            (TransferFlags::CLOSING_DEBIT, 4),
            (TransferFlags::CLOSING_CREDIT, 4),
        ]
    };
    let mut flags = kind;
    for (flag, percent) in extras {
        if random.chance(*percent) {
            flags = flags | *flag;
        }
    }
    if random.chance(1) {
        flags = flags | TransferFlags(1 << (9 + random.below(7)));
    }
    if imported {
        flags = flags | TransferFlags::IMPORTED;
    }
    flags
}

/// An amount: mostly small, sometimes at or near 2^128, so that overflows and balancing
/// clamps are reached.
fn amount(random: &mut Random) -> u128 {
    random.pick(&[
        0,
        1,
        2,
        5,
        10,
        100,
        1000,
        AMOUNT_MAX,
        AMOUNT_MAX - 1,
        1 << 127,
        (1 << 127) - 1,
        u128::MAX / 3,
    ])
}

/// A timeout: mostly none; for pending transfers often 1–3 s, rarely one that overflows.
fn timeout(random: &mut Random, flags: TransferFlags) -> u32 {
    let pending = flags.contains(TransferFlags::PENDING);
    if (pending && random.chance(50)) || random.chance(2) {
        random.pick(&[1, 1, 2, 3, 5, u32::MAX])
    } else {
        0
    }
}

/// A random transfer of any kind. `pending_ids` are ids of pending transfers created so far,
/// `timestamps` timestamps of stored objects, oldest first.
pub fn transfer(
    random: &mut Random,
    imported_batch: bool,
    clock: u64,
    pending_ids: &[u128],
    timestamps: &[u64],
) -> Transfer {
    let imported = imported_for_event(random, imported_batch);
    let flags = transfer_flags(random, imported);
    let resolves = flags
        .intersects(TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER);
    // A post/void leaves most fields 0 to inherit them from the pending transfer.
    let inherit = |random: &mut Random, value: u128| {
        if resolves && random.chance(70) {
            0
        } else {
            value
        }
    };
    let debit_account_id = random_id(random, 1, ACCOUNT_IDS_MAX as u64);
    let credit_account_id = random_id(random, 1, ACCOUNT_IDS_MAX as u64);
    let ledger = u128::from(random.pick(&[1u32, 1, 1, 2, 0]));
    let code = u128::from(random.pick(&[1u16, 1, 2, 0]));
    Transfer {
        id: random_id(random, 1000, TRANSFER_IDS),
        debit_account_id: inherit(random, debit_account_id),
        credit_account_id: inherit(random, credit_account_id),
        amount: amount(random),
        pending_id: if !resolves && !random.chance(2) {
            0
        } else if !pending_ids.is_empty() && random.chance(80) {
            random.pick(pending_ids)
        } else {
            random_id(random, 1000, TRANSFER_IDS)
        },
        user_data_128: random.pick(&[0, 0, 9]),
        user_data_64: random.pick(&[0, 0, 7]),
        user_data_32: random.pick(&[0, 0, 3]),
        timeout: timeout(random, flags),
        ledger: inherit(random, ledger) as u32,
        code: inherit(random, code) as u16,
        flags,
        timestamp: if imported {
            imported_timestamp(random, clock, timestamps)
        } else if random.chance(1) {
            5
        } else {
            0
        },
    }
}

/// Resubmits an earlier event, unchanged or with one field changed, to exercise the
/// idempotency (`exists*`) and `id_already_failed` rules.
pub fn resubmission(random: &mut Random, submitted: &[Transfer]) -> Transfer {
    let mut event = random.pick(submitted);
    match random.below(14) {
        0 => event.amount = amount(random),
        10 => event.debit_account_id = random.pick(&[0, 1, 2, 3]),
        11 => event.credit_account_id = random.pick(&[0, 1, 2, 3]),
        12 => event.pending_id = random.pick(&[0, 1000, 1001]),
        13 => event.flags = event.flags | TransferFlags::BALANCING_CREDIT,
        1 => event.user_data_128 = random.pick(&[0, 9, 10]),
        2 => event.user_data_64 = random.pick(&[0, 7, 8]),
        3 => event.user_data_32 = random.pick(&[0, 3, 4]),
        4 => event.ledger = random.pick(&[0, 1, 2]),
        5 => event.code = random.pick(&[0, 1, 2]),
        6 => event.flags = event.flags | TransferFlags::LINKED,
        7 => event.timeout = random.pick(&[0, 1]),
        _ => {}
    }
    event
}

/// A timestamp bound: 0 (unbounded) or near a known object's timestamp, occasionally
/// invalid.
fn timestamp_bound(random: &mut Random, timestamps: &[u64]) -> u64 {
    match random.below(10) {
        0..=4 => 0,
        5 => random.pick(&[u64::MAX, 1 << 63, 1]),
        _ if timestamps.is_empty() => 0,
        _ => random
            .pick(timestamps)
            .saturating_add(random.below(3))
            .saturating_sub(1),
    }
}

/// A random limit, occasionally 0 (invalid) or above the result cap.
fn limit(random: &mut Random) -> u32 {
    random.pick(&[0, 1, 2, 3, 5, 10, 100, 8189, 8190, u32::MAX])
}

/// A random account filter; `timestamps` are timestamps of stored objects.
pub fn account_filter(random: &mut Random, timestamps: &[u64]) -> AccountFilter {
    let mut filter = AccountFilter {
        account_id: random_id(random, 1, ACCOUNT_IDS_MAX as u64),
        user_data_128: random.pick(&[0, 0, 0, 9]),
        user_data_64: random.pick(&[0, 0, 0, 7]),
        user_data_32: random.pick(&[0, 0, 0, 3]),
        code: random.pick(&[0, 0, 1, 2]),
        timestamp_min: timestamp_bound(random, timestamps),
        timestamp_max: timestamp_bound(random, timestamps),
        limit: limit(random),
        flags: AccountFilterFlags(random.below(8) as u32),
        ..AccountFilter::default()
    };
    if random.chance(3) {
        filter.flags = filter.flags | AccountFilterFlags(1 << (3 + random.below(29)));
    }
    if random.chance(3) {
        filter.reserved[random.below(58) as usize] = 1;
    }
    filter
}

/// A random query filter; `timestamps` are timestamps of stored objects.
pub fn query_filter(random: &mut Random, timestamps: &[u64]) -> QueryFilter {
    let mut filter = QueryFilter {
        user_data_128: random.pick(&[0, 0, 0, 9]),
        user_data_64: random.pick(&[0, 0, 0, 7]),
        user_data_32: random.pick(&[0, 0, 0, 3, 5]),
        ledger: random.pick(&[0, 0, 1, 2]),
        code: random.pick(&[0, 0, 1, 2]),
        reserved: [0; 6],
        timestamp_min: timestamp_bound(random, timestamps),
        timestamp_max: timestamp_bound(random, timestamps),
        limit: limit(random),
        flags: QueryFilterFlags(random.below(2) as u32),
    };
    if random.chance(3) {
        filter.flags = filter.flags | QueryFilterFlags(1 << (1 + random.below(31)));
    }
    if random.chance(3) {
        filter.reserved[random.below(6) as usize] = 1;
    }
    filter
}
