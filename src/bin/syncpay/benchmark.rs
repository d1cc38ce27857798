//! `syncpay benchmark`: a self-contained load run, after `tigerbeetle
//! benchmark`. It opens a ledger in a temporary directory, creates accounts,
//! submits transfers in batches from concurrent clients, then runs a lookup
//! and query stage, measures memory and disk use, checks the invariants,
//! and reopens the ledger to time recovery.
//!
//! The workload is deterministic for a given seed (account choice uniform or
//! Zipf-skewed, a configurable share of two-phase transfers posted or voided
//! in a later batch); the timings are wall-clock measurements of this run.

use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::rng::SplitMix64;
use syncpay::{
    AMOUNT_MAX, Account, AccountFilter, AccountFilterFlags, BATCH_EVENTS_MAX, CreateAccountStatus,
    CreateTransferStatus, Ledger, LedgerOptions, QueryFilter, Transfer, TransferFlags,
};

/// A failed benchmark run: what went wrong, for the person running it.
#[derive(Debug)]
pub struct BenchmarkError(String);

impl fmt::Display for BenchmarkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchmarkError {}

impl From<syncpay::Error> for BenchmarkError {
    fn from(error: syncpay::Error) -> Self {
        BenchmarkError(error.to_string())
    }
}

type Result<T, E = BenchmarkError> = std::result::Result<T, E>;

fn fail(message: impl Into<String>) -> BenchmarkError {
    BenchmarkError(message.into())
}

/// How accounts are chosen for transfers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AccountDistribution {
    /// Every account equally likely.
    Uniform,
    /// Zipf-skewed: account `k` (1-based rank) with weight `1 / k^exponent`.
    Zipf {
        /// The skew; 1.0 is classic Zipf.
        exponent: f64,
    },
}

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchmarkConfig {
    /// Accounts created before the transfers.
    pub account_count: u64,
    /// Transfers submitted (posts and voids of two-phase transfers count).
    pub transfer_count: u64,
    /// Transfers per batch (at most 8189).
    pub transfer_batch_size: usize,
    /// Concurrent clients (threads), each submitting its share of batches.
    pub clients: usize,
    /// How debit and credit accounts are chosen.
    pub account_distribution: AccountDistribution,
    /// Percent of transfers that are two-phase (pending, then posted or
    /// voided in the client's next batch).
    pub two_phase_percent: u8,
    /// Lookup and query requests in the read stage.
    pub query_count: u64,
    /// Seed of the workload.
    pub seed: u64,
    /// Directory to use (kept afterwards); default a temporary one.
    pub directory: Option<PathBuf>,
    /// Show a progress bar (only drawn on a terminal).
    pub progress: bool,
    /// Ledger options (segment size, checkpoint interval).
    pub options: LedgerOptions,
    /// The single-transfer stage: client counts, each run for
    /// `single_stage` on a ledger of its own (empty: skip the stage).
    pub single_clients: Vec<usize>,
    /// How long each single-transfer stage runs.
    pub single_stage: Duration,
}

