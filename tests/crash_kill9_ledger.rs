//! Goal: every batch the ledger acknowledged survives `kill -9` at a random
//! moment with exactly its acknowledged outcome, the invariants hold after
//! recovery, and re-submitting an acknowledged batch is idempotent.
//!
//! Method: this test binary re-executes itself as a child that submits
//! random transfer batches (two-phase, linked chains, balance limits,
//! failures) from several client threads against a real `Ledger` and prints
//! `ack <client> <seq> <status>:<timestamp>,...` after each call returns.
//! Batches are a pure function of (client, seq), so the parent regenerates
//! them. The parent kills the child after a random number of acks
//! (sometimes at once, during recovery), reopens the ledger and checks every
//! acknowledged transfer. 50 cycles by default; `SYNCPAY_KILL9_CYCLES` for
//! a long run; `SEED` replays a schedule.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use syncpay::testing::{Rng, seed_from_env};
use syncpay::{
    AMOUNT_MAX, Account, AccountFlags, CreateTransferStatus, Ledger, LedgerOptions, Transfer,
    TransferFlags,
};

const CHILD_ENV: &str = "SYNCPAY_KILL9_LEDGER_DIR";
const CLIENTS: u64 = 3;
/// The signal number of SIGKILL.
const SIGKILL: i32 = 9;
const ACCOUNTS: u128 = 64;

fn options() -> LedgerOptions {
    LedgerOptions::new()
        .segment_size_bytes(1 << 20)
        .checkpoint_interval_bytes(2 << 20)
        .create_if_missing(true)
}

fn accounts() -> Vec<Account> {
    (1..=ACCOUNTS)
        .map(|id| Account {
            id,
            ledger: 1,
            code: 1,
            // A quarter of the accounts may not go overdrawn: some
            // transfers fail with exceeds_credits, a transient failure.
            flags: if id % 4 == 0 {
                AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
            } else {
                AccountFlags::empty()
            },
            ..Account::default()
        })
        .collect()
}

fn transfer_id(client: u64, seq: u64, index: usize) -> u128 {
    (u128::from(client + 1) << 96) | (u128::from(seq) << 32) | (index as u128 + 1)
}

/// The batch `seq` of `client`: a pure function of both.
fn batch(client: u64, seq: u64) -> Vec<Transfer> {
    let mut rng = Rng::new((client << 48) ^ seq ^ 0xA5A5);
    let len = rng.range_inclusive(1, 40) as usize;
    let mut transfers = Vec::with_capacity(len);
    for index in 0..len {
        let id = transfer_id(client, seq, index);
        let debit = rng.range_inclusive(1, ACCOUNTS as u64) as u128;
        let credit = (debit % ACCOUNTS) + 1;
        let mut transfer = Transfer {
            id,
            debit_account_id: debit,
            credit_account_id: credit,
            amount: u128::from(rng.range_inclusive(1, 100)),
            ledger: 1,
            code: 1,
            ..Transfer::default()
        };
        match rng.below(10) {
            0 | 1 => transfer.flags = TransferFlags::PENDING,
            2 if seq > 0 => {
                // Resolve a transfer of the previous batch, which may or may
                // not be a pending one that was created.
                transfer = Transfer {
                    id,
                    pending_id: transfer_id(client, seq - 1, rng.below(40) as usize),
                    amount: AMOUNT_MAX,
                    flags: if rng.chance(1, 2) {
                        TransferFlags::POST_PENDING_TRANSFER
                    } else {
                        TransferFlags::VOID_PENDING_TRANSFER
                    },
                    ..Transfer::default()
                };
            }
            3 if index + 1 < len => transfer.flags = TransferFlags::LINKED,
            _ => {}
        }
        transfers.push(transfer);
    }
    transfers
}

/// The child: submit batches forever from several clients, reporting acks.
#[test]
fn kill9_ledger_child_process() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Not a child.
    };
    let start_seq: u64 = std::env::var("SYNCPAY_KILL9_START_SEQ")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let ledger = Arc::new(Ledger::open(Path::new(&dir), options()).expect("child open"));
    ledger.create_accounts(&accounts()).expect("accounts");
    println!("ready");
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                for seq in start_seq.. {
                    let results = ledger
                        .create_transfers(&batch(client, seq))
                        .expect("create");
                    let outcome: Vec<String> = results
                        .iter()
                        .map(|r| format!("{}:{}", r.status.as_u32(), r.timestamp))
                        .collect();
                    println!("ack {client} {seq} {}", outcome.join(","));
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
}

