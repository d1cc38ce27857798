//! The `syncpay` command: a thin front end that parses arguments and calls
//! the library.
//!
//! `syncpay benchmark` runs a self-contained load on a temporary directory;
//! `format`, `inspect`, `verify`, `repair` and `dump` operate on a ledger
//! directory (all but `format` and `repair` write nothing to it).
//!
//! Exit codes: 0 success; 1 the command ran and found problems (`verify`
//! with warnings, a benchmark whose invariants failed); 2 it failed (bad
//! arguments, a ledger that does not open, an I/O error).

mod benchmark;
mod ops;
#[allow(dead_code)] // The library's generator; the benchmark uses part of it.
#[path = "../../rng.rs"]
mod rng;

use std::path::PathBuf;
use std::process::ExitCode;

use benchmark::{AccountDistribution, BenchmarkConfig};
use clap::{Parser, Subcommand, ValueEnum};
use syncpay::LedgerOptions;

#[derive(Parser)]
#[command(
    name = "syncpay",
    version,
    about = "Embedded, durable payment ledger engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Distribution {
    Uniform,
    Zipf,
}

/// What `dump` writes.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum DumpWhat {
    Accounts,
    Transfers,
}

/// Output format of `dump`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum DumpFormat {
    Csv,
    Json,
}

