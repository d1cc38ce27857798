//! Goal: every operator command works on real directories as documented:
//! right output, right exit code, clear errors, and the read-only commands
//! (`inspect`, `verify`, `dump`, `repair --dry-run`) change no byte of the
//! directory. Method: run the built `syncpay` binary on ledgers made with
//! the library (clean, damaged, locked by an open writer) and compare every
//! file's bytes before and after each command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use syncpay::{Account, Ledger, LedgerOptions, Transfer};

const ACCOUNTS: u128 = 20;

fn syncpay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syncpay"))
        .args(args)
        .output()
        .expect("run syncpay")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn options() -> LedgerOptions {
    LedgerOptions::new()
        .segment_size_bytes(1 << 20)
        .checkpoint_interval_bytes(0)
}

/// A closed ledger with accounts, a snapshot, and transfers after it.
fn build(dir: &Path) -> (u64, u64) {
    let ledger = Ledger::create(dir, options()).unwrap();
    let accounts: Vec<Account> = (1..=ACCOUNTS)
        .map(|id| Account {
            id,
            ledger: 1,
            code: 1,
            ..Account::default()
        })
        .collect();
    ledger.create_accounts(&accounts).unwrap();
    let mut id = 0u128;
    let mut batch = |n: usize| {
        let transfers: Vec<Transfer> = (0..n)
            .map(|_| {
                id += 1;
                Transfer {
                    id,
                    debit_account_id: id % ACCOUNTS + 1,
                    credit_account_id: (id + 1) % ACCOUNTS + 1,
                    amount: 10,
                    ledger: 1,
                    code: 1,
                    ..Transfer::default()
                }
            })
            .collect();
        ledger.create_transfers(&transfers).unwrap();
    };
    for _ in 0..5 {
        batch(100);
    }
    ledger.checkpoint().unwrap();
    for _ in 0..5 {
        batch(100);
    }
    ledger.close().unwrap();
    (ACCOUNTS as u64, 1000)
}

/// Every file under `dir` with its bytes.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                files.insert(path.clone(), Vec::new());
                stack.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

fn assert_unchanged(dir: &Path, before: &BTreeMap<PathBuf, Vec<u8>>, command: &str) {
    let after = contents(dir);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "{command} changed the directory's entries"
    );
    for (path, bytes) in before {
        assert!(
            after[path] == *bytes,
            "{command} changed the bytes of {}",
            path.display()
        );
    }
}

