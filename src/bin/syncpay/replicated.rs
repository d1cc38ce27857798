//! `syncpay benchmark --replicas N`: the replicated ledger under the
//! benchmark's load, next to the embedded ledger in the same run.
//!
//! Stages, each on fresh directories: the embedded ledger (batches from
//! `clients` threads, then `single_clients` threads of one transfer per
//! call for a fixed time); then N replicas (in this process over loopback
//! TCP, or as N `syncpay node` processes with `--processes`) driven the
//! same way through the client library. Every figure is measured at the
//! caller: a batch's latency runs from the call to its results.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use syncpay::replication::{Node, NodeOptions, ReplicatedClient, WritePath};
use syncpay::{Account, BATCH_EVENTS_MAX, CreateTransferStatus, Ledger, LedgerOptions, Transfer};

use crate::benchmark::{
    AccountChooser, AccountDistribution, Client as BenchmarkClient, percentiles,
};

/// What the replicated benchmark runs.
#[derive(Clone, Debug)]
pub struct ReplicatedConfig {
    /// Replicas.
    pub replicas: u64,
    /// Run the replicas as `syncpay node` processes (else in this process).
    pub processes: bool,
    /// Accounts.
    pub account_count: u64,
    /// Transfers of the batch stage.
    pub transfer_count: u64,
    /// Transfers per batch.
    pub batch_size: usize,
    /// Clients of the batch stage.
    pub clients: usize,
    /// Clients of the single-transfer stage.
    pub single_clients: usize,
    /// How long the single-transfer stage runs.
    pub single_stage: Duration,
    /// Seed of the workload.
    pub seed: u64,
    /// The leader's write path (in-process replicas only).
    pub write_path: WritePath,
}

struct Stage {
    transfers: u64,
    duration: Duration,
    latencies: Vec<Duration>,
}

impl Stage {
    /// The stage of clients that each sent `transfers` in calls taking
    /// `latencies`, all within `duration`.
    fn of(clients: Vec<(u64, Vec<Duration>)>, duration: Duration) -> Stage {
        let mut stage = Stage {
            transfers: 0,
            duration,
            latencies: Vec::new(),
        };
        for (transfers, latencies) in clients {
            stage.transfers += transfers;
            stage.latencies.extend(latencies);
        }
        stage
    }

    fn per_second(&self) -> f64 {
        self.transfers as f64 / self.duration.as_secs_f64().max(1e-9)
    }
}

fn accounts(config: &ReplicatedConfig) -> Vec<Vec<Account>> {
    let ids: Vec<u64> = (0..config.account_count.max(2)).collect();
    ids.chunks(BATCH_EVENTS_MAX)
        .map(|chunk| {
            chunk
                .iter()
                .map(|&i| Account {
                    id: u128::from(i) + 1,
                    ledger: 1,
                    code: 1,
                    ..Account::default()
                })
                .collect()
        })
        .collect()
}

fn chooser(config: &ReplicatedConfig) -> Arc<AccountChooser> {
    Arc::new(AccountChooser::new(
        config.account_count.max(2),
        AccountDistribution::Uniform,
    ))
}

// ---- the embedded ledger, for the same-run comparison ----

fn embedded_batches(dir: &Path, config: &ReplicatedConfig) -> Result<Stage, String> {
    let ledger =
        Arc::new(Ledger::create(dir, LedgerOptions::default()).map_err(|e| e.to_string())?);
    for batch in accounts(config) {
        ledger.create_accounts(&batch).map_err(|e| e.to_string())?;
    }
    let chooser = chooser(config);
    let clients = config.clients.max(1) as u64;
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|index| {
            let share = config.transfer_count / clients
                + u64::from(index < config.transfer_count % clients);
            let (ledger, chooser, size) =
                (Arc::clone(&ledger), Arc::clone(&chooser), config.batch_size);
            let mut client = BenchmarkClient::new(index, config.seed);
            std::thread::spawn(move || -> Result<(u64, Vec<Duration>), String> {
                let (mut remaining, mut latencies) = (share, Vec::new());
                while remaining > 0 {
                    let batch = client.batch(size.min(remaining as usize), &chooser, 0);
                    let sent = Instant::now();
                    ledger.create_transfers(&batch).map_err(|e| e.to_string())?;
                    latencies.push(sent.elapsed());
                    remaining -= batch.len() as u64;
                }
                Ok((share, latencies))
            })
        })
        .collect();
    let mut clients = Vec::new();
    for thread in threads {
        clients.push(
            thread
                .join()
                .map_err(|_| "a client panicked".to_string())??,
        );
    }
    let stage = Stage::of(clients, start.elapsed());
    close(ledger)?;
    Ok(stage)
}

