//! The client of a replicated ledger over TCP: finds the leader, follows
//! redirects, and retries through failover with its session, so that a
//! caller sees each write applied exactly once.
//!
//! Each write takes the next request number of the client's session and
//! keeps it through every retry; the replicated state answers a retry of
//! an applied request with the original reply (`duplicate`), whichever
//! leader receives it. A write that runs out of retries returns
//! [`ClientError::Unavailable`] and stays *unfinished*: its reply is kept
//! by the cluster (the client does not acknowledge it) and
//! [`ReplicatedClient::resume`] asks again with the same number. Only the
//! newest unfinished write is kept; an older one is then known only by its
//! transfer ids (a resubmitted transfer id answers `exists`).

use std::time::{Duration, Instant};

use super::NodeId;
use super::command::{ClientRequest, RaftCommand, SessionRequest};
use super::node::{NodeStatus, ReadConsistency, ReadReply, ReadRequest, WriteError};
use super::tcp::{Connection, Request, Response, TransportError, WireRead};
use crate::ledger::codec::LedgerBatch;
use crate::ledger::{
    Account, AccountFilter, BATCH_EVENTS_MAX, CreateAccountResult, CreateTransferResult,
    LedgerOutput, QueryFilter, Transfer,
};
use crate::rng::SplitMix64;

/// How a client retries.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The longest one attempt waits for its answer.
    pub attempt_timeout: Duration,
    /// The longest a call keeps retrying before it returns
    /// [`ClientError::Unavailable`].
    pub retry_for: Duration,
    /// The first backoff between attempts; it doubles, with jitter, up to
    /// `backoff_max`.
    pub backoff_min: Duration,
    /// The longest backoff.
    pub backoff_max: Duration,
}

impl Default for ClientOptions {
    /// 5 s per attempt, 30 s in all (many elections' worth), backoff
    /// 10–200 ms (a failover takes one to two seconds: a longer backoff
    /// would add most of itself to what the caller waits).
    fn default() -> Self {
        ClientOptions {
            attempt_timeout: Duration::from_secs(5),
            retry_for: Duration::from_secs(30),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(200),
        }
    }
}

/// An error of a client call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The batch or id list is longer than one batch may hold.
    #[error("{count} events, more than the {max} a batch may hold")]
    TooManyEvents {
        /// Events given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// No node answered in time. For a write, its outcome is unknown: it
    /// is kept as unfinished, and [`ReplicatedClient::resume`] finds out.
    #[error("the cluster did not answer in {elapsed:?} ({attempts} attempts; last: {last_error})")]
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last failure.
        last_error: String,
    },
    /// The write was applied, but its reply is gone from the session (it
    /// expired, or the client acknowledged it before).
    #[error("the request was applied; its reply is no longer kept")]
    ReplyForgotten,
    /// The cluster refused the request as invalid.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A node answered with something this client does not understand.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// A write's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteReply {
    /// Results of `create_accounts`, one per event.
    pub accounts: Vec<CreateAccountResult>,
    /// Results of `create_transfers`, one per event.
    pub transfers: Vec<CreateTransferResult>,
    /// True when the cluster had applied this request before (a retry
    /// after a lost reply or a failover): the results are the original.
    pub duplicate: bool,
}

/// A client of a replicated ledger. One client is one session: its calls
/// take `&mut self` and run one at a time; use one client per concurrent
/// caller.
#[derive(Debug)]
pub struct ReplicatedClient {
    addrs: Vec<String>,
    options: ClientOptions,
    leader: Option<String>,
    next_addr: usize,
    connection: Option<(String, Connection)>,
    client_id: u128,
    next_request: u64,
    unfinished: Option<(u64, LedgerBatch)>,
    rng: SplitMix64,
}

/// A client id that is, with overwhelming probability, unique: random bits
/// from the standard library's hasher keys, the time and the process id.
fn random_client_id() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    let high = hasher.finish();
    hasher.write_u64(high);
    let low = hasher.finish();
    let id = (u128::from(high) << 64) | u128::from(low);
    id.max(1)
}

