//! Goal: every fuzz target's committed corpus runs as an ordinary test, so
//! CI exercises the targets (and any crash input once added to a corpus)
//! without libFuzzer. Method: feed each file of `fuzz/corpus/<target>/` to
//! the same function the target calls.

use std::path::Path;

fn run_corpus(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "corpus of {target} is empty");
    for path in entries {
        let data = std::fs::read(&path).expect("corpus file");
        eprintln!("{target}: {}", path.display());
        body(&data);
    }
}

#[test]
fn corpus_wal_segment_recovery() {
    run_corpus(
        "wal_segment_recovery",
        syncpay::testing::fuzz::wal_segment_recovery,
    );
}

#[test]
fn corpus_snapshot_decode() {
    run_corpus("snapshot_decode", syncpay::testing::fuzz::snapshot_decode);
}

#[test]
fn corpus_wal_model() {
    run_corpus("wal_model", syncpay::testing::fuzz::wal_model);
}

#[test]
fn corpus_ledger_model() {
    run_corpus("ledger_model", syncpay::testing::fuzz::ledger_model);
}

#[test]
fn corpus_ledger_batch_decode() {
    run_corpus(
        "ledger_batch_decode",
        syncpay::testing::fuzz::ledger_batch_decode,
    );
}