#[test]
fn read_only_commands_report_and_change_no_byte() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("ledger");
    let (accounts, transfers) = build(&dir);
    let d = dir.to_str().unwrap();
    let before = contents(&dir);

    let inspect = syncpay(&["inspect", d]);
    assert_eq!(code(&inspect), 0, "{}", stderr(&inspect));
    let text = stdout(&inspect);
    assert!(
        text.contains("snapshots (1):") && text.contains("verified"),
        "{text}"
    );
    assert!(text.contains("log: lsn 1..12"), "{text}");
    assert!(text.contains("last close clean"), "{text}");
    assert_unchanged(&dir, &before, "inspect");

    let inspect = syncpay(&["inspect", d, "--json"]);
    assert_eq!(code(&inspect), 0);
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(json["log"]["next_lsn"], 12);
    assert_eq!(json["snapshots"][0]["lsn"], 6);
    assert_eq!(json["snapshots"][0]["verified"], true);
    assert_eq!(json["segments"].as_array().unwrap().len(), 1);
    assert_unchanged(&dir, &before, "inspect --json");

    let record = syncpay(&["inspect", d, "record", "2", "--json"]);
    assert_eq!(code(&record), 0, "{}", stderr(&record));
    let json: serde_json::Value = serde_json::from_slice(&record.stdout).unwrap();
    assert_eq!(json["batches"].as_array().unwrap().len(), 1);
    let batch = &json["batches"][0];
    assert_eq!(batch["operation"], "create_transfers");
    assert_eq!(batch["timestamp"], json["timestamp"]);
    assert_eq!(batch["transfers"].as_array().unwrap().len(), 100);
    assert_eq!(batch["transfers"][0]["id"], "1");
    let missing = syncpay(&["inspect", d, "record", "99"]);
    assert_eq!(code(&missing), 2);
    assert!(
        stderr(&missing).contains("outside the log"),
        "{}",
        stderr(&missing)
    );
    assert_unchanged(&dir, &before, "inspect record");

    let verify = syncpay(&["verify", d]);
    assert_eq!(code(&verify), 0, "{}", stderr(&verify));
    let text = stdout(&verify);
    assert!(
        text.contains(&format!("{accounts} accounts, {transfers} transfers")),
        "{text}"
    );
    assert!(text.contains("verdict: clean"), "{text}");
    let verify = syncpay(&["verify", d, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(json["verdict"], "clean");
    assert_eq!(json["recovery"]["snapshot_lsn"], 6);
    assert_eq!(json["recovery"]["replayed_records"], 5);
    assert_unchanged(&dir, &before, "verify");

    let dump = syncpay(&["dump", d, "transfers"]);
    assert_eq!(code(&dump), 0, "{}", stderr(&dump));
    let text = stdout(&dump);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, transfers + 1, "header + one row each");
    assert!(lines[0].starts_with("id,debit_account_id,"));
    assert!(lines[1].starts_with("1,2,3,10,"), "{}", lines[1]);
    let dump = syncpay(&["dump", d, "accounts", "--format", "json"]);
    assert_eq!(code(&dump), 0);
    let rows: Vec<serde_json::Value> = stdout(&dump)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len() as u64, accounts);
    // Every transfer moved 10 from one account to another: the totals agree.
    let total = |field: &str| -> u128 {
        rows.iter()
            .map(|r| r[field].as_str().unwrap().parse::<u128>().unwrap())
            .sum()
    };
    assert_eq!(total("debits_posted"), 10 * u128::from(transfers));
    assert_eq!(total("credits_posted"), 10 * u128::from(transfers));
    assert_unchanged(&dir, &before, "dump");

    let plan = syncpay(&["repair", d, "--dry-run"]);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    assert!(stdout(&plan).contains("nothing to repair"));
    assert_unchanged(&dir, &before, "repair --dry-run");

    // The library's read-only open keeps the same promise.
    let reader = Ledger::open_read_only(&dir, options()).unwrap();
    assert_eq!(reader.lookup_accounts(&[1]).unwrap().len(), 1);
    assert!(reader.checkpoint().unwrap_err().kind() == syncpay::ErrorKind::ReadOnly);
    reader.close().unwrap();
    assert_unchanged(&dir, &before, "open_read_only");
}

