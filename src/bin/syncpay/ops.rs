//! The operator commands: each calls one library function and prints its
//! result for a person, or as JSON with `--json`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use serde_json::{Value, json};
use syncpay::recovery::{LogRecovery, Recovery, RepairPlan};
use syncpay::{
    Account, Ledger, LedgerOptions, LogBatch, RecoveryMode, SegmentInfo, SnapshotInfo, Transfer,
};

/// `println!` that ends the process quietly when stdout is closed (`| head`)
/// instead of panicking, and with exit code 2 on any other write error.
macro_rules! say {
    ($($arg:tt)*) => {
        say_line(format_args!($($arg)*))
    };
}

fn say_line(args: std::fmt::Arguments<'_>) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Err(error) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("syncpay: cannot write output: {error}");
        std::process::exit(2);
    }
}

/// What a command ended with: success, problems found, or failure.
pub enum Outcome {
    Clean,
    Problems,
}

type Result<T = Outcome> = std::result::Result<T, String>;

fn failed(error: syncpay::Error) -> String {
    format!("{} ({})", error, error.kind())
}

/// Exit code 0 clean, 1 problems, 2 failure (message on stderr).
pub fn finish(result: Result) -> ExitCode {
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(message) => {
            eprintln!("syncpay: {message}");
            ExitCode::from(2)
        }
    }
}

fn print_json(value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    say!("{text}");
    Ok(())
}

pub fn format(dir: &Path, options: LedgerOptions) -> Result {
    let ledger = Ledger::create(dir, options).map_err(failed)?;
    ledger.close().map_err(failed)?;
    say!("created an empty ledger in {}", dir.display());
    Ok(Outcome::Clean)
}

fn snapshot_json(snapshot: &SnapshotInfo) -> Value {
    json!({
        "lsn": snapshot.lsn,
        "path": snapshot.path.display().to_string(),
        "bytes": snapshot.bytes,
        "verified": snapshot.problem.is_none(),
        "problem": snapshot.problem,
    })
}

fn segment_json(segment: &SegmentInfo) -> Value {
    json!({
        "index": segment.index,
        "path": segment.path.display().to_string(),
        "first_lsn": segment.first_lsn,
        "end_lsn": segment.end_lsn,
        "used_bytes": segment.used_bytes,
        "file_bytes": segment.file_bytes,
    })
}

fn log_json(log: &LogRecovery) -> Value {
    json!({
        "first_lsn": log.first_lsn,
        "next_lsn": log.next_lsn,
        "records": log.records,
        "bytes_scanned": log.bytes_scanned,
        "previous_close_clean": log.previous_close_clean,
        "torn_tail": log.torn_tail.as_ref().map(|t| json!({
            "path": t.path.display().to_string(),
            "offset": t.offset,
            "lsn": t.lsn,
            "bytes": t.bytes,
        })),
        "damage_skipped": log.damage_skipped.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "dead_segments": log.dead_segments,
        "notes": log.notes,
    })
}

fn print_snapshots(snapshots: &[SnapshotInfo]) {
    say!("snapshots ({}):", snapshots.len());
    for s in snapshots {
        let verdict = match &s.problem {
            None => "verified".to_string(),
            Some(problem) => format!("DAMAGED: {problem}"),
        };
        say!(
            "  lsn {:>12}  {:>12} bytes  {}  {}",
            s.lsn,
            s.bytes,
            verdict,
            s.path.display()
        );
    }
}