impl ReplicatedClient {
    /// A client of the cluster whose nodes listen at `addrs` (any subset
    /// that includes a reachable node; the leader is found from there).
    pub fn new<A: Into<String>>(addrs: impl IntoIterator<Item = A>) -> ReplicatedClient {
        ReplicatedClient::with_options(addrs, ClientOptions::default())
    }

    /// A client with explicit retry options.
    pub fn with_options<A: Into<String>>(
        addrs: impl IntoIterator<Item = A>,
        options: ClientOptions,
    ) -> ReplicatedClient {
        let client_id = random_client_id();
        ReplicatedClient {
            addrs: addrs.into_iter().map(Into::into).collect(),
            options,
            leader: None,
            next_addr: 0,
            connection: None,
            client_id,
            next_request: 1,
            unfinished: None,
            rng: SplitMix64::new(client_id as u64),
        }
    }

    /// This client's session id.
    pub fn client_id(&self) -> u128 {
        self.client_id
    }

    /// The leader's address, as last learned.
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    /// Creates accounts; results as the embedded ledger's.
    pub async fn create_accounts(
        &mut self,
        accounts: &[Account],
    ) -> Result<Vec<CreateAccountResult>, ClientError> {
        let reply = self
            .write(LedgerBatch::CreateAccounts(accounts.to_vec()))
            .await?;
        Ok(reply.accounts)
    }

    /// Creates transfers; results as the embedded ledger's.
    pub async fn create_transfers(
        &mut self,
        transfers: &[Transfer],
    ) -> Result<Vec<CreateTransferResult>, ClientError> {
        let reply = self
            .write(LedgerBatch::CreateTransfers(transfers.to_vec()))
            .await?;
        Ok(reply.transfers)
    }

    /// Submits one batch in the session and waits for its results.
    pub(crate) async fn write(&mut self, batch: LedgerBatch) -> Result<WriteReply, ClientError> {
        if batch.len() > BATCH_EVENTS_MAX {
            return Err(ClientError::TooManyEvents {
                count: batch.len(),
                max: BATCH_EVENTS_MAX,
            });
        }
        let request = self.next_request;
        self.next_request += 1;
        self.unfinished = Some((request, batch.clone()));
        self.send_write(request, batch).await
    }

    /// Asks again for the outcome of the newest write that returned
    /// [`ClientError::Unavailable`], with its original request number: it
    /// is applied at most once, whatever happened to the first attempt.
    /// `None` when no write is unfinished.
    pub async fn resume(&mut self) -> Option<Result<WriteReply, ClientError>> {
        let (request, batch) = self.unfinished.clone()?;
        Some(self.send_write(request, batch).await)
    }

    async fn send_write(
        &mut self,
        request: u64,
        batch: LedgerBatch,
    ) -> Result<WriteReply, ClientError> {
        // Every reply below the oldest unfinished request was delivered.
        let acknowledged_below = self
            .unfinished
            .as_ref()
            .map_or(request, |(unfinished, _)| (*unfinished).min(request));
        let command = RaftCommand {
            now_ns: 0,
            requests: vec![ClientRequest {
                session: Some(SessionRequest {
                    client_id: self.client_id,
                    request,
                    acknowledged_below,
                }),
                batch,
            }],
        };
        let message = Request::Write(command);
        let response = self.call_leader(&message).await?;
        let Response::Write(result) = response else {
            return Err(ClientError::Protocol(
                "a write answered with another kind".to_string(),
            ));
        };
        // call_leader retried what a retry can cure; what reaches here
        // as an error cannot be (too many events, an invalid request).
        let mut reply = result.map_err(admin_error)?;
        if reply.replies.len() != 1 {
            return Err(ClientError::Protocol(format!(
                "{} replies to one request",
                reply.replies.len()
            )));
        }
        let answer = reply.replies.remove(0);
        if self.unfinished.as_ref().is_some_and(|(r, _)| *r == request) {
            self.unfinished = None;
        }
        match answer.output {
            Ok(LedgerOutput {
                accounts,
                transfers,
            }) => Ok(WriteReply {
                accounts,
                transfers,
                duplicate: answer.duplicate,
            }),
            Err(_) => Err(ClientError::ReplyForgotten),
        }
    }