fn close(ledger: Arc<Ledger>) -> Result<(), String> {
    Arc::try_unwrap(ledger)
        .map_err(|_| "the ledger is still shared".to_string())?
        .close()
        .map_err(|e| e.to_string())
}

fn embedded_singles(dir: &Path, config: &ReplicatedConfig) -> Result<Stage, String> {
    let ledger =
        Arc::new(Ledger::create(dir, LedgerOptions::default()).map_err(|e| e.to_string())?);
    for batch in accounts(config) {
        ledger.create_accounts(&batch).map_err(|e| e.to_string())?;
    }
    let chooser = chooser(config);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let threads: Vec<_> = (0..config.single_clients.max(1) as u64)
        .map(|index| {
            let (ledger, chooser, stop) =
                (Arc::clone(&ledger), Arc::clone(&chooser), Arc::clone(&stop));
            let mut client = BenchmarkClient::new(1000 + index, config.seed);
            std::thread::spawn(move || -> Result<Vec<Duration>, String> {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let batch = client.batch(1, &chooser, 0);
                    let sent = Instant::now();
                    ledger.create_transfers(&batch).map_err(|e| e.to_string())?;
                    latencies.push(sent.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    std::thread::sleep(config.single_stage);
    stop.store(true, Ordering::Relaxed);
    let mut clients = Vec::new();
    for thread in threads {
        let latencies = thread
            .join()
            .map_err(|_| "a client panicked".to_string())??;
        clients.push((latencies.len() as u64, latencies));
    }
    let stage = Stage::of(clients, start.elapsed());
    close(ledger)?;
    Ok(stage)
}

// ---- the replicated ledger ----

/// A running cluster: in-process nodes or child processes.
enum Cluster {
    InProcess(Vec<Node>),
    Processes(Vec<std::process::Child>),
}

/// `count` free loopback addresses for nodes 1..=count.
fn free_addrs(count: u64) -> Result<BTreeMap<u64, String>, String> {
    (1..=count)
        .map(|id| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .map_err(|e| e.to_string())?;
            Ok((id, format!("127.0.0.1:{port}")))
        })
        .collect()
}

/// Starts `syncpay node` process `id` of `addrs` with its data under
/// `root`; the first node (`init`) initializes the cluster.
fn spawn_node(
    exe: &Path,
    root: &Path,
    addrs: &BTreeMap<u64, String>,
    id: u64,
    init: bool,
) -> Result<std::process::Child, String> {
    crate::cluster::node_command(exe, root, addrs, id, init)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("node {id}: {e}"))
}

/// Stops a node process with SIGTERM (a clean shutdown) and waits for it.
fn terminate(mut child: std::process::Child) {
    crate::cluster::sigterm(&child);
    let _ = child.wait();
}

async fn start_cluster(
    root: &Path,
    config: &ReplicatedConfig,
) -> Result<(Cluster, Vec<String>), String> {
    if config.processes {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let addrs = free_addrs(config.replicas)?;
        let mut children = Vec::new();
        for &id in addrs.keys() {
            children.push(spawn_node(&exe, root, &addrs, id, id == 1)?);
        }
        Ok((Cluster::Processes(children), addrs.into_values().collect()))
    } else {
        let mut nodes = Vec::new();
        for id in 1..=config.replicas {
            let mut options = NodeOptions::default();
            options.write_path = config.write_path;
            let node = Node::start(
                id,
                &root.join(format!("node-{id}")),
                "127.0.0.1:0",
                &options,
            )
            .await
            .map_err(|e| e.to_string())?;
            nodes.push(node);
        }
        let members: BTreeMap<u64, String> = nodes
            .iter()
            .map(|n| (n.status().id, n.addr().to_string()))
            .collect();
        nodes[0]
            .initialize(members.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok((Cluster::InProcess(nodes), members.into_values().collect()))
    }
}

async fn stop_cluster(cluster: Cluster) {
    match cluster {
        Cluster::InProcess(nodes) => {
            for node in nodes {
                node.shutdown().await;
            }
        }
        Cluster::Processes(children) => {
            for child in children {
                terminate(child);
            }
        }
    }
}

async fn replicated_batches(addrs: &[String], config: &ReplicatedConfig) -> Result<Stage, String> {
    let mut setup = ReplicatedClient::new(addrs.to_vec());
    for batch in accounts(config) {
        setup
            .create_accounts(&batch)
            .await
            .map_err(|e| e.to_string())?;
    }
    let chooser = chooser(config);
    let clients = config.clients.max(1) as u64;
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|index| {
            let share = config.transfer_count / clients
                + u64::from(index < config.transfer_count % clients);
            let (chooser, size) = (Arc::clone(&chooser), config.batch_size);
            let mut client = BenchmarkClient::new(index, config.seed);
            let mut replicated = ReplicatedClient::new(addrs.to_vec());
            tokio::spawn(async move {
                let (mut remaining, mut latencies) = (share, Vec::new());
                while remaining > 0 {
                    let batch: Vec<Transfer> =
                        client.batch(size.min(remaining as usize), &chooser, 0);
                    let sent = Instant::now();
                    let results = replicated
                        .create_transfers(&batch)
                        .await
                        .map_err(|e| e.to_string())?;
                    latencies.push(sent.elapsed());
                    if let Some(bad) = results
                        .iter()
                        .find(|r| r.status != CreateTransferStatus::Created)
                    {
                        return Err(format!("a transfer failed: {bad:?}"));
                    }
                    remaining -= batch.len() as u64;
                }
                Ok::<_, String>((share, latencies))
            })
        })
        .collect();
    let mut clients = Vec::new();
    for task in tasks {
        clients.push(task.await.map_err(|e| e.to_string())??);
    }
    Ok(Stage::of(clients, start.elapsed()))
}

async fn replicated_singles(addrs: &[String], config: &ReplicatedConfig) -> Result<Stage, String> {
    let chooser = chooser(config);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..config.single_clients.max(1) as u64)
        .map(|index| {
            let (chooser, stop, done) =
                (Arc::clone(&chooser), Arc::clone(&stop), Arc::clone(&done));
            let mut client = BenchmarkClient::new(1000 + index, config.seed);
            let mut replicated = ReplicatedClient::new(addrs.to_vec());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let batch = client.batch(1, &chooser, 0);
                    let sent = Instant::now();
                    replicated
                        .create_transfers(&batch)
                        .await
                        .map_err(|e| e.to_string())?;
                    latencies.push(sent.elapsed());
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, String>(latencies)
            })
        })
        .collect();
    tokio::time::sleep(config.single_stage).await;
    stop.store(true, Ordering::Relaxed);
    let mut clients = Vec::new();
    for task in tasks {
        let latencies = task.await.map_err(|e| e.to_string())??;
        clients.push((latencies.len() as u64, latencies));
    }
    Ok(Stage::of(clients, start.elapsed()))
}