pub fn inspect(dir: &Path, options: &LedgerOptions, json: bool) -> Result {
    let inspection = Ledger::inspect(dir, options).map_err(failed)?;
    let problems =
        inspection.log.is_err() || inspection.snapshots.iter().any(|s| s.problem.is_some());
    if json {
        print_json(&json!({
            "path": inspection.path.display().to_string(),
            "log_format_version": inspection.log_format_version,
            "snapshot_format_version": inspection.snapshot_format_version,
            "batch_events_max": inspection.batch_events_max,
            "snapshots": inspection.snapshots.iter().map(snapshot_json).collect::<Vec<_>>(),
            "segments": inspection.segments.iter().map(segment_json).collect::<Vec<_>>(),
            "log": match &inspection.log {
                Ok(log) => log_json(log),
                Err(error) => json!({ "error": error }),
            },
        }))?;
    } else {
        say!("ledger {}", inspection.path.display());
        say!(
            "formats: log {}, snapshot {}; batch limit {} events",
            inspection.log_format_version,
            inspection.snapshot_format_version,
            inspection.batch_events_max
        );
        print_snapshots(&inspection.snapshots);
        match &inspection.log {
            Ok(log) => {
                say!(
                    "log: lsn {}..{} ({} records verified, {} bytes scanned), last close {}",
                    log.first_lsn,
                    log.next_lsn,
                    log.records,
                    log.bytes_scanned,
                    if log.previous_close_clean {
                        "clean"
                    } else {
                        "not clean (crash or still open)"
                    }
                );
                for damage in &log.damage_skipped {
                    say!("  damage skipped (nothing needed lost): {damage}");
                }
                if let Some(torn) = &log.torn_tail {
                    say!(
                        "  torn unacknowledged tail: {} at offset {} (lsn {})",
                        torn.path.display(),
                        torn.offset,
                        torn.lsn
                    );
                }
                for note in &log.notes {
                    say!("  note: {note}");
                }
            }
            Err(error) => say!("log: DOES NOT OPEN: {error}"),
        }
        say!("segments ({}):", inspection.segments.len());
        for s in &inspection.segments {
            say!(
                "  {:>6}  lsn {:>12}..{:<12}  {:>12} of {:>12} bytes  {}",
                s.index,
                s.first_lsn,
                s.end_lsn,
                s.used_bytes,
                s.file_bytes,
                s.path.display()
            );
        }
    }
    Ok(if problems {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}

fn account_json(a: &Account) -> Value {
    json!({
        "id": a.id.to_string(),
        "debits_pending": a.debits_pending.to_string(),
        "debits_posted": a.debits_posted.to_string(),
        "credits_pending": a.credits_pending.to_string(),
        "credits_posted": a.credits_posted.to_string(),
        "user_data_128": a.user_data_128.to_string(),
        "user_data_64": a.user_data_64,
        "user_data_32": a.user_data_32,
        "ledger": a.ledger,
        "code": a.code,
        "flags": a.flags.0,
        "timestamp": a.timestamp,
    })
}

fn transfer_json(t: &Transfer) -> Value {
    json!({
        "id": t.id.to_string(),
        "debit_account_id": t.debit_account_id.to_string(),
        "credit_account_id": t.credit_account_id.to_string(),
        "amount": t.amount.to_string(),
        "pending_id": t.pending_id.to_string(),
        "user_data_128": t.user_data_128.to_string(),
        "user_data_64": t.user_data_64,
        "user_data_32": t.user_data_32,
        "timeout": t.timeout,
        "ledger": t.ledger,
        "code": t.code,
        "flags": t.flags.0,
        "timestamp": t.timestamp,
    })
}

pub fn inspect_record(dir: &Path, options: &LedgerOptions, lsn: u64, json: bool) -> Result {
    let record = Ledger::inspect_record(dir, options, lsn).map_err(failed)?;
    let kind = |batch: &LogBatch| {
        if batch.transfers.is_empty() && !batch.accounts.is_empty() {
            "create_accounts"
        } else {
            "create_transfers"
        }
    };
    if json {
        let batches: Vec<Value> = record
            .batches
            .iter()
            .map(|batch| {
                json!({
                    "operation": kind(batch),
                    "timestamp": batch.timestamp,
                    "accounts": batch.accounts.iter().map(account_json).collect::<Vec<_>>(),
                    "transfers": batch.transfers.iter().map(transfer_json).collect::<Vec<_>>(),
                })
            })
            .collect();
        print_json(&json!({
            "lsn": record.lsn,
            "timestamp": record.timestamp,
            "bytes": record.bytes,
            "batches": batches,
        }))?;
    } else {
        say!(
            "lsn {}: {} batch(es), timestamp {}, {} bytes",
            record.lsn,
            record.batches.len(),
            record.timestamp,
            record.bytes
        );
        for batch in &record.batches {
            say!(
                " {} of {} events, batch timestamp {}",
                kind(batch),
                batch.accounts.len() + batch.transfers.len(),
                batch.timestamp
            );
            for a in &batch.accounts {
                say!("  {}", account_json(a));
            }
            for t in &batch.transfers {
                say!("  {}", transfer_json(t));
            }
        }
    }
    Ok(Outcome::Clean)
}

fn recovery_json(recovery: &Recovery) -> Value {
    json!({
        "snapshot_lsn": recovery.snapshot_lsn,
        "replayed_records": recovery.replayed_records,
        "snapshots_skipped": recovery.snapshots_skipped.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "log": log_json(&recovery.wal),
    })
}

pub fn verify(dir: &Path, options: &LedgerOptions, json: bool) -> Result {
    let verification = match Ledger::verify(dir, options) {
        Ok(verification) => verification,
        Err(error) if json => {
            print_json(&json!({
                "verdict": "failed",
                "error": error.to_string(),
                "kind": error.kind().to_string(),
            }))?;
            return Err(failed(error));
        }
        Err(error) => return Err(format!("verify failed: {}", failed(error))),
    };
    let clean = verification.is_clean();
    if json {
        print_json(&json!({
            "verdict": if clean { "clean" } else { "warnings" },
            "accounts": verification.accounts,
            "transfers": verification.transfers,
            "warnings": verification.warnings,
            "notes": verification.notes,
            "snapshots": verification.snapshots.iter().map(snapshot_json).collect::<Vec<_>>(),
            "recovery": recovery_json(&verification.recovery),
        }))?;
    } else {
        let recovery = &verification.recovery;
        say!(
            "verified {}: {} accounts, {} transfers; snapshot {}, {} log records replayed; invariants hold",
            dir.display(),
            verification.accounts,
            verification.transfers,
            recovery
                .snapshot_lsn
                .map_or("none".to_string(), |lsn| format!("at lsn {lsn}")),
            recovery.replayed_records
        );
        for warning in &verification.warnings {
            say!("warning: {warning}");
        }
        for note in &verification.notes {
            say!("note: {note}");
        }
        say!("verdict: {}", if clean { "clean" } else { "warnings" });
    }
    Ok(if clean {
        Outcome::Clean
    } else {
        Outcome::Problems
    })
}

fn plan_json(plan: &RepairPlan) -> Value {
    json!({
        "empty": plan.is_empty(),
        "damage": plan.wal.damage.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "cut_lsn": plan.wal.cut_lsn,
        "removed_lsns": [plan.wal.removed_lsns.start, plan.wal.removed_lsns.end],
        "removed_records": plan.wal.removed_records(),
        "actions": plan.wal.actions.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>(),
        "snapshots_to_quarantine": plan.snapshots.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    })
}

fn print_plan(plan: &RepairPlan) {
    if plan.is_empty() {
        say!("nothing to repair: the ledger opens as it is");
        return;
    }
    for damage in &plan.wal.damage {
        say!("damage: {damage}");
    }
    match plan.wal.cut_lsn {
        Some(cut) => say!(
            "cut the log at lsn {cut}: {} record(s) removed (lsn {}..{}, the damaged one and all after it), kept in quarantine",
            plan.wal.removed_records(),
            plan.wal.removed_lsns.start,
            plan.wal.removed_lsns.end
        ),
        None => say!("no record removed"),
    }
    for action in &plan.wal.actions {
        say!("  step: {action:?}");
    }
    for snapshot in &plan.snapshots {
        say!("move damaged snapshot to quarantine: {snapshot}");
    }
}

pub fn repair(dir: &Path, options: LedgerOptions, dry_run: bool, json: bool) -> Result {
    let plan = Ledger::plan_repair(dir, &options).map_err(failed)?;
    if dry_run || plan.is_empty() {
        if json {
            print_json(&json!({ "dry_run": dry_run, "plan": plan_json(&plan) }))?;
        } else {
            if dry_run {
                say!("dry run: nothing is changed");
            }
            print_plan(&plan);
        }
        return Ok(Outcome::Clean);
    }
    let ledger = Ledger::open(dir, options.recovery_mode(RecoveryMode::Repair)).map_err(failed)?;
    let recovery = ledger.recovery().clone();
    ledger.close().map_err(failed)?;
    if json {
        print_json(&json!({
            "dry_run": false,
            "plan": plan_json(&plan),
            "recovery": recovery_json(&recovery),
        }))?;
    } else {
        say!("repaired {}:", dir.display());
        print_plan(&plan);
        say!(
            "the ledger now opens at lsn {}..{}",
            recovery.wal.first_lsn,
            recovery.wal.next_lsn
        );
    }
    Ok(Outcome::Clean)
}

fn csv_line(fields: &[String]) -> String {
    fields.join(",")
}

pub fn dump(dir: &Path, options: &LedgerOptions, accounts: bool, json: bool) -> Result {
    let ledger = Ledger::open_read_only(dir, options.clone()).map_err(failed)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_error = None;
    let mut write = |line: String| {
        if write_error.is_none()
            && let Err(e) = writeln!(out, "{line}")
        {
            write_error = Some(e);
        }
    };
    if accounts {
        if !json {
            write("id,debits_pending,debits_posted,credits_pending,credits_posted,user_data_128,user_data_64,user_data_32,ledger,code,flags,timestamp".into());
        }
        ledger
            .for_each_account(|a| {
                write(if json {
                    account_json(a).to_string()
                } else {
                    csv_line(&[
                        a.id.to_string(),
                        a.debits_pending.to_string(),
                        a.debits_posted.to_string(),
                        a.credits_pending.to_string(),
                        a.credits_posted.to_string(),
                        a.user_data_128.to_string(),
                        a.user_data_64.to_string(),
                        a.user_data_32.to_string(),
                        a.ledger.to_string(),
                        a.code.to_string(),
                        a.flags.0.to_string(),
                        a.timestamp.to_string(),
                    ])
                })
            })
            .map_err(failed)?;
    } else {
        if !json {
            write("id,debit_account_id,credit_account_id,amount,pending_id,user_data_128,user_data_64,user_data_32,timeout,ledger,code,flags,timestamp".into());
        }
        ledger
            .for_each_transfer(|t| {
                write(if json {
                    transfer_json(t).to_string()
                } else {
                    csv_line(&[
                        t.id.to_string(),
                        t.debit_account_id.to_string(),
                        t.credit_account_id.to_string(),
                        t.amount.to_string(),
                        t.pending_id.to_string(),
                        t.user_data_128.to_string(),
                        t.user_data_64.to_string(),
                        t.user_data_32.to_string(),
                        t.timeout.to_string(),
                        t.ledger.to_string(),
                        t.code.to_string(),
                        t.flags.0.to_string(),
                        t.timestamp.to_string(),
                    ])
                })
            })
            .map_err(failed)?;
    }
    if let Some(e) = write_error {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(Outcome::Clean);
        }
        return Err(format!("cannot write output: {e}"));
    }
    out.flush()
        .map_err(|e| format!("cannot write output: {e}"))?;
    Ok(Outcome::Clean)
}