#[derive(Subcommand)]
enum InspectWhat {
    /// Decode one log record.
    Record {
        /// Its LSN.
        lsn: u64,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Create a new, empty ledger in DIR (which must be missing or empty).
    Format {
        /// The ledger directory.
        dir: PathBuf,
        /// Log segment size in MiB [default: 64].
        #[arg(long)]
        segment_size_mib: Option<u64>,
    },
    /// Show a ledger's files without changing anything: snapshots (each
    /// verified), log segments with their LSN ranges (every frame
    /// verified), format versions. `inspect DIR record LSN` decodes one
    /// log record.
    Inspect {
        /// The ledger directory.
        dir: PathBuf,
        #[command(subcommand)]
        what: Option<InspectWhat>,
        /// Machine-readable output.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Verify a ledger without changing anything: every checksum, a replay
    /// of the log in memory, the ledger's invariants. Exit code 0: clean;
    /// 1: opens, with warnings (damage a snapshot covers, a damaged older
    /// snapshot, a torn unacknowledged tail); 2: does not open or is
    /// inconsistent.
    Verify {
        /// The ledger directory.
        dir: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Repair a damaged ledger: cut the log at the first damaged record no
    /// valid snapshot covers, moving what is removed to quarantine/ (never
    /// deleting). Refused if the result could not open.
    Repair {
        /// The ledger directory.
        dir: PathBuf,
        /// Show the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Write every account or transfer, in timestamp order, to stdout
    /// (streamed page by page). Opens read-only.
    Dump {
        /// The ledger directory.
        dir: PathBuf,
        /// What to write.
        what: DumpWhat,
        /// Output format: CSV with a header row, or one JSON object per
        /// line. 128-bit values are decimal strings in JSON.
        #[arg(long, value_enum, default_value_t = DumpFormat::Csv)]
        format: DumpFormat,
    },
    /// Create accounts, submit transfers in batches, run lookups and queries,
    /// measure memory and disk, check invariants, and time recovery.
    Benchmark {
        /// Accounts to create.
        #[arg(long, default_value_t = defaults().account_count)]
        account_count: u64,
        /// Transfers to submit.
        #[arg(long, default_value_t = defaults().transfer_count)]
        transfer_count: u64,
        /// Transfers per batch (at most 8189).
        #[arg(long, default_value_t = defaults().transfer_batch_size)]
        transfer_batch_size: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = defaults().clients)]
        clients: usize,
        /// How accounts are chosen for transfers.
        #[arg(long, value_enum, default_value_t = Distribution::Uniform)]
        account_distribution: Distribution,
        /// Skew of the Zipf distribution.
        #[arg(long, default_value_t = 1.0)]
        zipf_exponent: f64,
        /// Percent of transfers that are two-phase (pending, then posted or voided).
        #[arg(long, default_value_t = defaults().two_phase_percent, value_parser = clap::value_parser!(u8).range(0..=100))]
        two_phase_percent: u8,
        /// Requests per lookup/query kind in the read stage.
        #[arg(long, default_value_t = defaults().query_count)]
        query_count: u64,
        /// Seed of the workload.
        #[arg(long, default_value_t = defaults().seed)]
        seed: u64,
        /// Use (and keep) this new, empty directory instead of a temporary one.
        #[arg(long)]
        directory: Option<PathBuf>,
        /// Log segment size in MiB [default: the library's, 64].
        #[arg(long)]
        segment_size_mib: Option<u64>,
        /// Log bytes between automatic checkpoints, in MiB (0: never)
        /// [default: the library's, 1024].
        #[arg(long)]
        checkpoint_interval_mib: Option<u64>,
        /// Client counts of the single-transfer stage (each client creates
        /// one transfer per call, on a ledger of its own), comma-separated;
        /// `none` skips the stage.
        #[arg(long, default_value = "1,16,256", value_parser = parse_client_counts)]
        single_clients: ClientCounts,
        /// The longest a create call waits for concurrent calls to share
        /// its log record, in microseconds [default: the library's, 500].
        #[arg(long)]
        gather_wait_us: Option<u64>,
        /// Seconds each single-transfer stage runs.
        #[arg(long, default_value_t = 2.0)]
        single_stage_seconds: f64,
        /// Do not draw a progress bar.
        #[arg(long)]
        no_progress: bool,
    },
}

/// The library's defaults, which the command line's defaults repeat.
fn defaults() -> BenchmarkConfig {
    BenchmarkConfig::default()
}

/// Client counts of the single-transfer stage.
#[derive(Clone, Debug)]
struct ClientCounts(Vec<usize>);

fn parse_client_counts(text: &str) -> Result<ClientCounts, String> {
    if text.trim() == "none" {
        return Ok(ClientCounts(Vec::new()));
    }
    text.split(',')
        .map(|count| match count.trim().parse::<usize>() {
            Ok(count) if count > 0 => Ok(count),
            _ => Err(format!(
                "{count:?} is not a client count (a positive integer)"
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(ClientCounts)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = LedgerOptions::default();
    match cli.command {
        Command::Format {
            dir,
            segment_size_mib,
        } => {
            let options = match segment_size_mib {
                Some(mib) => options.segment_size_bytes(mib << 20),
                None => options,
            };
            ops::finish(ops::format(&dir, options))
        }
        Command::Inspect { dir, what, json } => match what {
            None => ops::finish(ops::inspect(&dir, &options, json)),
            Some(InspectWhat::Record { lsn }) => {
                ops::finish(ops::inspect_record(&dir, &options, lsn, json))
            }
        },
        Command::Verify { dir, json } => ops::finish(ops::verify(&dir, &options, json)),
        Command::Repair { dir, dry_run, json } => {
            ops::finish(ops::repair(&dir, options, dry_run, json))
        }
        Command::Dump { dir, what, format } => ops::finish(ops::dump(
            &dir,
            &options,
            matches!(what, DumpWhat::Accounts),
            matches!(format, DumpFormat::Json),
        )),
        Command::Benchmark {
            account_count,
            transfer_count,
            transfer_batch_size,
            clients,
            account_distribution,
            zipf_exponent,
            two_phase_percent,
            query_count,
            seed,
            directory,
            segment_size_mib,
            checkpoint_interval_mib,
            single_clients,
            single_stage_seconds,
            gather_wait_us,
            no_progress,
        } => {
            let mut options = options;
            if let Some(us) = gather_wait_us {
                options = options.gather_wait_max(std::time::Duration::from_micros(us));
            }
            if let Some(mib) = segment_size_mib {
                options = options.segment_size_bytes(mib << 20);
            }
            if let Some(mib) = checkpoint_interval_mib {
                options = options.checkpoint_interval_bytes(mib << 20);
            }
            let config = BenchmarkConfig {
                account_count,
                transfer_count,
                transfer_batch_size,
                clients,
                account_distribution: match account_distribution {
                    Distribution::Uniform => AccountDistribution::Uniform,
                    Distribution::Zipf => AccountDistribution::Zipf {
                        exponent: zipf_exponent,
                    },
                },
                two_phase_percent,
                query_count,
                seed,
                directory,
                progress: !no_progress,
                options,
                single_clients: single_clients.0,
                single_stage: std::time::Duration::from_secs_f64(single_stage_seconds.max(0.0)),
            };
            match benchmark::run(config) {
                Ok(report) => {
                    println!("{report}");
                    if report.invariants.is_ok() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(error) => {
                    eprintln!("syncpay benchmark failed: {error}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