struct Ack {
    client: u64,
    seq: u64,
    outcome: Vec<(u32, u64)>,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut parts = line.strip_prefix("ack ")?.split(' ');
    let client = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let outcome = parts
        .next()?
        .split(',')
        .map(|pair| {
            let (status, timestamp) = pair.split_once(':')?;
            Some((status.parse().ok()?, timestamp.parse().ok()?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Ack {
        client,
        seq,
        outcome,
    })
}

#[test]
fn kill9_acknowledged_batches_survive() {
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
    let mut acked: Vec<Ack> = Vec::new();
    for cycle in 0..cycles {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "kill9_ledger_child_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, temp.path())
            .env("SYNCPAY_KILL9_START_SEQ", (cycle * 100_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("piped stdout");
        let wanted = if rng.chance(1, 10) {
            0
        } else {
            rng.range_inclusive(1, 150)
        };
        let mut lines = BufReader::new(stdout).lines();
        if wanted == 0 {
            std::thread::sleep(Duration::from_micros(rng.below(30_000)));
        }
        let mut seen = 0;
        while seen < wanted {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(ack) = parse_ack(&line) {
                acked.push(ack);
                seen += 1;
            }
        }
        child.kill().expect("SIGKILL");
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
            "SEED={seed} cycle {cycle}: child exited on its own (status {status})"
        );
        check(temp.path(), &acked, seed, cycle);
    }
    // Every cycle checks only what was acknowledged: make sure there was some.
    assert!(
        cycles == 0 || !acked.is_empty(),
        "seed {seed}: the child never acknowledged anything"
    );
}

fn check(dir: &Path, acked: &[Ack], seed: u64, cycle: u64) {
    let context = format!("SEED={seed} cycle {cycle}");
    let ledger = Ledger::open(dir, options()).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
    ledger
        .check_invariants()
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    for ack in acked {
        let transfers = batch(ack.client, ack.seq);
        assert_eq!(transfers.len(), ack.outcome.len(), "{context}: batch shape");
        let ids: Vec<u128> = transfers.iter().map(|t| t.id).collect();
        let found = ledger.lookup_transfers(&ids).expect("lookup");
        for (transfer, &(status, timestamp)) in transfers.iter().zip(&ack.outcome) {
            let stored = found.iter().find(|t| t.id == transfer.id);
            if status == CreateTransferStatus::Created.as_u32() {
                let stored = stored.unwrap_or_else(|| {
                    panic!("{context}: acknowledged transfer {:#x} lost", transfer.id)
                });
                assert_eq!(stored.timestamp, timestamp, "{context}: timestamp changed");
                assert_eq!(stored.flags, transfer.flags, "{context}: flags changed");
                let resolves =
                    TransferFlags::POST_PENDING_TRANSFER | TransferFlags::VOID_PENDING_TRANSFER;
                if !transfer.flags.intersects(resolves) {
                    // Posts and voids are stored with the pending transfer's
                    // accounts; everything else exactly as submitted.
                    assert_eq!(
                        (
                            stored.debit_account_id,
                            stored.credit_account_id,
                            stored.amount
                        ),
                        (
                            transfer.debit_account_id,
                            transfer.credit_account_id,
                            transfer.amount
                        ),
                        "{context}: transfer changed"
                    );
                }
            } else {
                assert!(
                    stored.is_none(),
                    "{context}: failed transfer {:#x} exists",
                    transfer.id
                );
            }
        }
    }
    // Idempotent retry: re-submitting acknowledged batches creates nothing
    // and changes no balance.
    let ids: Vec<u128> = (1..=ACCOUNTS).collect();
    let before = ledger.lookup_accounts(&ids).expect("lookup");
    let created = CreateTransferStatus::Created.as_u32();
    let fully_created = acked
        .iter()
        .rev()
        .filter(|ack| ack.outcome.iter().all(|&(status, _)| status == created))
        .take(5);
    for ack in fully_created {
        let results = ledger
            .create_transfers(&batch(ack.client, ack.seq))
            .expect("retry");
        for result in &results {
            assert!(
                matches!(
                    result.status,
                    CreateTransferStatus::Exists | CreateTransferStatus::LinkedEventFailed
                ),
                "{context}: retry of a created transfer gave {:?}",
                result.status
            );
        }
    }
    assert_eq!(
        ledger.lookup_accounts(&ids).expect("lookup"),
        before,
        "{context}: retry moved money"
    );
    ledger
        .check_invariants()
        .unwrap_or_else(|e| panic!("{context}: after retries: {e}"));
}
