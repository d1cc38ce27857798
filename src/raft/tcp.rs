//! The TCP transport: Raft RPCs between nodes and client requests to them,
//! one protocol on one port.
//!
//! ```text
//! frame
//! offset  size  field
//!      0     2  magic "SP"
//!      2     1  protocol version (1)
//!      3     1  reserved, zero
//!      4     4  body length n, at most FRAME_BYTES_MAX
//!      8     4  CRC-32 of the body
//!     12     n  body: one Request or Response, bincode (wire.rs)
//! ```
//!
//! A connection carries one request at a time, each answered by one
//! response. A frame with a bad header, an oversized length, a wrong
//! checksum or a body that does not decode closes its connection with a
//! logged error: the length is checked before anything is allocated, and
//! decoding never allocates more than the body's length.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use super::command::{ClientRequest, RaftCommand, RaftReply, RequestReply};
use super::node::{
    NodeOptions, NodeStatus, RaftNode, ReadConsistency, ReadReply, ReadRequest, StartError,
    WriteError,
};
use super::{NodeId, TypeConfig, wire};
use crate::ledger::{Account, AccountBalance, AccountFilter, QueryFilter, Transfer};

const MAGIC: [u8; 2] = *b"SP";
const PROTOCOL_VERSION: u8 = 1;
const HEADER_BYTES: usize = 12;
/// The largest frame body: a full append-entries of
/// `max_payload_entries` entries of up to a full batch each, or one
/// snapshot chunk, fits with room to spare.
pub const FRAME_BYTES_MAX: usize = 96 << 20;
/// Connections a node serves at once; more are closed on accept.
pub const CONNECTIONS_MAX: usize = 1024;

/// A failure of the transport itself (as opposed to an answer).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Connecting, reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer sent a frame this protocol does not accept.
    #[error("bad frame: {0}")]
    BadFrame(String),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A request to a node.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A command of exactly one client request.
    Write(RaftCommand),
    /// A write a follower forwards to the leader; never forwarded again.
    ForwardedWrite(RaftCommand),
    Read {
        request: WireRead,
        consistency: ReadConsistency,
    },
    Status,
    Initialize(BTreeMap<NodeId, String>),
    AddLearner {
        id: NodeId,
        addr: String,
    },
    ChangeMembership(BTreeSet<NodeId>),
    RemoveNodes(BTreeSet<NodeId>),
}

/// A node's answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Response {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// The reply of the one request.
    Write(Result<RaftReply, WriteError>),
    Read(Result<WireRecords, WriteError>),
    Status(Box<NodeStatus>),
    Done(Result<(), WriteError>),
}

/// A read, with its filters in their TigerBeetle byte layout.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireRead {
    LookupAccounts(Vec<u128>),
    LookupTransfers(Vec<u128>),
    AccountTransfers(Vec<u8>),
    AccountBalances(Vec<u8>),
    QueryAccounts(Vec<u8>),
    QueryTransfers(Vec<u8>),
}

/// Records in their TigerBeetle byte layout, 128 bytes each.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireRecords {
    Accounts(Vec<u8>),
    Transfers(Vec<u8>),
    Balances(Vec<u8>),
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("a filter of {} bytes, not {N}", bytes.len()))
}

impl WireRead {
    pub(crate) fn from_request(request: &ReadRequest) -> WireRead {
        match request {
            ReadRequest::LookupAccounts(ids) => WireRead::LookupAccounts(ids.clone()),
            ReadRequest::LookupTransfers(ids) => WireRead::LookupTransfers(ids.clone()),
            ReadRequest::AccountTransfers(f) => WireRead::AccountTransfers(f.to_bytes().to_vec()),
            ReadRequest::AccountBalances(f) => WireRead::AccountBalances(f.to_bytes().to_vec()),
            ReadRequest::QueryAccounts(f) => WireRead::QueryAccounts(f.to_bytes().to_vec()),
            ReadRequest::QueryTransfers(f) => WireRead::QueryTransfers(f.to_bytes().to_vec()),
        }
    }