    /// Reads, linearizable (from the leader) or stale (from any node).
    pub async fn read(
        &mut self,
        request: &ReadRequest,
        consistency: ReadConsistency,
    ) -> Result<ReadReply, ClientError> {
        let message = Request::Read {
            request: WireRead::from_request(request),
            consistency,
        };
        match self.call_leader(&message).await? {
            Response::Read(Ok(records)) => records.into_reply().map_err(ClientError::Protocol),
            Response::Read(Err(error)) => Err(ClientError::Protocol(error.to_string())),
            _ => Err(ClientError::Protocol(
                "a read answered with another kind".to_string(),
            )),
        }
    }

    async fn read_accounts(&mut self, request: ReadRequest) -> Result<Vec<Account>, ClientError> {
        self.read(&request, ReadConsistency::Linearizable)
            .await?
            .into_accounts()
            .ok_or_else(|| ClientError::Protocol("a read answered with other records".to_string()))
    }

    async fn read_transfers(&mut self, request: ReadRequest) -> Result<Vec<Transfer>, ClientError> {
        self.read(&request, ReadConsistency::Linearizable)
            .await?
            .into_transfers()
            .ok_or_else(|| ClientError::Protocol("a read answered with other records".to_string()))
    }

    /// `lookup_accounts`, linearizable.
    pub async fn lookup_accounts(&mut self, ids: &[u128]) -> Result<Vec<Account>, ClientError> {
        self.read_accounts(ReadRequest::LookupAccounts(ids.to_vec()))
            .await
    }

    /// `lookup_transfers`, linearizable.
    pub async fn lookup_transfers(&mut self, ids: &[u128]) -> Result<Vec<Transfer>, ClientError> {
        self.read_transfers(ReadRequest::LookupTransfers(ids.to_vec()))
            .await
    }

    /// `get_account_transfers`, linearizable.
    pub async fn get_account_transfers(
        &mut self,
        filter: &AccountFilter,
    ) -> Result<Vec<Transfer>, ClientError> {
        self.read_transfers(ReadRequest::AccountTransfers(*filter))
            .await
    }

    /// `query_transfers`, linearizable.
    pub async fn query_transfers(
        &mut self,
        filter: &QueryFilter,
    ) -> Result<Vec<Transfer>, ClientError> {
        self.read_transfers(ReadRequest::QueryTransfers(*filter))
            .await
    }

    /// Sends `request` to the node at `addr`: one attempt, no redirect.
    async fn call_node(&self, addr: &str, request: &Request) -> Result<Response, ClientError> {
        let timeout = self.options.attempt_timeout;
        let mut connection = Connection::connect(addr, timeout)
            .await
            .map_err(|e| unavailable(1, Duration::ZERO, &e))?;
        connection
            .call(request, timeout)
            .await
            .map_err(|e| unavailable(1, Duration::ZERO, &e))
    }

    /// The status of the node at `addr` (one attempt, no redirect).
    pub async fn status_of(&self, addr: &str) -> Result<NodeStatus, ClientError> {
        match self.call_node(addr, &Request::Status).await? {
            Response::Status(status) => Ok(*status),
            _ => Err(ClientError::Protocol(
                "a status answered with another kind".to_string(),
            )),
        }
    }

    /// Initializes a new cluster through the node at `addr` (one of
    /// `members`).
    pub async fn initialize(
        &self,
        addr: &str,
        members: std::collections::BTreeMap<NodeId, String>,
    ) -> Result<(), ClientError> {
        match self.call_node(addr, &Request::Initialize(members)).await? {
            Response::Done(result) => result.map_err(admin_error),
            _ => Err(ClientError::Protocol(
                "answered with another kind".to_string(),
            )),
        }
    }

    /// Adds node `id` at `addr` as a learner and waits for it to catch up.
    pub async fn add_learner(&mut self, id: NodeId, addr: String) -> Result<(), ClientError> {
        self.admin(Request::AddLearner { id, addr }).await
    }

