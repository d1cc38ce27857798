//! The `syncpay` command: a thin front end that parses arguments and calls
//! the library.
//!
//! `syncpay benchmark` runs a self-contained load on a temporary directory
//! (see `syncpay::benchmark`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use syncpay::benchmark::{AccountDistribution, BenchmarkConfig};
use syncpay::ledger::Options;

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

#[derive(Subcommand)]
enum Command {
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
        /// Use (and keep) this directory instead of a temporary one.
        #[arg(long)]
        directory: Option<PathBuf>,
        /// Log segment size in MiB.
        #[arg(long, default_value_t = Options::default().segment_size_bytes >> 20)]
        segment_size_mib: u64,
        /// Log bytes between automatic checkpoints, in MiB (0: never).
        #[arg(long, default_value_t = Options::default().checkpoint_interval_bytes >> 20)]
        checkpoint_interval_mib: u64,
        /// Do not draw a progress bar.
        #[arg(long)]
        no_progress: bool,
    },
}

/// The library's defaults, which the command line's defaults repeat.
fn defaults() -> BenchmarkConfig {
    BenchmarkConfig::default()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
            no_progress,
        } => {
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
                options: Options {
                    segment_size_bytes: segment_size_mib << 20,
                    checkpoint_interval_bytes: checkpoint_interval_mib << 20,
                    ..Options::default()
                },
            };
            match syncpay::benchmark::run(config) {
                Ok(report) => {
                    println!("{report}");
                    if report.invariants.is_ok() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(error) => {
                    eprintln!("syncpay benchmark failed: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