impl Default for BenchmarkConfig {
    fn default() -> Self {
        BenchmarkConfig {
            account_count: 10_000,
            transfer_count: 10_000_000,
            transfer_batch_size: BATCH_EVENTS_MAX,
            clients: 1,
            account_distribution: AccountDistribution::Uniform,
            two_phase_percent: 0,
            query_count: 100,
            seed: 42,
            directory: None,
            progress: true,
            options: LedgerOptions::default(),
            single_clients: vec![1, 16, 256],
            single_stage: Duration::from_secs(2),
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct BenchmarkReport {
    /// The configuration run.
    pub config_summary: String,
    /// Transfers submitted.
    pub transfers: u64,
    /// Transfers that were not created (any status but `Created`).
    pub transfers_failed: u64,
    /// Time of the transfer stage.
    pub load_duration: Duration,
    /// Batch latencies: p1, p50, p99, p100.
    pub batch_latency: [Duration; 4],
    /// The slowest batches of the load: (sent at, since the load began; latency).
    pub slowest_batches: Vec<(Duration, Duration)>,
    /// Read stage: (name, items, duration).
    pub reads: Vec<(&'static str, u64, Duration)>,
    /// Resident memory added by the ledger, bytes.
    pub resident_bytes: u64,
    /// The ledger's own estimate of its memory, bytes.
    pub estimated_bytes: u64,
    /// Bytes on disk: (log, snapshots).
    pub disk_bytes: (u64, u64),
    /// Invariants checked after the load and after recovery.
    pub invariants: std::result::Result<(), String>,
    /// Time to reopen (snapshot load + log replay) and records replayed.
    pub recovery: (Duration, u64, Option<u64>),
    /// The baseline of the same run: appending as many 144-byte records
    /// (a 128-byte transfer plus a 16-byte frame header) to a plain file,
    /// `fdatasync` after every batch of the same size.
    pub baseline: Duration,
    /// Create calls of the load stage and the logged commands they became.
    pub load_calls_commands: (u64, u64),
    /// The log's `fdatasync` and the apply latencies over the load (and the
    /// account creation before it).
    pub load_fsync_apply: (syncpay::LatencySummary, syncpay::LatencySummary),
    /// The single-transfer stages, in the order run.
    pub single: Vec<SingleStage>,
}

/// One stage of clients each submitting one transfer per call.
#[derive(Clone, Debug)]
pub struct SingleStage {
    /// Concurrent clients.
    pub clients: usize,
    /// Transfers created.
    pub transfers: u64,
    /// How long the stage ran.
    pub duration: Duration,
    /// Call latency: p1, p50, p99, p100.
    pub latency: [Duration; 4],
    /// Logged commands the calls became.
    pub commands: u64,
    /// `fdatasync` calls of the log.
    pub fsyncs: u64,
}

/// Runs the benchmark.
pub fn run(config: BenchmarkConfig) -> Result<BenchmarkReport> {
    if config.transfer_batch_size == 0 || config.transfer_batch_size > BATCH_EVENTS_MAX {
        return Err(fail(format!(
            "--transfer-batch-size must be between 1 and {BATCH_EVENTS_MAX}, got {}",
            config.transfer_batch_size
        )));
    }
    if config.clients == 0 {
        return Err(fail("--clients must be at least 1"));
    }
    let temp;
    let path: PathBuf = match &config.directory {
        Some(path) => path.clone(),
        None => {
            temp = tempfile::tempdir()
                .map_err(|e| fail(format!("cannot create a temporary directory: {e}")))?;
            temp.path().join("ledger")
        }
    };
    let resident_before = resident_bytes();
    // A new ledger only: the workload's ids would collide with an existing
    // one's (every transfer `exists`), which measures nothing.
    let ledger = Ledger::create(&path, config.options.clone()).map_err(|e| {
        if e.kind() == syncpay::ErrorKind::AlreadyExists {
            fail(format!(
                "--directory {} is not empty: the benchmark needs a new, empty directory",
                path.display()
            ))
        } else {
            e.into()
        }
    })?;
    let ledger = Arc::new(ledger);
    create_accounts(&ledger, &config)?;
    let load = run_load(&ledger, &config)?;
    let load_stats = ledger.stats();
    let load_calls_commands = (load_stats.batches, load_stats.commands);
    let load_fsync_apply = (load_stats.fsync_latency, load_stats.apply_latency);
    let reads = run_reads(&ledger, &config, load.transfers_created)?;
    let resident_bytes = resident_bytes().saturating_sub(resident_before);
    let estimated_bytes = ledger.memory_usage()?.total_bytes() as u64;
    let mut invariants = ledger.check_invariants().map_err(|e| e.to_string());
    let ledger = Arc::try_unwrap(ledger).map_err(|_| fail("ledger still shared by a client"))?;
    ledger.close()?;
    let disk_bytes = (
        dir_bytes(&path.join("wal")),
        dir_bytes(&path.join("snapshots")),
    );
    let start = Instant::now();
    let reopened = Ledger::open(&path, config.options.clone())?;
    let recovery_duration = start.elapsed();
    let replayed = reopened.recovery().replayed_records;
    let snapshot_lsn = reopened.recovery().snapshot_lsn;
    if invariants.is_ok() {
        invariants = reopened.check_invariants().map_err(|e| e.to_string());
    }
    drop(reopened);
    let baseline =
        plain_append_baseline(&path, load.transfers_submitted, config.transfer_batch_size)?;
    let mut single = Vec::new();
    for (index, &clients) in config.single_clients.iter().enumerate() {
        let stage_path = path.with_extension(format!("single-{index}"));
        single.push(run_single_stage(&stage_path, &config, clients)?);
        std::fs::remove_dir_all(&stage_path)
            .map_err(|e| fail(format!("cannot remove {}: {e}", stage_path.display())))?;
    }
    Ok(BenchmarkReport {
        config_summary: summary(&config),
        transfers: load.transfers_submitted,
        transfers_failed: load.transfers_submitted - load.transfers_created,
        load_duration: load.duration,
        batch_latency: percentiles(load.latencies),
        slowest_batches: load.slowest,
        reads,
        resident_bytes,
        estimated_bytes,
        disk_bytes,
        invariants,
        recovery: (recovery_duration, replayed, snapshot_lsn),
        baseline,
        load_calls_commands,
        load_fsync_apply,
        single,
    })
}

fn summary(config: &BenchmarkConfig) -> String {
    let distribution = match config.account_distribution {
        AccountDistribution::Uniform => "uniform".to_string(),
        AccountDistribution::Zipf { exponent } => format!("zipf({exponent})"),
    };
    format!(
        "{} accounts, {} transfers in batches of {}, {} client(s), {} account choice, {}% two-phase",
        config.account_count,
        config.transfer_count,
        config.transfer_batch_size,
        config.clients,
        distribution,
        config.two_phase_percent
    )
}

/// Bytes per record of the plain-append baseline: a transfer and a frame
/// header's worth.
const BASELINE_RECORD_BYTES: usize = 144;

/// Appends `records` records of [`BASELINE_RECORD_BYTES`] to a new file
/// beside the ledger directory, `fdatasync` after every `batch` records, and
/// returns the time taken; the file is removed afterwards.
fn plain_append_baseline(ledger: &Path, records: u64, batch: usize) -> Result<Duration> {
    use std::io::Write as _;
    let path = ledger.with_extension("baseline");
    let io = |e: std::io::Error| fail(format!("baseline file {}: {e}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .map_err(io)?;
    let buffer: Vec<u8> = (0..batch * BASELINE_RECORD_BYTES)
        .map(|i| (i % 251) as u8)
        .collect();
    let start = Instant::now();
    let mut remaining = records;
    while remaining > 0 {
        let count = remaining.min(batch as u64) as usize;
        file.write_all(&buffer[..count * BASELINE_RECORD_BYTES])
            .map_err(io)?;
        file.sync_data().map_err(io)?;
        remaining -= count as u64;
    }
    let elapsed = start.elapsed();
    drop(file);
    std::fs::remove_file(&path).map_err(io)?;
    Ok(elapsed)
}

fn account_id(index: u64) -> u128 {
    u128::from(index) + 1
}

fn create_accounts(ledger: &Ledger, config: &BenchmarkConfig) -> Result<()> {
    let ids: Vec<u64> = (0..config.account_count).collect();
    for chunk in ids.chunks(BATCH_EVENTS_MAX) {
        let accounts: Vec<Account> = chunk
            .iter()
            .map(|&i| Account {
                id: account_id(i),
                ledger: 1,
                code: 1,
                ..Account::default()
            })
            .collect();
        let results = ledger.create_accounts(&accounts)?;
        if let Some(failed) = results
            .iter()
            .find(|r| r.status != CreateAccountStatus::Created)
        {
            return Err(fail(format!("account creation failed: {failed:?}")));
        }
    }
    Ok(())
}

/// Chooses account indexes by a distribution (precomputed CDF for Zipf).
pub struct AccountChooser {
    count: u64,
    cdf: Option<Vec<f64>>,
}

impl AccountChooser {
    pub fn new(count: u64, distribution: AccountDistribution) -> Self {
        let cdf = match distribution {
            AccountDistribution::Uniform => None,
            AccountDistribution::Zipf { exponent } => {
                let mut total = 0.0;
                let mut cdf: Vec<f64> = (1..=count)
                    .map(|rank| {
                        total += 1.0 / (rank as f64).powf(exponent);
                        total
                    })
                    .collect();
                for value in &mut cdf {
                    *value /= total;
                }
                Some(cdf)
            }
        };
        AccountChooser { count, cdf }
    }

    fn choose(&self, rng: &mut SplitMix64) -> u64 {
        match &self.cdf {
            None => rng.below(self.count),
            Some(cdf) => {
                let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                (cdf.partition_point(|&p| p < x) as u64).min(self.count - 1)
            }
        }
    }

    fn pair(&self, rng: &mut SplitMix64) -> (u128, u128) {
        let debit = self.choose(rng);
        let mut credit = self.choose(rng);
        while credit == debit {
            credit = (credit + 1 + rng.below(self.count - 1)) % self.count;
        }
        (account_id(debit), account_id(credit))
    }
}

struct LoadResult {
    transfers_submitted: u64,
    transfers_created: u64,
    duration: Duration,
    latencies: Vec<Duration>,
    /// The slowest batches: (when it was sent since the load began, latency).
    slowest: Vec<(Duration, Duration)>,
}

/// Batches listed in the report's slowest batches.
const SLOWEST_LISTED: usize = 5;

/// One client's batches: new transfers plus posts and voids of the pending
/// ones it created in its previous batch.
pub struct Client {
    index: u64,
    rng: SplitMix64,
    next_id: u64,
    pending: Vec<u128>,
}

impl Client {
    /// Client `index` of a run seeded with `seed`.
    pub fn new(index: u64, seed: u64) -> Self {
        Client {
            index,
            rng: SplitMix64::new(seed ^ index.wrapping_mul(0x9E37_79B9)),
            next_id: 0,
            pending: Vec::new(),
        }
    }

    pub fn batch(
        &mut self,
        size: usize,
        chooser: &AccountChooser,
        two_phase_percent: u8,
    ) -> Vec<Transfer> {
        let mut batch = Vec::with_capacity(size);
        let mut resolving = std::mem::take(&mut self.pending);
        while batch.len() < size {
            self.next_id += 1;
            let id = (u128::from(self.index) << 64) | u128::from(self.next_id);
            if let Some(pending_id) = resolving.pop() {
                // A post of `AMOUNT_MAX` posts the full pending amount; a
                // void names no amount (0 means the pending amount).
                let (flags, amount) = if self.rng.chance(9, 10) {
                    (TransferFlags::POST_PENDING_TRANSFER, AMOUNT_MAX)
                } else {
                    (TransferFlags::VOID_PENDING_TRANSFER, 0)
                };
                batch.push(Transfer {
                    id,
                    pending_id,
                    amount,
                    flags,
                    ..Transfer::default()
                });
                continue;
            }
            let (debit_account_id, credit_account_id) = chooser.pair(&mut self.rng);
            let pending = self.rng.below(100) < u64::from(two_phase_percent);
            if pending {
                self.pending.push(id);
            }
            batch.push(Transfer {
                id,
                debit_account_id,
                credit_account_id,
                amount: u128::from(self.rng.range_inclusive(1, 1000)),
                user_data_32: self.rng.range_inclusive(1, 1000) as u32,
                ledger: 1,
                code: 1,
                flags: if pending {
                    TransferFlags::PENDING
                } else {
                    TransferFlags::empty()
                },
                ..Transfer::default()
            });
        }
        // Pending transfers not resolved in this batch wait for the next.
        self.pending.extend(resolving);
        batch
    }
}

fn progress_bar(config: &BenchmarkConfig) -> indicatif::ProgressBar {
    if !config.progress || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(config.transfer_count);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} transfers {per_sec}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn run_load(ledger: &Arc<Ledger>, config: &BenchmarkConfig) -> Result<LoadResult> {
    let chooser = Arc::new(AccountChooser::new(
        config.account_count.max(2),
        config.account_distribution,
    ));
    let bar = progress_bar(config);
    let created = Arc::new(AtomicU64::new(0));
    let clients = config.clients.max(1) as u64;
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|index| {
            let share = config.transfer_count / clients
                + u64::from(index < config.transfer_count % clients);
            let ledger = Arc::clone(ledger);
            let chooser = Arc::clone(&chooser);
            let created = Arc::clone(&created);
            let bar = bar.clone();
            let (size, two_phase) = (config.transfer_batch_size, config.two_phase_percent);
            let mut client = Client::new(index, config.seed);
            std::thread::spawn(move || -> Result<Vec<(Duration, Duration)>> {
                let mut latencies = Vec::new();
                let mut remaining = share;
                while remaining > 0 {
                    let batch = client.batch(size.min(remaining as usize), &chooser, two_phase);
                    let sent = Instant::now();
                    let results = ledger.create_transfers(&batch)?;
                    latencies.push((sent - start, sent.elapsed()));
                    let ok = results
                        .iter()
                        .filter(|r| r.status == CreateTransferStatus::Created)
                        .count();
                    created.fetch_add(ok as u64, Ordering::Relaxed);
                    bar.inc(batch.len() as u64);
                    remaining -= batch.len() as u64;
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut timed = Vec::new();
    for thread in threads {
        let client = thread
            .join()
            .map_err(|_| fail("a benchmark client panicked"))?;
        timed.extend(client?);
    }
    let duration = start.elapsed();
    bar.finish_and_clear();
    let latencies = timed.iter().map(|(_, latency)| *latency).collect();
    timed.sort_unstable_by_key(|(_, latency)| std::cmp::Reverse(*latency));
    timed.truncate(SLOWEST_LISTED);
    Ok(LoadResult {
        transfers_submitted: config.transfer_count,
        transfers_created: created.load(Ordering::Relaxed),
        duration,
        latencies,
        slowest: timed,
    })
}

/// Runs `clients` threads, each creating one transfer per call, for
/// `config.single_stage` on a new ledger in `path` with the configured
/// accounts: what concurrent single-payment callers get (gathering).
fn run_single_stage(path: &Path, config: &BenchmarkConfig, clients: usize) -> Result<SingleStage> {
    if clients == 0 {
        return Err(fail("a single-transfer stage needs at least 1 client"));
    }
    let ledger = Arc::new(Ledger::create(path, config.options.clone())?);
    create_accounts(&ledger, config)?;
    let before = ledger.stats();
    let chooser = Arc::new(AccountChooser::new(
        config.account_count.max(2),
        config.account_distribution,
    ));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let barrier = Arc::new(std::sync::Barrier::new(clients + 1));
    let threads: Vec<_> = (0..clients as u64)
        .map(|index| {
            let (ledger, chooser) = (Arc::clone(&ledger), Arc::clone(&chooser));
            let (stop, barrier) = (Arc::clone(&stop), Arc::clone(&barrier));
            let mut client = Client::new(index, config.seed);
            std::thread::spawn(move || -> Result<(u64, Vec<Duration>)> {
                let mut latencies = Vec::new();
                let mut created = 0;
                barrier.wait();
                while !stop.load(Ordering::Relaxed) {
                    let batch = client.batch(1, &chooser, 0);
                    let sent = Instant::now();
                    let results = ledger.create_transfers(&batch)?;
                    latencies.push(sent.elapsed());
                    created += u64::from(results[0].status == CreateTransferStatus::Created);
                }
                Ok((created, latencies))
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    std::thread::sleep(config.single_stage);
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut transfers = 0;
    for thread in threads {
        let (created, client) = thread
            .join()
            .map_err(|_| fail("a benchmark client panicked"))??;
        transfers += created;
        latencies.extend(client);
    }
    let duration = start.elapsed();
    let after = ledger.stats();
    let ledger = Arc::try_unwrap(ledger).map_err(|_| fail("ledger still shared by a client"))?;
    ledger.close()?;
    Ok(SingleStage {
        clients,
        transfers,
        duration,
        latency: percentiles(latencies),
        commands: after.commands - before.commands,
        fsyncs: after.fsyncs - before.fsyncs,
    })
}

fn run_reads(
    ledger: &Ledger,
    config: &BenchmarkConfig,
    transfers_created: u64,
) -> Result<Vec<(&'static str, u64, Duration)>> {
    let mut rng = SplitMix64::new(config.seed.wrapping_add(1));
    let accounts = config.account_count.max(1);
    let clients = config.clients.max(1) as u64;
    let per_client = (config.transfer_count / clients).max(1);
    let mut reads = Vec::new();

    let start = Instant::now();
    let mut found = 0u64;
    for _ in 0..config.query_count {
        let ids: Vec<u128> = (0..BATCH_EVENTS_MAX)
            .map(|_| account_id(rng.below(accounts)))
            .collect();
        found += ledger.lookup_accounts(&ids)?.len() as u64;
    }
    reads.push(("lookup_accounts (accounts)", found, start.elapsed()));

    let start = Instant::now();
    let mut found = 0u64;
    if transfers_created > 0 {
        for _ in 0..config.query_count {
            let ids: Vec<u128> = (0..BATCH_EVENTS_MAX)
                .map(|_| {
                    (u128::from(rng.below(clients)) << 64)
                        | u128::from(rng.range_inclusive(1, per_client))
                })
                .collect();
            found += ledger.lookup_transfers(&ids)?.len() as u64;
        }
    }
    reads.push(("lookup_transfers (transfers)", found, start.elapsed()));

    let start = Instant::now();
    for _ in 0..config.query_count {
        let filter = AccountFilter {
            account_id: account_id(rng.below(accounts)),
            limit: 100,
            flags: AccountFilterFlags::DEBITS
                | AccountFilterFlags::CREDITS
                | AccountFilterFlags::REVERSED,
            ..AccountFilter::default()
        };
        ledger.get_account_transfers(&filter)?;
    }
    reads.push((
        "get_account_transfers (queries, limit 100)",
        config.query_count,
        start.elapsed(),
    ));

    let start = Instant::now();
    for _ in 0..config.query_count {
        let filter = QueryFilter {
            user_data_32: rng.range_inclusive(1, 1000) as u32,
            limit: 100,
            ..QueryFilter::default()
        };
        ledger.query_transfers(&filter)?;
    }
    reads.push((
        "query_transfers (queries, limit 100)",
        config.query_count,
        start.elapsed(),
    ));
    Ok(reads)
}

/// p1, p50, p99 and p100 of `latencies` (zeros when empty).
pub fn percentiles(mut latencies: Vec<Duration>) -> [Duration; 4] {
    if latencies.is_empty() {
        return [Duration::ZERO; 4];
    }
    latencies.sort_unstable();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    [at(0.01), at(0.50), at(0.99), at(1.0)]
}

/// Resident set size of this process, from `/proc/self/statm` (0 where
/// unavailable).
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .filter(|metadata| metadata.is_file())
        .map(|metadata| metadata.len())
        .sum()
}

fn per_second(items: u64, duration: Duration) -> f64 {
    items as f64 / duration.as_secs_f64().max(1e-9)
}

fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1e3)
}

impl fmt::Display for BenchmarkReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "syncpay benchmark: {}", self.config_summary)?;
        writeln!(
            f,
            "load accepted = {:.0} tx/s ({} transfers in {:.2} s, {} not created)",
            per_second(self.transfers, self.load_duration),
            self.transfers,
            self.load_duration.as_secs_f64(),
            self.transfers_failed
        )?;
        let baseline_rate = per_second(self.transfers, self.baseline);
        writeln!(
            f,
            "plain append + fdatasync baseline = {:.0} records/s ({} records of {} bytes, same batches); load / baseline = {:.2}",
            baseline_rate,
            self.transfers,
            BASELINE_RECORD_BYTES,
            per_second(self.transfers, self.load_duration) / baseline_rate.max(1e-9)
        )?;
        let (calls, commands) = self.load_calls_commands;
        writeln!(
            f,
            "gathering = {calls} calls in {commands} logged commands ({:.2} calls per command)",
            calls as f64 / commands.max(1) as f64
        )?;
        let [p1, p50, p99, p100] = self.batch_latency;
        writeln!(
            f,
            "batch latency p1 = {}, p50 = {}, p99 = {}, p100 = {}",
            millis(p1),
            millis(p50),
            millis(p99),
            millis(p100)
        )?;
        let slowest: Vec<String> = self
            .slowest_batches
            .iter()
            .map(|(at, latency)| format!("{} at {:.2} s", millis(*latency), at.as_secs_f64()))
            .collect();
        writeln!(f, "slowest batches = {}", slowest.join(", "))?;
        let ms = |ns: u64| millis(Duration::from_nanos(ns));
        let (fsync, apply) = &self.load_fsync_apply;
        writeln!(
            f,
            "log fdatasync p50 = {}, p99 = {}, max = {} ({} syncs); apply p50 = {}, p99 = {}, max = {}",
            ms(fsync.p50_ns),
            ms(fsync.p99_ns),
            ms(fsync.max_ns),
            fsync.count,
            ms(apply.p50_ns),
            ms(apply.p99_ns),
            ms(apply.max_ns)
        )?;
        for (name, items, duration) in &self.reads {
            writeln!(
                f,
                "{name}: {items} in {} = {:.0}/s",
                millis(*duration),
                per_second(*items, *duration)
            )?;
        }
        let one_client = self
            .single
            .iter()
            .find(|stage| stage.clients == 1)
            .map(|stage| per_second(stage.transfers, stage.duration));
        for stage in &self.single {
            let rate = per_second(stage.transfers, stage.duration);
            let [_, p50, p99, p100] = stage.latency;
            let ratio = one_client.map_or(String::new(), |one| {
                format!(" = {:.1}x one client", rate / one.max(1e-9))
            });
            writeln!(
                f,
                "single-transfer calls, {} client(s): {:.0} tx/s{ratio} ({} in {:.2} s; {:.1} calls per command, {:.1} per fsync; latency p50 = {}, p99 = {}, p100 = {})",
                stage.clients,
                rate,
                stage.transfers,
                stage.duration.as_secs_f64(),
                stage.transfers as f64 / stage.commands.max(1) as f64,
                stage.transfers as f64 / stage.fsyncs.max(1) as f64,
                millis(p50),
                millis(p99),
                millis(p100)
            )?;
        }
        let stored = (self.transfers - self.transfers_failed).max(1);
        writeln!(
            f,
            "resident memory = {:.1} MiB ({:.0} bytes per stored transfer; ledger estimate {:.0} bytes per transfer)",
            self.resident_bytes as f64 / (1 << 20) as f64,
            self.resident_bytes as f64 / stored as f64,
            self.estimated_bytes as f64 / stored as f64
        )?;
        writeln!(
            f,
            "bytes on disk = {:.1} MiB log + {:.1} MiB snapshots",
            self.disk_bytes.0 as f64 / (1 << 20) as f64,
            self.disk_bytes.1 as f64 / (1 << 20) as f64
        )?;
        let (duration, replayed, snapshot) = self.recovery;
        writeln!(
            f,
            "recovery = {:.2} s (snapshot at lsn {}, {} batches replayed)",
            duration.as_secs_f64(),
            snapshot.map_or("none".to_string(), |l| l.to_string()),
            replayed
        )?;
        match &self.invariants {
            Ok(()) => write!(f, "invariants = ok (after load and after recovery)"),
            Err(error) => write!(f, "invariants = VIOLATED: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a small run of the benchmark's own workload is all valid
    // transfers (posts and voids included), so "not created" in a report
    // means a real failure, and the run's invariant checks pass.
    #[test]
    fn small_two_phase_run_creates_every_transfer() {
        for distribution in [
            AccountDistribution::Uniform,
            AccountDistribution::Zipf { exponent: 1.0 },
        ] {
            let config = BenchmarkConfig {
                account_count: 100,
                transfer_count: 20_000,
                transfer_batch_size: 500,
                clients: 2,
                account_distribution: distribution,
                two_phase_percent: 30,
                query_count: 10,
                progress: false,
                single_clients: vec![1, 4],
                single_stage: Duration::from_millis(100),
                ..BenchmarkConfig::default()
            };
            let report = run(config).expect("benchmark run");
            assert_eq!(report.transfers_failed, 0, "{distribution:?}");
            assert_eq!(report.invariants, Ok(()), "{distribution:?}");
            assert_eq!(report.single.len(), 2);
            assert!(report.single.iter().all(|stage| stage.transfers > 0));
        }
    }
}