    fn into_request(self) -> Result<ReadRequest, String> {
        Ok(match self {
            WireRead::LookupAccounts(ids) => ReadRequest::LookupAccounts(ids),
            WireRead::LookupTransfers(ids) => ReadRequest::LookupTransfers(ids),
            WireRead::AccountTransfers(b) => {
                ReadRequest::AccountTransfers(AccountFilter::from_bytes(&fixed(&b)?))
            }
            WireRead::AccountBalances(b) => {
                ReadRequest::AccountBalances(AccountFilter::from_bytes(&fixed(&b)?))
            }
            WireRead::QueryAccounts(b) => {
                ReadRequest::QueryAccounts(QueryFilter::from_bytes(&fixed(&b)?))
            }
            WireRead::QueryTransfers(b) => {
                ReadRequest::QueryTransfers(QueryFilter::from_bytes(&fixed(&b)?))
            }
        })
    }
}

fn records<T, const N: usize>(
    bytes: &[u8],
    decode: impl Fn(&[u8; N]) -> T,
) -> Result<Vec<T>, String> {
    if !bytes.len().is_multiple_of(N) {
        return Err(format!("{} bytes are not whole records", bytes.len()));
    }
    Ok(bytes
        .chunks_exact(N)
        .map(|chunk| decode(chunk.try_into().expect("chunks of N bytes")))
        .collect())
}

impl WireRecords {
    fn from_reply(reply: &ReadReply) -> WireRecords {
        match reply {
            ReadReply::Accounts(a) => {
                WireRecords::Accounts(a.iter().flat_map(|a| a.to_bytes()).collect())
            }
            ReadReply::Transfers(t) => {
                WireRecords::Transfers(t.iter().flat_map(|t| t.to_bytes()).collect())
            }
            ReadReply::Balances(b) => {
                WireRecords::Balances(b.iter().flat_map(|b| b.to_bytes()).collect())
            }
        }
    }

    pub(crate) fn into_reply(self) -> Result<ReadReply, String> {
        Ok(match self {
            WireRecords::Accounts(b) => ReadReply::Accounts(records(&b, Account::from_bytes)?),
            WireRecords::Transfers(b) => ReadReply::Transfers(records(&b, Transfer::from_bytes)?),
            WireRecords::Balances(b) => {
                ReadReply::Balances(records(&b, AccountBalance::from_bytes)?)
            }
        })
    }
}

/// Writes one frame holding `body`.
async fn write_frame<W: AsyncWriteExt + Unpin>(out: &mut W, body: &[u8]) -> std::io::Result<()> {
    if body.len() > FRAME_BYTES_MAX {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("a message of {} bytes, more than a frame holds", body.len()),
        ));
    }
    let mut header = [0u8; HEADER_BYTES];
    header[..2].copy_from_slice(&MAGIC);
    header[2] = PROTOCOL_VERSION;
    header[4..8].copy_from_slice(&(body.len() as u32).to_le_bytes());
    header[8..12].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.write_all(&header).await?;
    out.write_all(body).await?;
    out.flush().await
}

