//! Goal: every record the log acknowledged survives `kill -9` of the process
//! at a random moment, intact, on the real file system.
//!
//! Method: this test binary re-executes itself as a child that appends from
//! several threads to a log in a temporary directory and prints `ack <lsn>
//! <thread> <seq>` after each append returns. The parent reads those lines,
//! sends SIGKILL after a random number of them (sometimes immediately, so
//! the kill also lands during recovery), reopens the log and checks that
//! every acknowledged record is present with exactly its payload and that
//! LSNs are contiguous. 50 cycles by default; `SYNCPAY_KILL9_CYCLES=1000`
//! selects a long run; `SEED` replays a schedule.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use syncpay::storage::wal::{Wal, WalOptions};
use syncpay::testing::{Rng, seed_from_env};

const CHILD_ENV: &str = "SYNCPAY_KILL9_CHILD_DIR";
const CHILD_THREADS: u64 = 4;
/// The signal number of SIGKILL.
const SIGKILL: i32 = 9;

fn options() -> WalOptions {
    WalOptions {
        segment_size_bytes: 256 << 10,
        record_size_max_bytes: 64 << 10,
        ..WalOptions::default()
    }
}

/// The payload of record `seq` of thread `thread`: derived, so the parent
/// can check content without receiving it.
fn payload(thread: u64, seq: u64) -> Vec<u8> {
    let mut rng = Rng::new(thread << 40 ^ seq);
    let len = if seq.is_multiple_of(17) {
        20_000
    } else {
        rng.below(300) as usize
    };
    let mut bytes = vec![0u8; len + 16];
    bytes[..8].copy_from_slice(&thread.to_le_bytes());
    bytes[8..16].copy_from_slice(&seq.to_le_bytes());
    rng.fill(&mut bytes[16..]);
    bytes
}

/// The child: append forever from several threads, reporting acks.
#[test]
fn kill9_child_process() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Not a child: nothing to do.
    };
    let start_seq: u64 = std::env::var("SYNCPAY_KILL9_START_SEQ")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (wal, _) = Wal::open(Path::new(&dir), options()).expect("child open");
    let wal = Arc::new(wal);
    let threads: Vec<_> = (0..CHILD_THREADS)
        .map(|thread| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for seq in start_seq.. {
                    let bytes = payload(thread, seq);
                    let lsn = wal.append(&bytes).expect("child append");
                    // One line per ack, printed only after durability.
                    println!("ack {lsn} {thread} {seq}");
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
}

#[test]
fn kill9_acknowledged_records_survive() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let seed = seed_from_env();
    let mut rng = Rng::new(seed);
    let cycles: u64 = std::env::var("SYNCPAY_KILL9_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let temp = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary path");
    let mut acked: Vec<(u64, u64, u64)> = Vec::new();
    let mut next_seq = 0u64;
    for cycle in 0..cycles {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "kill9_child_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, temp.path())
            .env("SYNCPAY_KILL9_START_SEQ", next_seq.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("piped stdout");
        let wanted = match rng.below(10) {
            0 => 0, // kill during start-up and recovery
            _ => rng.range_inclusive(1, 400),
        };
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        if wanted == 0 {
            std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        }
        while seen < wanted {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(ack) = parse_ack(&line) {
                acked.push(ack);
                seen += 1;
            }
        }
        child.kill().expect("SIGKILL");
        // Lines already written before the kill are acknowledged too.
        for line in lines.map_while(Result::ok) {
            if let Some(ack) = parse_ack(&line) {
                acked.push(ack);
            }
        }
        let status = child.wait().expect("wait");
        // Killed by our SIGKILL, not ended by a failure of its own.
        assert_eq!(
            status.signal(),
            Some(SIGKILL),
            "seed {seed} cycle {cycle}: child exited on its own (status {status})"
        );
        next_seq += 1_000_000;
        check(temp.path(), &acked, seed, cycle);
    }
    // Every cycle checks only what was acknowledged: make sure there was some.
    assert!(
        cycles == 0 || !acked.is_empty(),
        "seed {seed}: the child never acknowledged anything"
    );
}

fn parse_ack(line: &str) -> Option<(u64, u64, u64)> {
    let mut parts = line.strip_prefix("ack ")?.split(' ');
    let lsn = parts.next()?.parse().ok()?;
    let thread = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    Some((lsn, thread, seq))
}

fn check(dir: &Path, acked: &[(u64, u64, u64)], seed: u64, cycle: u64) {
    let (wal, report) = Wal::open(dir, options())
        .unwrap_or_else(|e| panic!("SEED={seed} cycle {cycle}: reopen failed: {e}"));
    let records: Vec<(u64, Vec<u8>)> = wal
        .iter(wal.first_lsn())
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("SEED={seed} cycle {cycle}: read failed: {e}"));
    assert_eq!(records.len() as u64, report.next_lsn - report.first_lsn);
    for (i, (lsn, _)) in records.iter().enumerate() {
        assert_eq!(*lsn, report.first_lsn + i as u64, "SEED={seed}: lsn gap");
    }
    for &(lsn, thread, seq) in acked {
        let Some((_, bytes)) = records.get((lsn - report.first_lsn) as usize) else {
            panic!(
                "SEED={seed} cycle {cycle}: acknowledged lsn {lsn} lost (log ends at {})",
                report.next_lsn
            );
        };
        assert_eq!(
            bytes,
            &payload(thread, seq),
            "SEED={seed} cycle {cycle}: lsn {lsn} damaged"
        );
    }
}
