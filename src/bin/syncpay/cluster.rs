//! The replicated mode's commands: `node` runs one replica over TCP,
//! `cluster` starts a local cluster of `node` processes, `status`,
//! `members` and `client` talk to a running cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode};
use std::time::{Duration, Instant};

use serde_json::json;
use syncpay::replication::{Node, NodeId, NodeOptions, ReplicatedClient};
use syncpay::{Account, Transfer};

use crate::ops::{Outcome, finish};

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Parses `1=127.0.0.1:7101,2=127.0.0.1:7102`.
pub fn parse_members(text: &str) -> Result<BTreeMap<NodeId, String>, String> {
    let mut members = BTreeMap::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not ID=ADDRESS"))?;
        let id: NodeId = id
            .trim()
            .parse()
            .map_err(|_| format!("{id:?} is not a node id"))?;
        if members.insert(id, addr.trim().to_string()).is_some() {
            return Err(format!("node {id} is named twice"));
        }
    }
    if members.is_empty() {
        return Err("no members given".to_string());
    }
    Ok(members)
}

/// Parses a comma-separated list of numbers.
pub fn parse_ids<T: std::str::FromStr>(text: &str) -> Result<Vec<T>, String> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().parse().map_err(|_| format!("{p:?} is not an id")))
        .collect()
}

/// Waits for Ctrl-C or SIGTERM.
async fn stop_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// `syncpay node`: runs one replica until Ctrl-C or SIGTERM.
pub fn node(id: NodeId, listen: &str, data: &Path, init: Option<&str>, forward: bool) -> ExitCode {
    finish(run_node(id, listen, data, init, forward))
}

fn run_node(
    id: NodeId,
    listen: &str,
    data: &Path,
    init: Option<&str>,
    forward: bool,
) -> Result<Outcome, String> {
    let members = init.map(parse_members).transpose()?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let mut options = NodeOptions::default();
        options.forward_writes = forward;
        let node = Node::start(id, data, listen, &options)
            .await
            .map_err(|e| format!("node {id} does not start: {e}"))?;
        println!("node {id} listening on {}", node.addr());
        if let Some(members) = members {
            // A restarted first node finds its cluster initialized: fine.
            let fresh = node.status().last_log_index.is_none();
            if fresh {
                node.initialize(members)
                    .await
                    .map_err(|e| format!("cannot initialize the cluster: {e}"))?;
                println!("node {id} initialized the cluster");
            }
        }
        stop_signal().await;
        println!("node {id} stopping");
        node.shutdown().await;
        Ok(Outcome::Clean)
    })
}

/// `syncpay cluster`: starts `count` node processes on 127.0.0.1 and
/// stops them all on Ctrl-C or SIGTERM.
pub fn cluster(count: u64, base_port: u16, data: Option<PathBuf>) -> ExitCode {
    finish(run_cluster(count, base_port, data))
}

fn run_cluster(count: u64, base_port: u16, data: Option<PathBuf>) -> Result<Outcome, String> {
    if !(1..=9).contains(&count) {
        return Err(format!("{count} nodes; a local cluster has 1 to 9"));
    }
    let temporary = match &data {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?),
    };
    let root = data.unwrap_or_else(|| temporary.as_ref().expect("made above").path().into());
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let members: BTreeMap<NodeId, String> = (1..=count)
        .map(|id| (id, format!("127.0.0.1:{}", u64::from(base_port) + id - 1)))
        .collect();
    let mut children: BTreeMap<NodeId, Child> = BTreeMap::new();
    for &id in members.keys() {
        let child = node_command(&exe, &root, &members, id, id == 1)
            .spawn()
            .map_err(|e| format!("cannot start node {id}: {e}"))?;
        children.insert(id, child);
    }
    println!("a cluster of {count} nodes, data in {}", root.display());
    for (id, addr) in &members {
        println!("  node {id}: {addr}");
    }
    let addrs = members.values().cloned().collect::<Vec<_>>().join(",");
    println!("try: syncpay status --addr {}", members[&1]);
    println!("     syncpay client --cluster {addrs} create-accounts 1,2");
    println!("Ctrl-C stops every node");
    let runtime = runtime()?;
    runtime.block_on(async {
        let mut poll = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = stop_signal() => break,
                _ = poll.tick() => {
                    for (id, child) in &mut children {
                        if let Ok(Some(status)) = child.try_wait() {
                            eprintln!("node {id} exited: {status}");
                        }
                    }
                    children.retain(|_, child| matches!(child.try_wait(), Ok(None)));
                    if children.is_empty() {
                        break;
                    }
                }
            }
        }
    });
    stop_children(&mut children, Duration::from_secs(10));
    println!("every node stopped");
    Ok(Outcome::Clean)
}

/// The command that runs node `id` of `members` (id to address) with its
/// data in `root/node-<id>`; `init` makes it initialize the cluster.
pub fn node_command(
    exe: &Path,
    root: &Path,
    members: &BTreeMap<NodeId, String>,
    id: NodeId,
    init: bool,
) -> std::process::Command {
    let mut command = std::process::Command::new(exe);
    command
        .arg("node")
        .arg("--id")
        .arg(id.to_string())
        .arg("--listen")
        .arg(&members[&id])
        .arg("--data")
        .arg(root.join(format!("node-{id}")));
    if init {
        let init: Vec<String> = members
            .iter()
            .map(|(id, addr)| format!("{id}={addr}"))
            .collect();
        command.arg("--init").arg(init.join(","));
    }
    command
}