/// Reads one frame's body; `Ok(None)` at a clean end of stream.
async fn read_frame<R: AsyncReadExt + Unpin>(
    input: &mut R,
) -> Result<Option<Vec<u8>>, TransportError> {
    let mut header = [0u8; HEADER_BYTES];
    match input.read_exact(&mut header[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    input.read_exact(&mut header[1..]).await?;
    check_header(&header).map(Some)?;
    let len = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    let mut body = vec![0u8; len];
    input.read_exact(&mut body).await?;
    if crc32fast::hash(&body) != crc {
        return Err(TransportError::BadFrame("checksum mismatch".to_string()));
    }
    Ok(Some(body))
}

fn check_header(header: &[u8; HEADER_BYTES]) -> Result<(), TransportError> {
    if header[..2] != MAGIC {
        return Err(TransportError::BadFrame("not a syncpay frame".to_string()));
    }
    if header[2] != PROTOCOL_VERSION || header[3] != 0 {
        return Err(TransportError::BadFrame(format!(
            "protocol version {} (this node speaks {PROTOCOL_VERSION})",
            header[2]
        )));
    }
    let len = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
    if len > FRAME_BYTES_MAX {
        return Err(TransportError::BadFrame(format!(
            "a frame of {len} bytes, more than {FRAME_BYTES_MAX}"
        )));
    }
    Ok(())
}

/// One connection to a node, carrying one request at a time.
#[derive(Debug)]
pub(crate) struct Connection {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: BufWriter<tokio::net::tcp::OwnedWriteHalf>,
}

impl Connection {
    pub(crate) async fn connect(
        addr: &str,
        timeout: Duration,
    ) -> Result<Connection, TransportError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| TransportError::Timeout(timeout))??;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        Ok(Connection {
            reader: BufReader::with_capacity(256 << 10, read),
            writer: BufWriter::with_capacity(256 << 10, write),
        })
    }

    /// Sends `request` and waits up to `timeout` for the response.
    pub(crate) async fn call(
        &mut self,
        request: &Request,
        timeout: Duration,
    ) -> Result<Response, TransportError> {
        let exchange = async {
            write_frame(&mut self.writer, &wire::encode(request)).await?;
            match read_frame(&mut self.reader).await? {
                Some(body) => wire::decode(&body)
                    .map_err(|e| TransportError::BadFrame(format!("undecodable response: {e}"))),
                None => Err(TransportError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the node closed the connection",
                ))),
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| TransportError::Timeout(timeout))?
    }
}

/// openraft's connections to the other nodes, over TCP.
#[derive(Clone, Debug, Default)]
pub struct TcpNetwork;

impl RaftNetworkFactory<TypeConfig> for TcpNetwork {
    type Network = TcpPeer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> TcpPeer {
        TcpPeer {
            target,
            addr: node.addr.clone(),
            connection: None,
        }
    }
}

/// One node's connection to a peer; reconnects after a failure.
#[derive(Debug)]
pub struct TcpPeer {
    target: NodeId,
    addr: String,
    connection: Option<Connection>,
}

impl TcpPeer {
    async fn call<E: std::error::Error>(
        &mut self,
        request: Request,
        option: &RPCOption,
    ) -> Result<Response, RPCError<NodeId, BasicNode, E>> {
        let timeout = option.hard_ttl();
        // The connection is taken out for the exchange and put back only
        // after its response was read: if openraft drops this future
        // midway, the connection goes with it, and no later request can
        // read this request's response.
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => match Connection::connect(&self.addr, timeout).await {
                Ok(connection) => connection,
                Err(error) => {
                    let error = std::io::Error::other(format!(
                        "node {} at {}: {error}",
                        self.target, self.addr
                    ));
                    return Err(RPCError::Unreachable(Unreachable::new(&error)));
                }
            },
        };
        match connection.call(&request, timeout).await {
            Ok(response) => {
                self.connection = Some(connection);
                Ok(response)
            }
            Err(error) => {
                let error = std::io::Error::other(format!(
                    "node {} at {}: {error}",
                    self.target, self.addr
                ));
                Err(RPCError::Network(NetworkError::new(&error)))
            }
        }
    }

    fn unexpected<E: std::error::Error>(&mut self) -> RPCError<NodeId, BasicNode, E> {
        // Out of step with the peer: start over on a new connection.
        self.connection = None;
        let error = std::io::Error::other(format!(
            "node {} at {} answered with the wrong response kind",
            self.target, self.addr
        ));
        RPCError::Network(NetworkError::new(&error))
    }
}