/// `--failovers K`: K SIGKILLs of the leader of a cluster of `syncpay
/// node` processes under load from `single_clients` clients. For each:
/// the time from the kill until a surviving node reports itself leader of
/// a newer term (polled every 10 ms; openraft's new leader commits a blank
/// entry as it takes over), until the first write after the kill is
/// acknowledged, and the longest a write in flight over the kill waited.
pub fn failovers(config: &ReplicatedConfig, rounds: u32) -> Result<String, String> {
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let root = temp.path();
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let addrs = free_addrs(config.replicas.max(3))?;
        let spawn = |id: u64, first: bool| spawn_node(&exe, root, &addrs, id, first);
        let mut children = BTreeMap::new();
        for &id in addrs.keys() {
            children.insert(id, spawn(id, id == 1)?);
        }
        let all: Vec<String> = addrs.values().cloned().collect();
        let mut setup = ReplicatedClient::new(all.clone());
        for batch in accounts(config) {
            setup.create_accounts(&batch).await.map_err(|e| e.to_string())?;
        }

        // The load: single-transfer clients recording (sent, latency).
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let chooser = chooser(config);
        let tasks: Vec<_> = (0..config.single_clients.max(1) as u64)
            .map(|index| {
                let (chooser, stop) = (Arc::clone(&chooser), Arc::clone(&stop));
                let mut client = BenchmarkClient::new(5000 + index, config.seed);
                let mut replicated = ReplicatedClient::new(all.clone());
                tokio::spawn(async move {
                    let mut calls = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let batch = client.batch(1, &chooser, 0);
                        let sent = Instant::now();
                        replicated.create_transfers(&batch).await.map_err(|e| e.to_string())?;
                        calls.push((sent - started, sent.elapsed()));
                    }
                    Ok::<_, String>(calls)
                })
            })
            .collect();

        let status = |addr: String| async move {
            let client = ReplicatedClient::new([addr.clone()]);
            tokio::time::timeout(Duration::from_millis(500), client.status_of(&addr))
                .await
                .ok()
                .and_then(Result::ok)
        };
        let mut kills = Vec::new();
        let mut elections = Vec::new();
        for _ in 0..rounds {
            tokio::time::sleep(Duration::from_millis(500)).await;
            // The current leader and its term.
            let (leader, term) = loop {
                let mut found = None;
                for addr in addrs.values() {
                    if let Some(s) = status(addr.clone()).await
                        && s.state == "Leader"
                    {
                        found = Some((s.id, s.term));
                    }
                }
                if let Some(found) = found {
                    break found;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            let mut child: std::process::Child = children.remove(&leader).ok_or("no such child")?;
            let killed = Instant::now();
            let _ = child.kill();
            let _ = child.wait();
            kills.push(killed - started);
            let deadline = killed + Duration::from_secs(30);
            'elected: loop {
                for (&id, addr) in &addrs {
                    if id == leader {
                        continue;
                    }
                    if let Some(s) = status(addr.clone()).await
                        && s.state == "Leader"
                        && s.term > term
                    {
                        elections.push(killed.elapsed());
                        break 'elected;
                    }
                }
                if Instant::now() > deadline {
                    return Err("no new leader within 30 s".to_string());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            children.insert(leader, spawn(leader, false)?);
            // Let it catch up before the next kill.
            loop {
                let caught_up = match status(addrs[&leader].clone()).await {
                    Some(s) => s.leader_id.is_some() && s.state != "Learner",
                    None => false,
                };
                if caught_up {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::Relaxed);
        let mut calls = Vec::new();
        for task in tasks {
            calls.extend(task.await.map_err(|e| e.to_string())??);
        }
        for (_, child) in children {
            terminate(child);
        }

        // Per kill: the first write sent after it and acknowledged, and the
        // longest wait of a write in flight at the kill.
        let mut first_ack = Vec::new();
        let mut stalled = Vec::new();
        for &kill in &kills {
            let first = calls
                .iter()
                .filter(|(sent, _)| *sent >= kill)
                .map(|(sent, latency)| *sent + *latency - kill)
                .min();
            first_ack.extend(first);
            let longest = calls
                .iter()
                .filter(|(sent, latency)| *sent < kill && *sent + *latency > kill)
                .map(|(_, latency)| *latency)
                .max();
            stalled.extend(longest);
        }
        let latencies: Vec<Duration> = calls.iter().map(|(_, l)| *l).collect();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "syncpay benchmark --replicas {} --failovers {rounds}: {} SIGKILLs of the leader of {} node processes under {} single-transfer clients ({} writes)",
            config.replicas.max(3),
            kills.len(),
            config.replicas.max(3),
            config.single_clients,
            calls.len()
        );
        let ms = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1e3);
        let line = |name: &str, v: &[Duration]| {
            let [_, p50, p99, max] = percentiles(v.to_vec());
            format!("  {name:<46} p50 {:>6} ms  p99 {:>6} ms  max {:>6} ms", ms(p50), ms(p99), ms(max))
        };
        let _ = writeln!(out, "{}", line("kill -> a new leader (newer term)", &elections));
        let _ = writeln!(out, "{}", line("kill -> first write sent after it acknowledged", &first_ack));
        let _ = writeln!(out, "{}", line("longest wait of a write in flight at the kill", &stalled));
        let _ = writeln!(out, "{}", line("every write's latency, the whole run", &latencies));
        Ok(out)
    })
}