    /// Makes `voters` the voting members (promotes learners, demotes
    /// voters not named).
    pub async fn change_membership(
        &mut self,
        voters: std::collections::BTreeSet<NodeId>,
    ) -> Result<(), ClientError> {
        self.admin(Request::ChangeMembership(voters)).await
    }

    /// Removes nodes from the cluster.
    pub async fn remove_nodes(
        &mut self,
        nodes: std::collections::BTreeSet<NodeId>,
    ) -> Result<(), ClientError> {
        self.admin(Request::RemoveNodes(nodes)).await
    }

    async fn admin(&mut self, request: Request) -> Result<(), ClientError> {
        match self.call_leader(&request).await? {
            Response::Done(result) => result.map_err(admin_error),
            _ => Err(ClientError::Protocol(
                "answered with another kind".to_string(),
            )),
        }
    }

    /// Sends `message` to the leader, following redirects and retrying
    /// failures that a retry can cure until `retry_for` runs out. Returns
    /// the first answer that is not a redirect or a retryable failure.
    async fn call_leader(&mut self, message: &Request) -> Result<Response, ClientError> {
        let started = Instant::now();
        let mut attempts = 0u32;
        let mut backoff = self.options.backoff_min;
        loop {
            attempts += 1;
            let addr = self.target();
            let failure = match self.call_once(&addr, message).await {
                Ok(response) => match retryable(&response) {
                    None => return Ok(response),
                    Some(WriteError::NotLeader {
                        leader_addr: Some(leader),
                        ..
                    }) if leader != addr => {
                        // A redirect to a node we did not just ask: go now.
                        self.leader = Some(leader);
                        continue;
                    }
                    Some(error) => {
                        self.leader = None;
                        error.to_string()
                    }
                },
                Err(error) => {
                    self.connection = None;
                    self.leader = None;
                    error.to_string()
                }
            };
            let elapsed = started.elapsed();
            if elapsed >= self.options.retry_for {
                return Err(ClientError::Unavailable {
                    attempts,
                    elapsed,
                    last_error: failure,
                });
            }
            let jitter = self.rng.below(backoff.as_micros() as u64 / 2 + 1);
            tokio::time::sleep(backoff / 2 + Duration::from_micros(jitter)).await;
            backoff = (backoff * 2).min(self.options.backoff_max);
        }
    }

    /// The node to try next: the known leader, or the next address.
    fn target(&mut self) -> String {
        if let Some(leader) = &self.leader {
            return leader.clone();
        }
        if self.addrs.is_empty() {
            return String::new();
        }
        let addr = self.addrs[self.next_addr % self.addrs.len()].clone();
        self.next_addr += 1;
        addr
    }

    async fn call_once(
        &mut self,
        addr: &str,
        message: &Request,
    ) -> Result<Response, TransportError> {
        let timeout = self.options.attempt_timeout;
        // Taken out for the exchange, put back after its response was read:
        // a call dropped midway (a caller's timeout) takes the connection
        // with it, so no later call reads this call's response.
        let mut connection = match self.connection.take() {
            Some((a, connection)) if a == addr => connection,
            _ => Connection::connect(addr, timeout).await?,
        };
        let response = connection.call(message, timeout).await?;
        self.connection = Some((addr.to_string(), connection));
        Ok(response)
    }
}

/// The failure in an answer that a retry (elsewhere, or later) can cure.
fn retryable(response: &Response) -> Option<WriteError> {
    let error = match response {
        Response::Write(Err(e)) | Response::Read(Err(e)) | Response::Done(Err(e)) => e,
        _ => return None,
    };
    match error {
        WriteError::NotLeader { .. } | WriteError::Raft(_) => Some(error.clone()),
        _ => None,
    }
}

fn admin_error(error: WriteError) -> ClientError {
    match error {
        WriteError::TooManyEvents { count, max } => ClientError::TooManyEvents { count, max },
        other => ClientError::Invalid(other.to_string()),
    }
}

fn unavailable(attempts: u32, elapsed: Duration, error: &TransportError) -> ClientError {
    ClientError::Unavailable {
        attempts,
        elapsed,
        last_error: error.to_string(),
    }
}