impl RaftNetwork<TypeConfig> for TcpPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.call(Request::AppendEntries(rpc), &option).await? {
            Response::AppendEntries(result) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(self.unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self.call(Request::InstallSnapshot(rpc), &option).await? {
            Response::InstallSnapshot(result) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(self.unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.call(Request::Vote(rpc), &option).await? {
            Response::Vote(result) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(self.unexpected()),
        }
    }
}

/// A replica served over TCP: its Raft RPCs and its clients on one port.
#[derive(Debug)]
pub struct TcpNode {
    node: Arc<RaftNode>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl TcpNode {
    /// Starts node `id` with its data in `dir`, listening on `listen`
    /// (`127.0.0.1:0` picks a free port: see [`addr`](Self::addr)).
    pub async fn start(
        id: NodeId,
        dir: &Path,
        listen: &str,
        options: &NodeOptions,
    ) -> Result<TcpNode, StartError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(StartError::Listen)?;
        let addr = listener.local_addr().map_err(StartError::Listen)?;
        let node = RaftNode::start_with(
            id,
            dir,
            options.raft_config(),
            options.wal_options(),
            options.write_path,
            options.snapshot_log_bytes,
            TcpNetwork,
        )
        .await?;
        let node = Arc::new(node);
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve(
            listener,
            Arc::clone(&node),
            options.forward_writes,
            stopped,
        ));
        Ok(TcpNode {
            node,
            addr,
            stop,
            server,
        })
    }

    /// The replica.
    #[doc(hidden)]
    pub fn node(&self) -> &Arc<RaftNode> {
        &self.node
    }

    /// This node's view of itself and its peers.
    pub fn status(&self) -> NodeStatus {
        self.node.status()
    }

    /// Makes this node the first member of a new cluster of `members`
    /// (id and address of each, this node among them). Run once, on one
    /// node, when every member's log is empty.
    pub async fn initialize(&self, members: BTreeMap<NodeId, String>) -> Result<(), WriteError> {
        self.node.initialize(members).await
    }

    /// Reads this node's state (a linearizable read only on the leader).
    pub async fn read(
        &self,
        request: &ReadRequest,
        consistency: ReadConsistency,
    ) -> Result<ReadReply, WriteError> {
        self.node.read(request, consistency).await
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections and stops Raft.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
        self.node.shutdown().await;
    }
}

/// Accepts connections until `stop` turns true.
async fn serve(
    listener: TcpListener,
    node: Arc<RaftNode>,
    forward: bool,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%peer, max = CONNECTIONS_MAX, "too many connections; closing");
            continue;
        };
        let node = Arc::clone(&node);
        let stop = stop.clone();
        tokio::spawn(async move {
            if let Err(error) = serve_connection(stream, &node, forward, stop).await {
                tracing::warn!(%peer, %error, "connection closed");
            }
            drop(slot);
        });
    }
}

async fn serve_connection(
    stream: TcpStream,
    node: &RaftNode,
    forward: bool,
    mut stop: watch::Receiver<bool>,
) -> Result<(), TransportError> {
    // This connection's link to the leader, for forwarded writes.
    let mut forwarder = Forwarder {
        enabled: forward,
        connection: None,
    };
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let mut reader = BufReader::with_capacity(256 << 10, read);
    let mut writer = BufWriter::with_capacity(256 << 10, write);
    loop {
        let body = tokio::select! {
            body = read_frame(&mut reader) => body?,
            _ = stop.changed() => return Ok(()),
        };
        let Some(body) = body else {
            return Ok(());
        };
        let request: Request = wire::decode(&body)
            .map_err(|e| TransportError::BadFrame(format!("undecodable request: {e}")))?;
        let response = handle(node, request, &mut forwarder).await?;
        write_frame(&mut writer, &wire::encode(&response)).await?;
    }
}

/// How long a follower waits for the leader's answer to a forwarded write.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

struct Forwarder {
    enabled: bool,
    connection: Option<(String, Connection)>,
}

