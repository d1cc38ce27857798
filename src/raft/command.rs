//! What one Raft entry carries and what applying it returns.
//!
//! openraft 0.9 waits for each log write to be flushed before it starts the
//! next, so one entry carries a whole group of client requests, gathered on
//! the leader like a TigerBeetle prepare. The requests' batches are encoded
//! with the embedded ledger's own log codec (`ledger/codec.rs`, a gathered
//! command when there are several), so a Raft entry and an embedded log
//! record hold the same bytes for the same batches.
//!
//! ```text
//! RaftCommand
//! offset  size  field
//!      0     8  now_ns: the leader's clock when it formed the entry
//!      8     4  request count p (1 ..= BATCH_EVENTS_MAX)
//!     12     4  reserved, zero
//!     16  32*p  per request: client id u128 (0 = no session), request
//!               number u64, acknowledged-below u64
//!    ...   ...  the ledger command of the p batches (ledger/codec.rs)
//! ```
//!
//! Decoding never panics and accepts only what encoding writes.

use serde::de::{Deserializer, Visitor};
use serde::ser::Serializer;

use crate::ledger::LedgerOutput;
use crate::ledger::codec::{self, LedgerBatch};
use crate::ledger::{BATCH_EVENTS_MAX, CreateAccountResult, CreateTransferResult};
use crate::storage::store::DecodeError;

const COMMAND_HEADER_BYTES: usize = 16;
const SESSION_BYTES: usize = 32;

/// Identifies one request of one client session, for exactly-once
/// application across retries and leader changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionRequest {
    /// The client's id (random, chosen by the client; never 0).
    pub client_id: u128,
    /// The request's number within the session: new requests take
    /// increasing numbers; a retry reuses its number.
    pub request: u64,
    /// Every request below this number has had its reply delivered: the
    /// state machine may forget those replies.
    pub acknowledged_below: u64,
}

/// One client request: a batch, optionally within a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest {
    /// The session and request number; `None` for a request that relies
    /// on transfer-id idempotency alone.
    pub session: Option<SessionRequest>,
    /// The batch.
    pub batch: LedgerBatch,
}

/// The application data of one Raft entry: the client requests the leader
/// gathered into it, in the order they apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftCommand {
    /// The leader's clock (ns since the Unix epoch) when it formed the
    /// entry. The state machine stamps the entry `max(now_ns, last + n)`
    /// for the `n` timestamps it needs, so every replica computes the same
    /// timestamps whatever its own clock says.
    pub now_ns: u64,
    /// The requests, at least one, their events within one batch's limit.
    pub requests: Vec<ClientRequest>,
}

impl RaftCommand {
    /// Timestamps the command takes: one per event, at least one per batch.
    pub fn timestamps_needed(&self) -> u64 {
        self.requests
            .iter()
            .map(|r| r.batch.timestamps_needed())
            .sum()
    }

    /// Appends the encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.now_ns.to_le_bytes());
        out.extend_from_slice(&(self.requests.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        for request in &self.requests {
            let session = request.session.unwrap_or(SessionRequest {
                client_id: 0,
                request: 0,
                acknowledged_below: 0,
            });
            out.extend_from_slice(&session.client_id.to_le_bytes());
            out.extend_from_slice(&session.request.to_le_bytes());
            out.extend_from_slice(&session.acknowledged_below.to_le_bytes());
        }
        let batches: Vec<&LedgerBatch> = self.requests.iter().map(|r| &r.batch).collect();
        codec::encode_batches(&batches, out);
    }

    /// Decodes what [`encode`](Self::encode) wrote.
    pub fn decode(bytes: &[u8]) -> Result<RaftCommand, DecodeError> {
        let error = |reason| DecodeError {
            what: "raft command",
            reason,
        };
        let header = bytes
            .get(..COMMAND_HEADER_BYTES)
            .ok_or(error("shorter than its header"))?;
        let now_ns = u64_at(header, 0);
        let count = u32_at(header, 8) as usize;
        if count == 0 || count > BATCH_EVENTS_MAX {
            return Err(error("request count out of range"));
        }
        if header[12..16] != [0; 4] {
            return Err(error("reserved bytes are not zero"));
        }
        let sessions_end = COMMAND_HEADER_BYTES + count * SESSION_BYTES;
        let sessions = bytes
            .get(COMMAND_HEADER_BYTES..sessions_end)
            .ok_or(error("shorter than its sessions"))?;
        let command = codec::decode(&bytes[sessions_end..])?;
        if command.batches.len() != count {
            return Err(error("request count does not match the batches"));
        }
        let requests = sessions
            .chunks_exact(SESSION_BYTES)
            .zip(command.batches)
            .map(|(session, batch)| {
                let client_id = u128::from_le_bytes(session[..16].try_into().expect("16 bytes"));
                let session = (client_id != 0).then(|| SessionRequest {
                    client_id,
                    request: u64_at(session, 16),
                    acknowledged_below: u64_at(session, 24),
                });
                ClientRequest { session, batch }
            })
            .collect();
        Ok(RaftCommand { now_ns, requests })
    }
}

/// Why a request got no ledger output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The request was applied once, but its reply has been forgotten
    /// (the client acknowledged it, or the session expired): it is not
    /// applied again, and its original reply cannot be given.
    #[error("request {request} of client {client_id:#x} was applied before; its reply is gone")]
    ReplyForgotten {
        /// The client.
        client_id: u128,
        /// The request.
        request: u64,
    },
}