#[test]
fn damaged_ledger_is_reported_then_repaired() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("ledger");
    build(&dir);
    let d = dir.to_str().unwrap();
    // Rot one byte inside the last record (after the snapshot, after a
    // clean close): corruption, never a torn tail.
    let inspection = Ledger::inspect(&dir, &options()).unwrap();
    let segment = &inspection.segments[0];
    let mut bytes = std::fs::read(&segment.path).unwrap();
    let at = segment.used_bytes as usize - 1000;
    bytes[at] ^= 0x10;
    std::fs::write(&segment.path, &bytes).unwrap();
    let before = contents(&dir);

    let verify = syncpay(&["verify", d]);
    assert_eq!(code(&verify), 2, "{}", stdout(&verify));
    assert!(stderr(&verify).contains("corrupt"), "{}", stderr(&verify));
    let verify = syncpay(&["verify", d, "--json"]);
    assert_eq!(code(&verify), 2);
    let json: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(json["verdict"], "failed");
    assert_eq!(json["kind"], "corrupt");

    let inspect = syncpay(&["inspect", d]);
    assert_eq!(code(&inspect), 1, "problems found: {}", stderr(&inspect));
    assert!(
        stdout(&inspect).contains("DOES NOT OPEN"),
        "{}",
        stdout(&inspect)
    );

    let plan = syncpay(&["repair", d, "--dry-run", "--json"]);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(json["plan"]["empty"], false);
    assert_eq!(json["plan"]["cut_lsn"], 11);
    assert_unchanged(&dir, &before, "damaged: verify, inspect, repair --dry-run");

    let repair = syncpay(&["repair", d]);
    assert_eq!(code(&repair), 0, "{}", stderr(&repair));
    assert!(
        stdout(&repair).contains("cut the log at lsn 11"),
        "{}",
        stdout(&repair)
    );
    assert!(
        dir.join("wal/quarantine").is_dir(),
        "removed bytes are kept"
    );
    let verify = syncpay(&["verify", d]);
    assert_eq!(code(&verify), 0, "{}{}", stdout(&verify), stderr(&verify));
    assert!(
        stdout(&verify).contains("900 transfers"),
        "{}",
        stdout(&verify)
    );
    // Idempotent: nothing more to do.
    let again = syncpay(&["repair", d, "--dry-run"]);
    assert!(
        stdout(&again).contains("nothing to repair"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn commands_refuse_clearly() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("ledger");
    let d = dir.to_str().unwrap();
    // No ledger: every command but format says so, and nothing is created.
    for args in [
        vec!["inspect", d],
        vec!["verify", d],
        vec!["dump", d, "accounts"],
        vec!["repair", d],
    ] {
        let output = syncpay(&args);
        assert_eq!(code(&output), 2, "{args:?}");
        assert!(
            stderr(&output).contains("no ledger at"),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!dir.exists(), "{args:?} created the directory");
    }
    let format = syncpay(&["format", d]);
    assert_eq!(code(&format), 0, "{}", stderr(&format));
    let again = syncpay(&["format", d]);
    assert_eq!(code(&again), 2);
    assert!(stderr(&again).contains("not empty"), "{}", stderr(&again));
    // A ledger open for writing is locked against every command.
    let writer = Ledger::open(&dir, LedgerOptions::default()).unwrap();
    for args in [
        vec!["inspect", d],
        vec!["verify", d],
        vec!["repair", d, "--dry-run"],
    ] {
        let output = syncpay(&args);
        assert_eq!(code(&output), 2, "{args:?}");
        assert!(
            stderr(&output).contains("locked"),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    drop(writer);
    assert_eq!(code(&syncpay(&["verify", d])), 0);
    // Bad arguments.
    let usage = syncpay(&["dump", d, "balances"]);
    assert_eq!(code(&usage), 2);
    let help = syncpay(&["repair", "--help"]);
    assert_eq!(code(&help), 0);
    assert!(stdout(&help).contains("--dry-run"));
}

#[test]
fn benchmark_reports_its_own_misuse() {
    let zero = syncpay(&["benchmark", "--transfer-batch-size", "0"]);
    assert_eq!(code(&zero), 2);
    assert!(
        stderr(&zero).contains("--transfer-batch-size must be between 1 and 8189, got 0"),
        "{}",
        stderr(&zero)
    );
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("ledger");
    build(&dir);
    let existing = syncpay(&[
        "benchmark",
        "--directory",
        dir.to_str().unwrap(),
        "--transfer-count",
        "10",
    ]);
    assert_eq!(code(&existing), 2);
    assert!(
        stderr(&existing).contains("is not empty"),
        "{}",
        stderr(&existing)
    );
    let fresh = temp.path().join("fresh");
    let small = syncpay(&[
        "benchmark",
        "--directory",
        fresh.to_str().unwrap(),
        "--account-count",
        "10",
        "--transfer-count",
        "2000",
        "--transfer-batch-size",
        "100",
        "--query-count",
        "5",
        "--no-progress",
    ]);
    assert_eq!(code(&small), 0, "{}", stderr(&small));
    assert!(
        stdout(&small).contains("invariants = ok"),
        "{}",
        stdout(&small)
    );
    // The same run measures its baseline, and removes the file it wrote.
    assert!(
        stdout(&small).contains("plain append + fdatasync baseline = "),
        "{}",
        stdout(&small)
    );
    assert!(!fresh.with_extension("baseline").exists());
    assert!(fresh.join("wal").is_dir(), "--directory is kept");
}