impl Forwarder {
    /// Relays `command` to the leader at `addr`; `None` if that failed
    /// (the caller then answers with the redirect, and the client retries
    /// with its session: a write the leader applied is not applied again).
    async fn relay(&mut self, addr: &str, command: RaftCommand) -> Option<Response> {
        let mut connection = match self.connection.take() {
            Some((a, connection)) if a == addr => connection,
            _ => Connection::connect(addr, FORWARD_TIMEOUT).await.ok()?,
        };
        let response = connection
            .call(&Request::ForwardedWrite(command), FORWARD_TIMEOUT)
            .await
            .ok()?;
        self.connection = Some((addr.to_string(), connection));
        Some(response)
    }
}

fn single_request(command: RaftCommand) -> Result<ClientRequest, TransportError> {
    let [request] = <[_; 1]>::try_from(command.requests).map_err(|requests| {
        TransportError::BadFrame(format!(
            "a write of {} requests; a client sends one",
            requests.len()
        ))
    })?;
    Ok(request)
}

fn write_response(result: Result<RequestReply, WriteError>) -> Response {
    Response::Write(result.map(|reply| RaftReply {
        replies: vec![reply],
    }))
}

async fn handle(
    node: &RaftNode,
    request: Request,
    forwarder: &mut Forwarder,
) -> Result<Response, TransportError> {
    let raft = node.raft();
    Ok(match request {
        Request::AppendEntries(rpc) => Response::AppendEntries(raft.append_entries(rpc).await),
        Request::Vote(rpc) => Response::Vote(raft.vote(rpc).await),
        Request::InstallSnapshot(rpc) => {
            Response::InstallSnapshot(raft.install_snapshot(rpc).await)
        }
        Request::Write(command) if forwarder.enabled => {
            // Kept for a relay only when this node may forward: a write
            // is not copied on the common path.
            let request = single_request(command)?;
            let result = node.submit(request.clone()).await;
            if let Err(WriteError::NotLeader {
                leader_addr: Some(leader),
                ..
            }) = &result
            {
                let command = RaftCommand {
                    now_ns: 0,
                    requests: vec![request],
                };
                if let Some(response @ Response::Write(_)) = forwarder.relay(leader, command).await
                {
                    return Ok(response);
                }
            }
            write_response(result)
        }
        Request::Write(command) | Request::ForwardedWrite(command) => {
            write_response(node.submit(single_request(command)?).await)
        }
        Request::Read {
            request,
            consistency,
        } => {
            let request = request.into_request().map_err(TransportError::BadFrame)?;
            Response::Read(
                node.read(&request, consistency)
                    .await
                    .map(|reply| WireRecords::from_reply(&reply)),
            )
        }
        Request::Status => Response::Status(Box::new(node.status())),
        Request::Initialize(members) => Response::Done(node.initialize(members).await),
        Request::AddLearner { id, addr } => Response::Done(node.add_learner(id, addr).await),
        Request::ChangeMembership(voters) => Response::Done(node.change_membership(voters).await),
        Request::RemoveNodes(nodes) => Response::Done(node.remove_nodes(nodes).await),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_bad_frames_are_refused() {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, b"hello").await.unwrap();
        let mut input = &bytes[..];
        assert_eq!(read_frame(&mut input).await.unwrap().unwrap(), b"hello");
        assert!(read_frame(&mut input).await.unwrap().is_none());

        // Every single-bit flip of the header or body is refused or, in the
        // reserved-free length field, fails to read whole: never accepted.
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let mut input = &flipped[..];
            let result = read_frame(&mut input).await;
            assert!(
                !matches!(&result, Ok(Some(body)) if body == b"hello"),
                "bit {bit} flipped and the frame was accepted"
            );
        }

        // An oversized length is refused before anything is allocated.
        let mut huge = bytes.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut input = &huge[..];
        assert!(matches!(
            read_frame(&mut input).await,
            Err(TransportError::BadFrame(m)) if m.contains("more than")
        ));
    }
}
