//! The bodies of the fuzz targets, here so that each target's seed corpus
//! also runs as an ordinary test (`tests/fuzz_corpus.rs`) without libFuzzer.
//! Each function must never panic on any input, except through an assertion
//! that a property was violated (which is the bug a fuzzer looks for).

use std::path::Path;
use std::sync::Arc;

use super::{ByteChoices, Journal};
use crate::ledger::state::Sizes;
use crate::storage::io::{Io, OpenMode, SimIo};
use crate::storage::store::StateMachine;
use crate::storage::wal::manifest::{Manifest, ManifestFile};
use crate::storage::wal::{Wal, WalError, WalOptions};

/// Arbitrary bytes as one (or, split at a chosen point, two) segment files
/// of a log, with a manifest listing them, opened by recovery: must yield
/// records or a typed error. Any records it yields must read back through
/// the reader identically, and a repair (planned, then applied) must leave
/// a log that opens and plans no further repair.
pub fn wal_segment_recovery(data: &[u8]) {
    let io = SimIo::new(0);
    let dir = Path::new("/db/wal");
    io.create_dir_all(dir).expect("sim mkdir");
    let (split, rest) = match data.split_first() {
        Some((&split, rest)) => (split as usize, rest),
        None => (0, data),
    };
    let cut = if split > 127 {
        rest.len() * (split - 127) / 128
    } else {
        rest.len()
    };
    let segment_size = 4096u64;
    let mut last_index = 0;
    for (index, part) in [(1u64, &rest[..cut]), (2, &rest[cut..])] {
        if index == 2 && part.is_empty() {
            break;
        }
        let path = dir.join(format!("{index:020}.wal"));
        let file = io.open(&path, OpenMode::CreateNew).expect("sim create");
        let len = (part.len() as u64).min(segment_size);
        file.write_all_at(&part[..len as usize], 0)
            .expect("sim write");
        file.preallocate(segment_size).expect("sim preallocate");
        last_index = index;
    }
    // The log id the first segment's header names (offset 40), so that
    // inputs made from real logs are consistent with their manifest.
    let log_id = rest
        .get(40..48)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let manifest = Manifest {
        last_index,
        ..Manifest::new(log_id)
    };
    ManifestFile::create(&io, dir, manifest).expect("sim manifest");
    let options = WalOptions {
        segment_size_bytes: segment_size,
        record_size_max_bytes: 1024,
        io: Arc::new(io.clone()),
        ..WalOptions::default()
    };
    let typed = |error: &WalError| {
        matches!(
            error,
            WalError::Corrupt { .. }
                | WalError::Io { .. }
                | WalError::InvalidOptions { .. }
                | WalError::UnsupportedFormat { .. }
                | WalError::RepairImpossible { .. }
        )
    };
    match Wal::open(dir, options.clone()) {
        Ok((wal, report)) => {
            let records: Result<Vec<_>, WalError> = wal.iter(wal.first_lsn()).collect();
            let records = records.expect("a recovered log reads back");
            assert_eq!(records.len() as u64, report.next_lsn - report.first_lsn);
        }
        Err(error) if typed(&error) => {}
        Err(other) => panic!("unexpected error kind: {other}"),
    }
    let repair = WalOptions {
        repair: true,
        ..options.clone()
    };
    match Wal::open(dir, repair) {
        Ok((wal, _)) => {
            let records: Result<Vec<_>, WalError> = wal.iter(wal.first_lsn()).collect();
            records.expect("a repaired log reads back");
            drop(wal);
            let again = Wal::plan_repair(dir, &options).expect("a repaired log plans");
            assert!(again.is_empty(), "repair is idempotent: {again:?}");
            Wal::open(dir, options).expect("a repaired log opens");
        }
        Err(error) if typed(&error) => {}
        Err(other) => panic!("unexpected error kind from repair: {other}"),
    }
}

/// Arbitrary bytes as a snapshot file, and as a state machine's snapshot
/// payload: must verify or fail with a typed error, never panic.
pub fn snapshot_decode(data: &[u8]) {
    if let Ok((header, payload)) = crate::storage::snapshot::decode(data) {
        assert_eq!(header.payload_len, payload.len() as u64);
    }
    if let Ok(journal) = Journal::restore(data) {
        // What restored must write back to exactly the same bytes.
        assert_eq!(Journal::image(&journal), data);
    }
}

/// Bytes drive a schedule of appends, truncations, power cuts and crashes
/// against the log and its model (see `testing::wal_model`).
pub fn wal_model(data: &[u8]) {
    let mut choices = ByteChoices::new(data);
    super::wal_model::run_schedule(&mut choices, 0, "fuzz input");
}

/// Bytes drive a walk of random account and transfer batches applied to
/// both the production state machine and the reference model: results,
/// every account and transfer, queries and invariants must agree, also
/// across snapshot round trips (see `testing::ledger_walk`).
pub fn ledger_model(data: &[u8]) {
    let walk = super::ledger_walk::Walk::new(0, super::ledger_gen::Random::from_bytes(data));
    let mut seen = std::collections::BTreeSet::new();
    super::ledger_walk::run(walk, 64, &mut seen);
}

/// Arbitrary bytes as a logged ledger command and as a ledger snapshot
/// image: decoding returns a command or a typed error, restoring returns a
/// consistent state or a typed error; neither panics. What decodes must
/// re-encode to the same bytes.
pub fn ledger_batch_decode(data: &[u8]) {
    if let Ok(command) = crate::ledger::codec::decode(data) {
        let mut bytes = Vec::new();
        crate::ledger::codec::encode(&command, &mut bytes);
        assert_eq!(bytes, data, "a decoded command re-encodes identically");
    }
    if let Ok(state) = crate::ledger::LedgerState::restore_with_sizes(data, Sizes::SMALL)
        && let Err(violation) = state.check_invariants()
    {
        panic!("a restored image violates an invariant: {violation}");
    }
}
