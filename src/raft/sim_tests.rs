//! Seeded cluster simulation: three replicas on the in-process network,
//! each on its own simulated disk, concurrent clients with sessions and
//! retries, and a nemesis that partitions (both ways and one way), drops,
//! delays (so reorders) and duplicates messages, and crashes nodes with
//! power loss, torn writes or a process kill, restarting them from what
//! their disk kept. Then a checker, Jepsen-bank style:
//!
//! - every acknowledged transfer is in the ledger with its acknowledged
//!   timestamp and was acknowledged `Created` (ids are fresh: `exists`
//!   would mean a retry applied twice);
//! - balances are exactly the sum of the transfers applied; debits equal
//!   credits;
//! - linearizable reads never go backwards;
//! - no two nodes lead in one term;
//! - every replica ends with the same state hash at the same index.
//!
//! The schedule (faults, their timing, client choices) comes from the
//! seed; thread scheduling, the log's writer threads and real timers do
//! not, so a seed replays the same schedule, not the same interleaving.
//! `SIM_SEEDS` sets how many seeds run (default 6), `SEED` runs one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use openraft::{BasicNode, SnapshotPolicy};
use parking_lot::Mutex;

use super::local::LocalNetwork;
use super::*;
use crate::ledger::codec::LedgerBatch;
use crate::ledger::{Account, CreateTransferStatus, Transfer};
use crate::rng::SplitMix64;
use crate::storage::wal::WalOptions;
use crate::testing::{CrashMode, SimIo};

const NODES: u64 = 3;
const ACCOUNTS: u128 = 6;
const CLIENTS: u64 = 3;

type Nodes = Arc<Mutex<BTreeMap<NodeId, Arc<RaftNode>>>>;

fn config() -> openraft::Config {
    openraft::Config {
        // Snapshots are proven elsewhere; here every node keeps its whole
        // log so that a restarted node catches up by log replication.
        snapshot_policy: SnapshotPolicy::Never,
        ..default_config()
    }
}

async fn start(network: &LocalNetwork, id: NodeId, io: &SimIo) -> Arc<RaftNode> {
    let wal = WalOptions {
        io: Arc::new(io.clone()),
        ..WalOptions::default()
    };
    let dir = PathBuf::from(format!("/sim/node-{id}"));
    let node = RaftNode::start(id, &dir, config(), wal, network.factory(id))
        .await
        .unwrap_or_else(|e| panic!("node {id} starts: {e}"));
    network.attach(id, node.raft().clone());
    Arc::new(node)
}

/// What the clients saw.
#[derive(Default)]
struct History {
    acknowledged: BTreeMap<u128, u64>,
    unknown: Vec<u128>,
    wrong: Vec<(u128, CreateTransferStatus)>,
}

