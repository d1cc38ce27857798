//! The `syncpay` command: a thin front end that parses arguments and calls
//! the library.
//!
//! `syncpay benchmark` runs a self-contained load on a temporary directory;
//! `format`, `inspect`, `verify`, `repair` and `dump` operate on a ledger
//! directory (all but `format` and `repair` write nothing to it); `node`,
//! `cluster`, `status`, `members` and `client` run and use the replicated
//! mode.
//!
//! Exit codes: 0 success; 1 the command ran and found problems (`verify`
//! with warnings, a benchmark whose invariants failed); 2 it failed (bad
//! arguments, a ledger that does not open, an I/O error).

mod benchmark;
mod cluster;
mod ops;
mod replicated;
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
enum MembersChange {
    /// Add a node as a learner; returns once it has caught up.
    AddLearner {
        /// Its id.
        id: u64,
        /// Its address.
        addr: String,
    },
    /// Make exactly these nodes the voters (promoting learners, demoting
    /// voters not named), comma-separated ids.
    SetVoters {
        /// The voters.
        ids: String,
    },
    /// Remove nodes from the cluster, comma-separated ids.
    Remove {
        /// The nodes.
        ids: String,
    },
}

#[derive(Subcommand)]
enum ClientCall {
    /// Create accounts with these ids (comma-separated).
    CreateAccounts {
        /// The ids.
        ids: String,
        /// Their ledger.
        #[arg(long, default_value_t = 1)]
        ledger: u32,
        /// Their code.
        #[arg(long, default_value_t = 1)]
        code: u16,
    },
    /// Create one transfer.
    Transfer {
        /// Its id (the idempotency key).
        #[arg(long)]
        id: u128,
        /// The debited account.
        #[arg(long)]
        debit: u128,
        /// The credited account.
        #[arg(long)]
        credit: u128,
        /// The amount.
        #[arg(long)]
        amount: u128,
        /// The ledger.
        #[arg(long, default_value_t = 1)]
        ledger: u32,
        /// The code.
        #[arg(long, default_value_t = 1)]
        code: u16,
    },
    /// Look accounts up (comma-separated ids), linearizably.
    LookupAccounts {
        /// The ids.
        ids: String,
    },
    /// Look transfers up (comma-separated ids), linearizably.
    LookupTransfers {
        /// The ids.
        ids: String,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run one replica of a replicated ledger, serving Raft and clients
    /// over TCP, until Ctrl-C or SIGTERM.
    Node {
        /// The node's id (a positive integer, unique in the cluster).
        #[arg(long)]
        id: u64,
        /// The address to listen on.
        #[arg(long)]
        listen: String,
        /// The node's data directory (created if missing).
        #[arg(long)]
        data: PathBuf,
        /// Initialize a new cluster of these members (`1=ADDR,2=ADDR,...`,
        /// this node among them) if this node's log is empty. Give it to
        /// one node only.
        #[arg(long)]
        init: Option<String>,
        /// Relay writes that reach this node as a follower to the leader
        /// (default: answer with the leader's address).
        #[arg(long)]
        forward: bool,
    },
    /// Start a local cluster of `node` processes on 127.0.0.1, print where
    /// each listens, and stop them all on Ctrl-C.
    Cluster {
        /// Nodes.
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        /// The first node's port; the others follow.
        #[arg(long, default_value_t = 7101)]
        base_port: u16,
        /// Keep the nodes' data here (default: a temporary directory).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// One node's view of the cluster (role, term, log, peers' health and
    /// replication lag), as JSON.
    Status {
        /// The node's address.
        #[arg(long)]
        addr: String,
    },
    /// Change a cluster's membership (through its leader).
    Members {
        /// Addresses of the cluster's nodes, comma-separated.
        #[arg(long)]
        cluster: String,
        #[command(subcommand)]
        change: MembersChange,
    },
    /// Call a replicated ledger through the client library (leader found,
    /// failover retried with the session).
    Client {
        /// Addresses of the cluster's nodes, comma-separated.
        #[arg(long)]
        cluster: String,
        #[command(subcommand)]
        call: ClientCall,
    },
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
        /// Benchmark the replicated ledger with this many replicas instead
        /// (next to the embedded ledger in the same run): batches of
        /// `--transfer-batch-size` from `--clients` clients, then
        /// `--replica-single-clients` clients of one transfer per call.
        #[arg(long, default_value_t = 0)]
        replicas: u64,
        /// With `--replicas`: run the replicas as `syncpay node` processes
        /// (default: in this process), over loopback TCP either way.
        #[arg(long)]
        processes: bool,
        /// With `--replicas`: clients of the single-transfer stage.
        #[arg(long, default_value_t = 64)]
        replica_single_clients: usize,
        /// With `--replicas`: instead of the load stages, SIGKILL the
        /// leader of a cluster of node processes this many times under load
        /// and report the failover times.
        #[arg(long, default_value_t = 0)]
        failovers: u32,
        /// With `--replicas` (in-process): entries the leader proposes at
        /// once [default: the library's, 8].
        #[arg(long)]
        replica_writes_in_flight: Option<usize>,
        /// With `--replicas` (in-process): one entry per client request,
        /// to measure what gathering buys.
        #[arg(long)]
        replica_no_gathering: bool,
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

/// Logs go to stderr at the level `SYNCPAY_LOG` names (error, warn, info,
/// debug, trace; default warn).
fn init_logging() {
    let level = std::env::var("SYNCPAY_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::WARN);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .try_init();
}

fn ids<T: std::str::FromStr>(text: &str) -> Result<Vec<T>, ExitCode> {
    cluster::parse_ids(text).map_err(|message| {
        eprintln!("syncpay: {message}");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let options = LedgerOptions::default();
    match cli.command {
        Command::Node {
            id,
            listen,
            data,
            init,
            forward,
        } => cluster::node(id, &listen, &data, init.as_deref(), forward),
        Command::Cluster {
            nodes,
            base_port,
            data,
        } => cluster::cluster(nodes, base_port, data),
        Command::Status { addr } => cluster::status(&addr),
        Command::Members { cluster, change } => {
            let change = match change {
                MembersChange::AddLearner { id, addr } => {
                    cluster::MemberChange::AddLearner { id, addr }
                }
                MembersChange::SetVoters { ids: list } => match ids(&list) {
                    Ok(list) => cluster::MemberChange::SetVoters(list.into_iter().collect()),
                    Err(code) => return code,
                },
                MembersChange::Remove { ids: list } => match ids(&list) {
                    Ok(list) => cluster::MemberChange::Remove(list.into_iter().collect()),
                    Err(code) => return code,
                },
            };
            cluster::members(&cluster, change)
        }
        Command::Client { cluster, call } => {
            let command = match call {
                ClientCall::CreateAccounts {
                    ids: list,
                    ledger,
                    code,
                } => match ids(&list) {
                    Ok(ids) => cluster::ClientCommand::CreateAccounts { ids, ledger, code },
                    Err(code) => return code,
                },
                ClientCall::Transfer {
                    id,
                    debit,
                    credit,
                    amount,
                    ledger,
                    code,
                } => cluster::ClientCommand::Transfer(syncpay::Transfer {
                    id,
                    debit_account_id: debit,
                    credit_account_id: credit,
                    amount,
                    ledger,
                    code,
                    ..syncpay::Transfer::default()
                }),
                ClientCall::LookupAccounts { ids: list } => match ids(&list) {
                    Ok(ids) => cluster::ClientCommand::LookupAccounts(ids),
                    Err(code) => return code,
                },
                ClientCall::LookupTransfers { ids: list } => match ids(&list) {
                    Ok(ids) => cluster::ClientCommand::LookupTransfers(ids),
                    Err(code) => return code,
                },
            };
            cluster::client(&cluster, command)
        }
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
            replicas,
            processes,
            replica_single_clients,
            failovers,
            replica_writes_in_flight,
            replica_no_gathering,
        } => {
            if replicas > 0 {
                let config = replicated::ReplicatedConfig {
                    replicas,
                    processes,
                    account_count,
                    transfer_count,
                    batch_size: transfer_batch_size.clamp(1, syncpay::BATCH_EVENTS_MAX),
                    clients,
                    single_clients: replica_single_clients,
                    single_stage: std::time::Duration::from_secs_f64(single_stage_seconds.max(0.0)),
                    seed,
                    write_path: syncpay::replication::WritePath {
                        in_flight_max: replica_writes_in_flight
                            .unwrap_or(syncpay::replication::WritePath::default().in_flight_max),
                        gather: !replica_no_gathering,
                    },
                };
                let result = if failovers > 0 {
                    replicated::failovers(&config, failovers)
                } else {
                    replicated::run(config)
                };
                return match result {
                    Ok(report) => {
                        println!("{report}");
                        ExitCode::SUCCESS
                    }
                    Err(error) => {
                        eprintln!("syncpay benchmark failed: {error}");
                        ExitCode::from(2)
                    }
                };
            }
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