/// What applying one request returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestReply {
    /// The batch's results, or why there are none.
    pub output: Result<LedgerOutput, SessionError>,
    /// True if this is a retry answered from the session: the reply is the
    /// original one and nothing was applied now.
    pub duplicate: bool,
}

/// What applying one Raft entry returns: one reply per request, in order;
/// empty for a blank or membership entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftReply {
    /// The replies.
    pub replies: Vec<RequestReply>,
}

const REPLY_OK: u8 = 0;
const REPLY_FORGOTTEN: u8 = 1;

/// Appends the encoding of one ledger output: account count, transfer
/// count, then (timestamp u64, status u32) per result.
pub(crate) fn encode_output(output: &LedgerOutput, out: &mut Vec<u8>) {
    out.extend_from_slice(&(output.accounts.len() as u32).to_le_bytes());
    out.extend_from_slice(&(output.transfers.len() as u32).to_le_bytes());
    for result in &output.accounts {
        out.extend_from_slice(&result.timestamp.to_le_bytes());
        out.extend_from_slice(&result.status.as_u32().to_le_bytes());
    }
    for result in &output.transfers {
        out.extend_from_slice(&result.timestamp.to_le_bytes());
        out.extend_from_slice(&result.status.as_u32().to_le_bytes());
    }
}

/// Decodes one output from the front of `bytes`, returning the rest.
pub(crate) fn decode_output(bytes: &[u8]) -> Result<(LedgerOutput, &[u8]), DecodeError> {
    let error = |reason| DecodeError {
        what: "ledger output",
        reason,
    };
    let head = bytes.get(..8).ok_or(error("shorter than its header"))?;
    let accounts = u32_at(head, 0) as usize;
    let transfers = u32_at(head, 4) as usize;
    if accounts + transfers > BATCH_EVENTS_MAX {
        return Err(error("more results than a batch has events"));
    }
    let end = 8 + (accounts + transfers) * 12;
    let body = bytes.get(8..end).ok_or(error("shorter than its results"))?;
    let mut output = LedgerOutput::default();
    for (i, result) in body.chunks_exact(12).enumerate() {
        let timestamp = u64_at(result, 0);
        let status = u32_at(result, 8);
        if i < accounts {
            let status = crate::ledger::CreateAccountStatus::from_u32(status)
                .ok_or(error("unknown account status"))?;
            output
                .accounts
                .push(CreateAccountResult { timestamp, status });
        } else {
            let status = crate::ledger::CreateTransferStatus::from_u32(status)
                .ok_or(error("unknown transfer status"))?;
            output
                .transfers
                .push(CreateTransferResult { timestamp, status });
        }
    }
    Ok((output, &bytes[end..]))
}