/// The highest term any node reports.
async fn highest_term(addrs: &[String]) -> Option<u64> {
    let mut highest = None;
    for addr in addrs {
        let client = ReplicatedClient::new([addr.clone()]);
        if let Ok(status) = client.status_of(addr).await {
            highest = highest.max(Some(status.term));
        }
    }
    highest
}

/// Bytes of every file under `dir`.
fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|entry| entry.ok())
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => tree_bytes(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn row(out: &mut String, name: &str, stage: &Stage) {
    let [p1, p50, p99, p100] = percentiles(stage.latencies.clone());
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3);
    let _ = writeln!(
        out,
        "  {name:<28} {:>12.0} {:>9} {:>8} {:>8} {:>8} {:>8}",
        stage.per_second(),
        stage.latencies.len(),
        ms(p1),
        ms(p50),
        ms(p99),
        ms(p100)
    );
}

/// Runs the stages and returns the report.
pub fn run(config: ReplicatedConfig) -> Result<String, String> {
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let embedded = embedded_batches(&temp.path().join("embedded-batches"), &config)?;
    let embedded_single = embedded_singles(&temp.path().join("embedded-singles"), &config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (batches, singles, disk, terms) = runtime.block_on(async {
        let root = temp.path().join("replicas-batches");
        let (cluster, addrs) = start_cluster(&root, &config).await?;
        let batches = replicated_batches(&addrs, &config).await;
        let batch_term = highest_term(&addrs).await;
        stop_cluster(cluster).await;
        let disk: Vec<u64> = (1..=config.replicas)
            .map(|id| tree_bytes(&root.join(format!("node-{id}"))))
            .collect();
        let root = temp.path().join("replicas-singles");
        let (cluster, addrs) = start_cluster(&root, &config).await?;
        let mut setup = ReplicatedClient::new(addrs.clone());
        for batch in accounts(&config) {
            setup
                .create_accounts(&batch)
                .await
                .map_err(|e| e.to_string())?;
        }
        let singles = replicated_singles(&addrs, &config).await;
        let single_term = highest_term(&addrs).await;
        stop_cluster(cluster).await;
        Ok::<_, String>((batches?, singles?, disk, [batch_term, single_term]))
    })?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "syncpay benchmark --replicas {}: {} accounts, {} transfers in batches of {} from {} client(s); \
         then {} clients of one transfer per call for {:.1} s; replicas {}",
        config.replicas,
        config.account_count,
        config.transfer_count,
        config.batch_size,
        config.clients,
        config.single_clients,
        config.single_stage.as_secs_f64(),
        if config.processes {
            "as processes over loopback TCP"
        } else {
            "in this process over loopback TCP"
        }
    );
    let _ = writeln!(
        out,
        "  {:<28} {:>12} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "stage", "transfers/s", "calls", "p1 ms", "p50 ms", "p99 ms", "p100 ms"
    );
    row(&mut out, "embedded, batches", &embedded);
    row(
        &mut out,
        &format!("{} replicas, batches", config.replicas),
        &batches,
    );
    row(&mut out, "embedded, single", &embedded_single);
    row(
        &mut out,
        &format!("{} replicas, single", config.replicas),
        &singles,
    );
    // Each stage's cluster starts in term 1; a higher term at its end
    // means elections happened under the load.
    let _ = writeln!(
        out,
        "  Raft term at the end of each replicated stage (1: no election under load): batches {}, single {}",
        terms[0].map_or("?".to_string(), |t| t.to_string()),
        terms[1].map_or("?".to_string(), |t| t.to_string()),
    );
    let embedded_disk = tree_bytes(&temp.path().join("embedded-batches"));
    let per_transfer = |bytes: u64| bytes as f64 / config.transfer_count.max(1) as f64;
    let _ = writeln!(
        out,
        "  disk after the batch stage: embedded {:.1} MiB ({:.0} B/transfer); replicas {} MiB ({} B/transfer)",
        embedded_disk as f64 / f64::from(1 << 20),
        per_transfer(embedded_disk),
        disk.iter()
            .map(|b| format!("{:.1}", *b as f64 / f64::from(1 << 20)))
            .collect::<Vec<_>>()
            .join(" / "),
        disk.iter()
            .map(|b| format!("{:.0}", per_transfer(*b)))
            .collect::<Vec<_>>()
            .join(" / "),
    );
    let _ = writeln!(
        out,
        "  replicated / embedded: batches {:.2}, single {:.2}",
        batches.per_second() / embedded.per_second().max(1e-9),
        singles.per_second() / embedded_single.per_second().max(1e-9)
    );
    Ok(out)
}
