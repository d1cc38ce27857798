//! Restore fuzzing: random bytes, truncated images, bit-flipped images (with the stale
//! checksum, and re-sealed with a correct one), and forged headers. `restore` must never
//! panic. It must return `Err` or a state that passes its invariants, and a state it accepts
//! must then survive further operations.

use super::super::image::test_support::reseal;
use super::super::{LedgerState, RestoreError, Sizes};
use crate::ledger::{
    Account, AccountFilter, AccountFilterFlags, AccountFlags, QueryFilter, Transfer,
};
use crate::testing::ledger_gen::{self as generate, ACCOUNT_IDS_MAX, Random};

/// Builds a small ledger by a random walk and returns its image bytes.
fn sample_image(seed: u64, batches: usize) -> Vec<u8> {
    let mut random = Random::new(seed);
    let mut state = LedgerState::with_sizes(Sizes::SMALL);
    let mut clock = 1_000u64;
    let accounts: Vec<Account> = (1..=ACCOUNT_IDS_MAX - 3)
        .map(|id| Account {
            id,
            ledger: 1,
            code: 1,
            flags: random.pick(&[
                AccountFlags::empty(),
                AccountFlags::HISTORY,
                AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
                AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS | AccountFlags::HISTORY,
            ]),
            ..Account::default()
        })
        .collect();
    clock += accounts.len() as u64;
    state.create_accounts(&accounts, clock);
    let mut pending_ids = Vec::new();
    for _ in 0..batches {
        let count = random.below(10) as usize;
        clock += count as u64 + 1 + random.below(2_000_000_000);
        let events: Vec<Transfer> = (0..count)
            .map(|_| generate::transfer(&mut random, false, clock, &pending_ids, &[]))
            .collect();
        state.create_transfers(&events, clock);
        pending_ids.extend(events.iter().map(|event| event.id));
    }
    let mut bytes = Vec::new();
    LedgerState::write_image(&state.image(), &mut bytes).unwrap();
    bytes
}

/// Restores `bytes`; an accepted state must pass its invariants and keep working.
fn restore_and_exercise(bytes: &[u8], random: &mut Random) -> Result<(), RestoreError> {
    let mut state = LedgerState::restore_with_sizes(bytes, Sizes::SMALL)?;
    state
        .check_invariants()
        .expect("restore accepted a bad state");
    let events: Vec<Transfer> = (0..8)
        .map(|_| generate::transfer(random, false, u64::MAX >> 2, &[1000, 1001], &[]))
        .collect();
    state.create_transfers(&events, u64::MAX >> 2);
    let filter = AccountFilter {
        account_id: 1,
        limit: 100,
        flags: AccountFilterFlags::DEBITS | AccountFilterFlags::CREDITS,
        ..AccountFilter::default()
    };
    state.get_account_transfers(&filter);
    state.get_account_balances(&filter);
    let query = QueryFilter {
        limit: 100,
        ..QueryFilter::default()
    };
    state.query_transfers(&query);
    state
        .check_invariants()
        .expect("operations broke a restored state");
    Ok(())
}

// Goal: every truncation of valid images is rejected without a panic.
#[test]
fn truncated_images_are_rejected() {
    let mut random = Random::new(1);
    for seed in 0..3 {
        let bytes = sample_image(seed, 30);
        assert!(restore_and_exercise(&bytes, &mut random).is_ok());
        for len in 0..bytes.len() {
            assert!(
                LedgerState::restore_with_sizes(&bytes[..len], Sizes::SMALL).is_err(),
                "prefix {len} accepted"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(LedgerState::restore_with_sizes(&longer, Sizes::SMALL).is_err());
    }
}

// Goal: single bit flips are caught by the checksum; re-sealed bit flips give Err or a
// consistent, working state.
#[test]
fn bit_flipped_images_never_panic() {
    let mut random = Random::new(2);
    let mut accepted = 0;
    for seed in 0..4 {
        let bytes = sample_image(seed, 40);
        let bits = bytes.len() * 8;
        for round in 0..1500 {
            let bit = if round < 64 * 8 {
                round
            } else {
                random.below(bits as u64) as usize
            };
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                LedgerState::restore_with_sizes(&flipped, Sizes::SMALL).is_err(),
                "stale checksum accepted, bit {bit}"
            );
            reseal(&mut flipped);
            if restore_and_exercise(&flipped, &mut random).is_ok() {
                accepted += 1;
            }
        }
    }
    // Flips of user data or amounts of unrelated fields stay consistent, so some are
    // accepted; most structural flips are rejected.
    assert!(accepted > 0);
}

// Goal: random garbage, with and without a plausible header, never panics, also when it
// gets past the header and checksum into the records.
#[test]
fn garbage_never_panics() {
    let mut random = Random::new(3);
    let template = sample_image(9, 10);
    for round in 0..3000 {
        let len = random.below(600) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| random.next_u64() as u8).collect();
        if round % 2 == 0 {
            let header_len = template.len().min(64).min(bytes.len());
            bytes[..header_len].copy_from_slice(&template[..header_len]);
        }
        if round % 3 == 0 {
            reseal(&mut bytes);
        }
        let _ = restore_and_exercise(&bytes, &mut random);
    }
    // Garbage behind the template's own header, at the length that header implies and
    // resealed, passes the header, length and checksum checks and reaches the decoding of
    // the records themselves.
    for _ in 0..500 {
        let mut bytes: Vec<u8> = (0..template.len())
            .map(|_| random.next_u64() as u8)
            .collect();
        bytes[..64].copy_from_slice(&template[..64]);
        reseal(&mut bytes);
        match restore_and_exercise(&bytes, &mut random) {
            Ok(()) | Err(RestoreError::Inconsistent(_)) => {}
            Err(error) => panic!("stopped before the records: {error}"),
        }
    }
}

// Goal: forged headers with huge or inconsistent counts are rejected before allocating.
#[test]
fn forged_headers_are_rejected() {
    let template = sample_image(4, 5);
    for (offset, value) in [
        (16usize, u64::MAX),
        (24, u64::MAX),
        (24, u64::from(u32::MAX) + 1),
        (32, u64::MAX / 2),
        (40, u64::MAX / 16),
        (16, 0),
        (24, 0),
        (24, 1),
        (32, 1),
        (40, 1),
        (48, 1),
        (8, 2),
        (12, 128),
        (0, 0),
    ] {
        let mut bytes = template.clone();
        bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
        if bytes == template {
            continue;
        }
        reseal(&mut bytes);
        assert!(
            LedgerState::restore_with_sizes(&bytes, Sizes::SMALL).is_err(),
            "offset {offset} value {value}"
        );
    }
}
