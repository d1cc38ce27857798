//! Three `syncpay node` processes over TCP on 127.0.0.1, under load from
//! concurrent clients, while the test SIGKILLs the leader (and followers)
//! again and again, restarts them from their disks, and wipes one node's
//! disk. Then a checker, Jepsen-bank style:
//!
//! - every acknowledged transfer is in the ledger with its acknowledged
//!   timestamp, and was acknowledged `Created` (ids are fresh, so an
//!   `exists` reply would mean a retry was applied twice);
//! - a transfer whose call gave up is applied at most once (looked up);
//! - every account's balances are the sum of the transfers applied, and
//!   debits equal credits;
//! - every replica ends with the same state hash at the same index.
//!
//! Bounded: 3 processes, about 30 s. `CLUSTER_ROUNDS` changes the number
//! of kill rounds (default 4).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use syncpay::replication::{ClientError, ClientOptions, NodeStatus, ReplicatedClient};
use syncpay::rng::SplitMix64;
use syncpay::{Account, CreateTransferStatus, Transfer};

const ACCOUNTS: u128 = 8;
const CLIENTS: u64 = 4;

struct Cluster {
    exe: PathBuf,
    root: PathBuf,
    addrs: BTreeMap<u64, String>,
    children: BTreeMap<u64, Child>,
}

impl Cluster {
    fn spawn(&mut self, id: u64, init: bool) {
        let mut command = Command::new(&self.exe);
        command
            .arg("node")
            .arg("--id")
            .arg(id.to_string())
            .arg("--listen")
            .arg(&self.addrs[&id])
            .arg("--data")
            .arg(self.dir(id))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if init {
            let members: Vec<String> = self
                .addrs
                .iter()
                .map(|(id, addr)| format!("{id}={addr}"))
                .collect();
            command.arg("--init").arg(members.join(","));
        }
        let child = command.spawn().expect("node process starts");
        self.children.insert(id, child);
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.root.join(format!("node-{id}"))
    }

    fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.children.remove(&id) {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn status(addr: &str) -> Option<NodeStatus> {
    let client = ReplicatedClient::with_options(
        [addr],
        ClientOptions {
            attempt_timeout: Duration::from_secs(1),
            ..ClientOptions::default()
        },
    );
    client.status_of(addr).await.ok()
}

async fn leader(addrs: &BTreeMap<u64, String>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        for addr in addrs.values() {
            if let Some(s) = status(addr).await
                && s.state == "Leader"
            {
                return s.id;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no leader within 30 s");
}

/// Reads the total debited, linearizably, until `stop`; it must never
/// decrease. Returns the number of reads.
async fn read_loop(addrs: Vec<String>, stop: Arc<AtomicBool>) -> u64 {
    let mut client = ReplicatedClient::with_options(
        addrs,
        ClientOptions {
            attempt_timeout: Duration::from_secs(2),
            retry_for: Duration::from_secs(20),
            ..ClientOptions::default()
        },
    );
    let ids: Vec<u128> = (1..=ACCOUNTS).collect();
    let (mut last, mut reads) = (0u128, 0u64);
    while !stop.load(Ordering::Relaxed) {
        match client.lookup_accounts(&ids).await {
            Ok(accounts) => {
                let total: u128 = accounts.iter().map(|a| a.debits_posted).sum();
                assert!(total >= last, "a read went backwards: {total} after {last}");
                last = total;
                reads += 1;
            }
            Err(ClientError::Unavailable { .. }) => {}
            Err(error) => panic!("reader: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reads
}

/// Polls every node until `stop`; two leaders in one term fail the test.
/// Returns the leader of each term seen.
async fn leader_watch(addrs: BTreeMap<u64, String>, stop: Arc<AtomicBool>) -> BTreeMap<u64, u64> {
    let mut leaders: BTreeMap<u64, u64> = BTreeMap::new();
    let started = Instant::now();
    let mut last = BTreeMap::new();
    while !stop.load(Ordering::Relaxed) {
        for addr in addrs.values() {
            let s = status(addr).await;
            let seen = s.as_ref().map(|s| (s.id, s.state.clone(), s.term));
            if last.get(addr) != Some(&seen) {
                eprintln!("watch {:?} {addr}: {seen:?}", started.elapsed());
                last.insert(addr.clone(), seen);
            }
            if let Some(s) = status(addr).await
                && s.state == "Leader"
            {
                let leader = *leaders.entry(s.term).or_insert(s.id);
                assert_eq!(leader, s.id, "two leaders in term {}", s.term);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    leaders
}

/// Waits until the leader reports `id` replicated up to its log.
async fn caught_up(addrs: &BTreeMap<u64, String>, id: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let leader = leader(addrs).await;
        if let Some(s) = status(&addrs[&leader]).await
            && s.peers
                .iter()
                .any(|p| p.id == id && p.matched_index.is_some() && p.lag == Some(0))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("node {id} did not catch up within 30 s");
}

/// What the clients saw.
#[derive(Default)]
struct History {
    /// Acknowledged transfers: id → (transfer, timestamp).
    acknowledged: BTreeMap<u128, (Transfer, u64)>,
    /// Transfers whose call gave up (outcome unknown).
    unknown: BTreeMap<u128, Transfer>,
    /// Replies that were not `Created` (a fresh id must be created).
    wrong: Vec<(u128, CreateTransferStatus)>,
}

async fn client_loop(
    client_index: u64,
    addrs: Vec<String>,
    stop: Arc<AtomicBool>,
    history: Arc<Mutex<History>>,
) {
    let mut client = ReplicatedClient::with_options(
        addrs,
        ClientOptions {
            attempt_timeout: Duration::from_secs(2),
            retry_for: Duration::from_secs(20),
            ..ClientOptions::default()
        },
    );
    let mut rng = SplitMix64::new(client_index);
    let mut next = 0u128;
    while !stop.load(Ordering::Relaxed) {
        next += 1;
        let debit = 1 + u128::from(rng.below(ACCOUNTS as u64));
        let credit = 1 + (debit + u128::from(rng.below(ACCOUNTS as u64 - 1))) % ACCOUNTS;
        let transfer = Transfer {
            id: (u128::from(client_index) << 64) | next,
            debit_account_id: debit,
            credit_account_id: credit,
            amount: 1 + u128::from(rng.below(10)),
            ledger: 1,
            code: 1,
            ..Transfer::default()
        };
        match client.create_transfers(&[transfer]).await {
            Ok(results) => {
                let mut history = history.lock();
                if results[0].status == CreateTransferStatus::Created {
                    history
                        .acknowledged
                        .insert(transfer.id, (transfer, results[0].timestamp));
                } else {
                    history.wrong.push((transfer.id, results[0].status));
                }
            }
            Err(ClientError::Unavailable { .. }) => {
                history.lock().unknown.insert(transfer.id, transfer);
            }
            Err(error) => panic!("client {client_index}: {error}"),
        }
    }
}

// Goal: acknowledged writes survive SIGKILLs of the leader and followers,
// restarts and a wiped disk, exactly once, with replicas converging.
#[test]
fn sigkill_leader_under_load() {
    let rounds: u64 = std::env::var("CLUSTER_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(4);
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xC1u64);
    println!("SEED={seed} CLUSTER_ROUNDS={rounds}");
    let temp = tempfile::tempdir().expect("temp dir");
    let mut cluster = Cluster {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_syncpay")),
        root: temp.path().to_path_buf(),
        addrs: (1..=3)
            .map(|id| (id, format!("127.0.0.1:{}", free_port())))
            .collect(),
        children: BTreeMap::new(),
    };
    for id in 1..=3 {
        cluster.spawn(id, id == 1);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let addrs: Vec<String> = cluster.addrs.values().cloned().collect();
        let mut setup = ReplicatedClient::new(addrs.clone());
        let accounts: Vec<Account> = (1..=ACCOUNTS)
            .map(|id| Account {
                id,
                ledger: 1,
                code: 1,
                ..Account::default()
            })
            .collect();
        setup.create_accounts(&accounts).await.expect("accounts");

        let stop = Arc::new(AtomicBool::new(false));
        let history = Arc::new(Mutex::new(History::default()));
        let clients: Vec<_> = (1..=CLIENTS)
            .map(|i| {
                tokio::spawn(client_loop(
                    i,
                    addrs.clone(),
                    Arc::clone(&stop),
                    Arc::clone(&history),
                ))
            })
            .collect();

        // Linearizable reads never go backwards: the total debited only
        // grows. No two nodes lead in one term.
        let reader = tokio::spawn(read_loop(addrs.clone(), Arc::clone(&stop)));
        let watcher = tokio::spawn(leader_watch(cluster.addrs.clone(), Arc::clone(&stop)));

        let mut rng = SplitMix64::new(seed);
        for round in 0..rounds {
            tokio::time::sleep(Duration::from_millis(700)).await;
            let victim = if round % 2 == 0 {
                leader(&cluster.addrs).await
            } else {
                1 + rng.below(3)
            };
            eprintln!(
                "round {round}: killing node {victim} at {}",
                cluster.addrs[&victim]
            );
            cluster.kill(victim);
            // Longer than the election timeout (150–300 ms) plus the leader
            // lease, so that the others elect a new leader before the
            // victim returns (a restarted leader otherwise resumes its
            // term, as openraft 0.9 allows).
            tokio::time::sleep(Duration::from_millis(1500 + rng.below(1000))).await;
            let wiped = round == rounds / 2;
            if wiped {
                // A lost disk: the node rejoins empty and catches up.
                std::fs::remove_dir_all(cluster.dir(victim)).expect("wipe");
            }
            cluster.spawn(victim, false);
            if wiped {
                // An empty voter's vote could elect a leader missing
                // committed entries if a second node failed now (Raft
                // assumes voters keep their disks): as an operator would,
                // wait until it has caught up before the next failure.
                caught_up(&cluster.addrs, victim).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.await.expect("client task");
        }
        let reads = reader.await.expect("reader task");
        let terms = watcher.await.expect("watcher task");
        assert!(reads > 10, "{reads} linearizable reads");
        println!("{reads} linearizable reads; leaders by term: {terms:?}");

        let history = std::mem::take(&mut *history.lock());
        check(&cluster.addrs, &history, &mut setup).await;
    });
}

async fn check(addrs: &BTreeMap<u64, String>, history: &History, client: &mut ReplicatedClient) {
    assert!(
        history.wrong.is_empty(),
        "applied twice: {:?}",
        history.wrong
    );
    assert!(
        history.acknowledged.len() > 50,
        "the load made progress: {} acknowledged",
        history.acknowledged.len()
    );
    // Which transfers are in the ledger.
    let mut applied: Vec<Transfer> = Vec::new();
    let ids: Vec<u128> = history.acknowledged.keys().copied().collect();
    for chunk in ids.chunks(1000) {
        let found = client.lookup_transfers(chunk).await.expect("lookup");
        for transfer in &found {
            let (_, timestamp) = history.acknowledged[&transfer.id];
            assert_eq!(transfer.timestamp, timestamp, "acknowledged timestamp");
        }
        assert_eq!(
            found.len(),
            chunk.len(),
            "every acknowledged transfer is there"
        );
        applied.extend(found);
    }
    let unknown: Vec<u128> = history.unknown.keys().copied().collect();
    for chunk in unknown.chunks(1000) {
        applied.extend(client.lookup_transfers(chunk).await.expect("lookup"));
    }
    // Balances are exactly the sum of what was applied.
    let mut debits = BTreeMap::new();
    let mut credits = BTreeMap::new();
    for transfer in &applied {
        *debits.entry(transfer.debit_account_id).or_insert(0u128) += transfer.amount;
        *credits.entry(transfer.credit_account_id).or_insert(0u128) += transfer.amount;
    }
    let ids: Vec<u128> = (1..=ACCOUNTS).collect();
    let accounts = client.lookup_accounts(&ids).await.expect("accounts");
    let (mut total_debits, mut total_credits) = (0u128, 0u128);
    for account in &accounts {
        assert_eq!(
            account.debits_posted,
            debits.get(&account.id).copied().unwrap_or(0)
        );
        assert_eq!(
            account.credits_posted,
            credits.get(&account.id).copied().unwrap_or(0)
        );
        total_debits += account.debits_posted;
        total_credits += account.credits_posted;
    }
    assert_eq!(total_debits, total_credits, "money is conserved");

    // Replicas converge: same state hash at the same applied index.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut statuses = Vec::new();
        for addr in addrs.values() {
            statuses.extend(status(addr).await);
        }
        let same = statuses.len() == addrs.len()
            && statuses.windows(2).all(|w| {
                w[0].last_applied_index == w[1].last_applied_index
                    && w[0].state_hash == w[1].state_hash
            });
        if same {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replicas did not converge: {:?}",
            statuses
                .iter()
                .map(|s| (s.id, s.last_applied_index, s.state_hash))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "{} acknowledged, {} unknown ({} of them applied), balances and replicas agree",
        history.acknowledged.len(),
        history.unknown.len(),
        applied.len() - history.acknowledged.len()
    );
}