/// Asks a node process to stop cleanly.
pub fn sigterm(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a pid this process started and a valid
        // signal number has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

/// Asks each child to stop (SIGTERM; a terminal's Ctrl-C reached them
/// already), waits up to `grace`, then kills what is left.
fn stop_children(children: &mut BTreeMap<NodeId, Child>, grace: Duration) {
    for child in children.values() {
        sigterm(child);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !children.is_empty() {
        children.retain(|_, child| matches!(child.try_wait(), Ok(None)));
        std::thread::sleep(Duration::from_millis(50));
    }
    for (id, child) in children.iter_mut() {
        eprintln!("node {id} did not stop in {grace:?}; killing it");
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `syncpay status`: one node's view, as JSON.
pub fn status(addr: &str) -> ExitCode {
    finish((|| {
        let runtime = runtime()?;
        let client = ReplicatedClient::new([addr]);
        let status = runtime
            .block_on(client.status_of(addr))
            .map_err(|e| e.to_string())?;
        let text = serde_json::to_string_pretty(&status).map_err(|e| e.to_string())?;
        println!("{text}");
        Ok(Outcome::Clean)
    })())
}

/// A membership change.
pub enum MemberChange {
    AddLearner { id: NodeId, addr: String },
    SetVoters(BTreeSet<NodeId>),
    Remove(BTreeSet<NodeId>),
}

/// `syncpay members`: a membership change through the leader.
pub fn members(cluster: &str, change: MemberChange) -> ExitCode {
    finish((|| {
        let runtime = runtime()?;
        let mut client = ReplicatedClient::new(cluster.split(',').map(str::trim));
        runtime
            .block_on(async {
                match change {
                    MemberChange::AddLearner { id, addr } => client.add_learner(id, addr).await,
                    MemberChange::SetVoters(voters) => client.change_membership(voters).await,
                    MemberChange::Remove(nodes) => client.remove_nodes(nodes).await,
                }
            })
            .map_err(|e| e.to_string())?;
        println!("done");
        Ok(Outcome::Clean)
    })())
}

/// What `syncpay client` does.
pub enum ClientCommand {
    CreateAccounts {
        ids: Vec<u128>,
        ledger: u32,
        code: u16,
    },
    Transfer(Transfer),
    LookupAccounts(Vec<u128>),
    LookupTransfers(Vec<u128>),
}

/// `syncpay client`: one call through the client library; results as
/// JSON lines (128-bit values as decimal strings).
pub fn client(cluster: &str, command: ClientCommand) -> ExitCode {
    finish((|| {
        let runtime = runtime()?;
        let mut client = ReplicatedClient::new(cluster.split(',').map(str::trim));
        runtime.block_on(async {
            match command {
                ClientCommand::CreateAccounts { ids, ledger, code } => {
                    let accounts: Vec<Account> = ids
                        .iter()
                        .map(|&id| Account {
                            id,
                            ledger,
                            code,
                            ..Account::default()
                        })
                        .collect();
                    let results = client
                        .create_accounts(&accounts)
                        .await
                        .map_err(|e| e.to_string())?;
                    for (account, result) in accounts.iter().zip(results) {
                        println!(
                            "{}",
                            json!({"id": account.id.to_string(), "status": format!("{:?}", result.status), "timestamp": result.timestamp})
                        );
                    }
                }
                ClientCommand::Transfer(transfer) => {
                    let results = client
                        .create_transfers(&[transfer])
                        .await
                        .map_err(|e| e.to_string())?;
                    for result in results {
                        println!(
                            "{}",
                            json!({"id": transfer.id.to_string(), "status": format!("{:?}", result.status), "timestamp": result.timestamp})
                        );
                    }
                }
                ClientCommand::LookupAccounts(ids) => {
                    for a in client.lookup_accounts(&ids).await.map_err(|e| e.to_string())? {
                        println!(
                            "{}",
                            json!({
                                "id": a.id.to_string(),
                                "debits_posted": a.debits_posted.to_string(),
                                "credits_posted": a.credits_posted.to_string(),
                                "debits_pending": a.debits_pending.to_string(),
                                "credits_pending": a.credits_pending.to_string(),
                                "ledger": a.ledger,
                                "code": a.code,
                                "timestamp": a.timestamp,
                            })
                        );
                    }
                }
                ClientCommand::LookupTransfers(ids) => {
                    for t in client.lookup_transfers(&ids).await.map_err(|e| e.to_string())? {
                        println!(
                            "{}",
                            json!({
                                "id": t.id.to_string(),
                                "debit_account_id": t.debit_account_id.to_string(),
                                "credit_account_id": t.credit_account_id.to_string(),
                                "amount": t.amount.to_string(),
                                "ledger": t.ledger,
                                "code": t.code,
                                "timestamp": t.timestamp,
                            })
                        );
                    }
                }
            }
            Ok::<(), String>(())
        })?;
        Ok(Outcome::Clean)
    })())
}