/// Submits `request` with retries (same session request number) to the
/// leader among the live nodes, until `deadline`.
async fn submit(
    nodes: &Nodes,
    request: ClientRequest,
    deadline: Instant,
) -> Option<command::RequestReply> {
    let mut hint: Option<NodeId> = None;
    let mut attempt = 0u64;
    while Instant::now() < deadline {
        attempt += 1;
        let node = {
            let nodes = nodes.lock();
            let id = hint.filter(|id| nodes.contains_key(id)).unwrap_or_else(|| {
                *nodes
                    .keys()
                    .nth(attempt as usize % nodes.len().max(1))
                    .unwrap_or(&1)
            });
            nodes.get(&id).cloned()
        };
        let Some(node) = node else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        match tokio::time::timeout(Duration::from_secs(2), node.submit(request.clone())).await {
            Ok(Ok(reply)) => return Some(reply),
            Ok(Err(WriteError::NotLeader { leader_id, .. })) => {
                hint = leader_id.filter(|&l| l != node.id());
                if hint.is_none() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Ok(Err(_)) | Err(_) => {
                hint = None;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    None
}

async fn client_loop(
    index: u64,
    seed: u64,
    nodes: Nodes,
    stop: Arc<AtomicBool>,
    history: Arc<Mutex<History>>,
) {
    let mut rng = SplitMix64::new(seed ^ (index << 32));
    let client_id = 0x5151_0000 + u128::from(index);
    let mut request = 0u64;
    while !stop.load(Ordering::Relaxed) {
        request += 1;
        let debit = 1 + u128::from(rng.below(ACCOUNTS as u64));
        let credit = 1 + (debit + u128::from(rng.below(ACCOUNTS as u64 - 1))) % ACCOUNTS;
        let transfer = Transfer {
            id: (u128::from(index) << 64) | u128::from(request),
            debit_account_id: debit,
            credit_account_id: credit,
            amount: 1 + u128::from(rng.below(9)),
            ledger: 1,
            code: 1,
            ..Transfer::default()
        };
        let client_request = ClientRequest {
            session: Some(SessionRequest {
                client_id,
                request,
                acknowledged_below: request,
            }),
            batch: LedgerBatch::CreateTransfers(vec![transfer]),
        };
        let deadline = Instant::now() + Duration::from_secs(8);
        match submit(&nodes, client_request, deadline).await {
            Some(reply) => {
                let output = reply.output.expect("the reply is kept");
                let result = output.transfers[0];
                let mut history = history.lock();
                if result.status == CreateTransferStatus::Created {
                    history.acknowledged.insert(transfer.id, result.timestamp);
                } else {
                    history.wrong.push((transfer.id, result.status));
                }
            }
            None => history.lock().unknown.push(transfer.id),
        }
    }
}

/// Linearizable reads of the total debited; it must never decrease.
async fn read_loop(nodes: Nodes, stop: Arc<AtomicBool>) -> u64 {
    let ids: Vec<u128> = (1..=ACCOUNTS).collect();
    let (mut last, mut reads) = (0u128, 0u64);
    while !stop.load(Ordering::Relaxed) {
        let live: Vec<Arc<RaftNode>> = nodes.lock().values().cloned().collect();
        for node in live {
            if let Ok(Ok(accounts)) =
                tokio::time::timeout(Duration::from_millis(500), node.lookup_accounts(&ids)).await
            {
                let total: u128 = accounts.iter().map(|a| a.debits_posted).sum();
                assert!(
                    total >= last,
                    "a linearizable read went backwards: {total} after {last}"
                );
                last = total;
                reads += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    reads
}

/// Watches every live node's metrics; two leaders in one term fail.
async fn leader_watch(nodes: Nodes, stop: Arc<AtomicBool>) -> BTreeMap<u64, NodeId> {
    let mut leaders = BTreeMap::new();
    while !stop.load(Ordering::Relaxed) {
        let live: Vec<Arc<RaftNode>> = nodes.lock().values().cloned().collect();
        for node in live {
            let metrics = node.raft().metrics().borrow().clone();
            if metrics.state == openraft::ServerState::Leader {
                let leader = *leaders.entry(metrics.current_term).or_insert(node.id());
                assert_eq!(
                    leader,
                    node.id(),
                    "two leaders in term {}",
                    metrics.current_term
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    leaders
}

async fn run_seed(seed: u64) {
    let mut rng = SplitMix64::new(seed);
    let network = LocalNetwork::seeded(seed);
    let disks: BTreeMap<NodeId, SimIo> = (1..=NODES)
        .map(|id| (id, SimIo::new(seed * 16 + id)))
        .collect();
    let nodes: Nodes = Arc::new(Mutex::new(BTreeMap::new()));
    for id in 1..=NODES {
        let node = start(&network, id, &disks[&id]).await;
        nodes.lock().insert(id, node);
    }
    let members: BTreeMap<NodeId, BasicNode> = (1..=NODES)
        .map(|id| (id, BasicNode::new(format!("sim-{id}"))))
        .collect();
    let first = nodes.lock()[&1].clone();
    first.raft().initialize(members).await.expect("initializes");
    let accounts: Vec<Account> = (1..=ACCOUNTS)
        .map(|id| Account {
            id,
            ledger: 1,
            code: 1,
            ..Account::default()
        })
        .collect();
    submit(
        &nodes,
        ClientRequest {
            session: None,
            batch: LedgerBatch::CreateAccounts(accounts),
        },
        Instant::now() + Duration::from_secs(20),
    )
    .await
    .expect("accounts created");

    let stop = Arc::new(AtomicBool::new(false));
    let history = Arc::new(Mutex::new(History::default()));
    let clients: Vec<_> = (1..=CLIENTS)
        .map(|i| {
            tokio::spawn(client_loop(
                i,
                seed,
                Arc::clone(&nodes),
                Arc::clone(&stop),
                Arc::clone(&history),
            ))
        })
        .collect();
    let reader = tokio::spawn(read_loop(Arc::clone(&nodes), Arc::clone(&stop)));
    let watcher = tokio::spawn(leader_watch(Arc::clone(&nodes), Arc::clone(&stop)));

    // The nemesis: a seeded schedule of faults.
    let mut faults = Vec::new();
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(100 + rng.below(300))).await;
        // Half the faults strike the leader, where they hurt most.
        let leader = nodes
            .lock()
            .values()
            .find_map(|n| n.raft().metrics().borrow().current_leader);
        let victim = match leader {
            Some(leader) if rng.chance(1, 2) => leader,
            _ => 1 + rng.below(NODES),
        };
        let others: Vec<NodeId> = (1..=NODES).filter(|&id| id != victim).collect();
        match rng.below(7) {
            0 => {
                network.isolate(victim, &others);
                faults.push(format!("isolate {victim}"));
            }
            1 => {
                let to = others[rng.below(others.len() as u64) as usize];
                network.cut(victim, to);
                faults.push(format!("cut {victim}->{to}"));
            }
            2 => {
                network.heal();
                faults.push("heal".to_string());
            }
            3 => {
                let per_mille = rng.below(300);
                network.set_drop_per_mille(per_mille);
                faults.push(format!("drop {per_mille}‰"));
            }
            4 => {
                let per_mille = rng.below(300);
                network.set_duplicate_per_mille(per_mille);
                network.set_delay_max(Duration::from_micros(rng.below(20_000)));
                faults.push(format!("duplicate {per_mille}‰ and delay"));
            }
            _ => {
                let mode = match rng.below(3) {
                    0 => CrashMode::PowerLoss,
                    1 => CrashMode::TornWrite,
                    _ => CrashMode::ProcessKill,
                };
                faults.push(format!("crash {victim} ({mode:?})"));
                let node = nodes.lock().remove(&victim);
                if let Some(node) = node {
                    let disk = &disks[&victim];
                    // The machine stops: nothing more reaches the disk.
                    disk.cut_power_after(0);
                    network.detach(victim);
                    node.shutdown().await;
                    drop(node);
                    disk.crash(mode);
                    tokio::time::sleep(Duration::from_millis(rng.below(400))).await;
                    let node = start(&network, victim, disk).await;
                    nodes.lock().insert(victim, node);
                }
            }
        }
    }
    // Calm: heal everything and let the clients finish.
    network.heal();
    network.set_drop_per_mille(0);
    network.set_duplicate_per_mille(0);
    network.set_delay_max(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client");
    }
    let reads = reader.await.expect("reader");
    let leaders = watcher.await.expect("watcher");
    let history = std::mem::take(&mut *history.lock());
    let context = format!("SEED={seed} faults {faults:?} leaders {leaders:?} reads {reads}");

    assert!(
        history.wrong.is_empty(),
        "{context}: applied twice: {:?}",
        history.wrong
    );
    assert!(!history.acknowledged.is_empty(), "{context}: no progress");

    // Converge, then check the ledger on every replica.
    let live: Vec<Arc<RaftNode>> = nodes.lock().values().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let states: Vec<_> = live.iter().map(|n| n.state_hash()).collect();
        if states.windows(2).all(|w| w[0] == w[1]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{context}: replicas differ: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for node in &live {
        let mut applied = Vec::new();
        let ids: Vec<u128> = history
            .acknowledged
            .keys()
            .chain(&history.unknown)
            .copied()
            .collect();
        for chunk in ids.chunks(4096) {
            match node
                .read(
                    &ReadRequest::LookupTransfers(chunk.to_vec()),
                    ReadConsistency::Stale,
                )
                .await
            {
                Ok(ReadReply::Transfers(found)) => applied.extend(found),
                other => panic!("{context}: lookup: {other:?}"),
            }
        }
        for transfer in &applied {
            if let Some(&timestamp) = history.acknowledged.get(&transfer.id) {
                assert_eq!(
                    transfer.timestamp, timestamp,
                    "{context}: acknowledged timestamp"
                );
            }
        }
        let acknowledged_found = applied
            .iter()
            .filter(|t| history.acknowledged.contains_key(&t.id))
            .count();
        assert_eq!(
            acknowledged_found,
            history.acknowledged.len(),
            "{context}: node {} lost acknowledged transfers",
            node.id()
        );
        let mut debits = BTreeMap::new();
        let mut credits = BTreeMap::new();
        for t in &applied {
            *debits.entry(t.debit_account_id).or_insert(0u128) += t.amount;
            *credits.entry(t.credit_account_id).or_insert(0u128) += t.amount;
        }
        let ids: Vec<u128> = (1..=ACCOUNTS).collect();
        let accounts = node.lookup_accounts_stale(&ids);
        let total: (u128, u128) = accounts.iter().fold((0, 0), |(d, c), a| {
            (d + a.debits_posted, c + a.credits_posted)
        });
        assert_eq!(total.0, total.1, "{context}: debits equal credits");
        for a in &accounts {
            assert_eq!(
                a.debits_posted,
                debits.get(&a.id).copied().unwrap_or(0),
                "{context}: account {}",
                a.id
            );
            assert_eq!(
                a.credits_posted,
                credits.get(&a.id).copied().unwrap_or(0),
                "{context}: account {}",
                a.id
            );
        }
    }
    for node in live {
        node.shutdown().await;
    }
    println!(
        "SEED={seed}: {} acknowledged, {} unknown, {} leaders, {reads} reads; faults {faults:?}",
        history.acknowledged.len(),
        history.unknown.len(),
        leaders.len()
    );
}

// Goal: under a seeded schedule of network faults and crashes, every
// acknowledged write is applied exactly once, money is conserved, reads
// never go backwards, one leader per term, replicas converge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_schedules_keep_the_bank_invariants() {
    let seeds: Vec<u64> = match std::env::var("SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => {
            let count = std::env::var("SIM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(6u64);
            (1..=count).collect()
        }
    };
    for seed in seeds {
        run_seed(seed).await;
    }
}