impl RaftReply {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.replies.len() as u32).to_le_bytes());
        for reply in &self.replies {
            match &reply.output {
                Ok(output) => {
                    out.push(REPLY_OK);
                    out.push(u8::from(reply.duplicate));
                    encode_output(output, out);
                }
                Err(SessionError::ReplyForgotten { client_id, request }) => {
                    out.push(REPLY_FORGOTTEN);
                    out.push(u8::from(reply.duplicate));
                    out.extend_from_slice(&client_id.to_le_bytes());
                    out.extend_from_slice(&request.to_le_bytes());
                }
            }
        }
    }

    fn decode(bytes: &[u8]) -> Result<RaftReply, DecodeError> {
        let error = |reason| DecodeError {
            what: "raft reply",
            reason,
        };
        let head = bytes.get(..4).ok_or(error("shorter than its header"))?;
        let count = u32_at(head, 0) as usize;
        if count > BATCH_EVENTS_MAX {
            return Err(error("more replies than an entry has requests"));
        }
        let mut rest = &bytes[4..];
        let mut replies = Vec::with_capacity(count);
        for _ in 0..count {
            let tag = rest.get(..2).ok_or(error("shorter than its replies"))?;
            let duplicate = match tag[1] {
                0 => false,
                1 => true,
                _ => return Err(error("bad duplicate flag")),
            };
            let output = match tag[0] {
                REPLY_OK => {
                    let (output, after) = decode_output(&rest[2..])?;
                    rest = after;
                    Ok(output)
                }
                REPLY_FORGOTTEN => {
                    let body = rest.get(2..26).ok_or(error("shorter than its replies"))?;
                    let client_id = u128::from_le_bytes(body[..16].try_into().expect("16 bytes"));
                    let request = u64_at(body, 16);
                    rest = &rest[26..];
                    Err(SessionError::ReplyForgotten { client_id, request })
                }
                _ => return Err(error("unknown reply tag")),
            };
            replies.push(RequestReply { output, duplicate });
        }
        if !rest.is_empty() {
            return Err(error("trailing bytes"));
        }
        Ok(RaftReply { replies })
    }
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("8 bytes"))
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

/// Both types cross the network and the log inside openraft's serde types,
/// as one byte string each in the encodings above.
macro_rules! serde_as_bytes {
    ($type:ty) => {
        impl serde::Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut bytes = Vec::new();
                self.encode(&mut bytes);
                serializer.serialize_bytes(&bytes)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct BytesVisitor;
                impl<'de> Visitor<'de> for BytesVisitor {
                    type Value = $type;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("the byte encoding of ", stringify!($type)))
                    }
                    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<$type, E> {
                        <$type>::decode(bytes).map_err(E::custom)
                    }
                    fn visit_byte_buf<E: serde::de::Error>(
                        self,
                        bytes: Vec<u8>,
                    ) -> Result<$type, E> {
                        self.visit_bytes(&bytes)
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<$type, A::Error> {
                        // Formats without a byte string (JSON) send a sequence.
                        let mut bytes =
                            Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                        while let Some(byte) = seq.next_element::<u8>()? {
                            bytes.push(byte);
                        }
                        self.visit_bytes(&bytes)
                    }
                }
                deserializer.deserialize_bytes(BytesVisitor)
            }
        }
    };
}

serde_as_bytes!(RaftCommand);
serde_as_bytes!(RaftReply);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{CreateTransferStatus, Transfer};

    fn command() -> RaftCommand {
        RaftCommand {
            now_ns: 42,
            requests: vec![
                ClientRequest {
                    session: Some(SessionRequest {
                        client_id: 7,
                        request: 3,
                        acknowledged_below: 2,
                    }),
                    batch: LedgerBatch::CreateTransfers(vec![Transfer {
                        id: 1,
                        amount: 5,
                        ..Transfer::default()
                    }]),
                },
                ClientRequest {
                    session: None,
                    batch: LedgerBatch::CreateTransfers(vec![]),
                },
            ],
        }
    }

    // Goal: commands and replies round-trip through bincode, and every
    // truncation of a command's bytes is refused, never misread.
    #[test]
    fn round_trip_and_truncations() {
        let command = command();
        let bytes = bincode::serialize(&command).expect("serializes");
        assert_eq!(
            bincode::deserialize::<RaftCommand>(&bytes).ok(),
            Some(command.clone())
        );
        let mut raw = Vec::new();
        command.encode(&mut raw);
        for len in 0..raw.len() {
            assert!(
                RaftCommand::decode(&raw[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
        let reply = RaftReply {
            replies: vec![
                RequestReply {
                    output: Ok(LedgerOutput {
                        accounts: vec![],
                        transfers: vec![CreateTransferResult {
                            timestamp: 9,
                            status: CreateTransferStatus::Created,
                        }],
                    }),
                    duplicate: true,
                },
                RequestReply {
                    output: Err(SessionError::ReplyForgotten {
                        client_id: 7,
                        request: 1,
                    }),
                    duplicate: false,
                },
            ],
        };
        let bytes = bincode::serialize(&reply).expect("serializes");
        assert_eq!(bincode::deserialize::<RaftReply>(&bytes).ok(), Some(reply));
    }
}
