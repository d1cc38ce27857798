//! Client sessions in the replicated state: exactly-once application of a
//! client's requests across retries and leader changes (Raft thesis §6.3).
//!
//! A client picks a random non-zero id and numbers its requests from 1; a
//! retry reuses the number. The state machine keeps, per client, the reply
//! of every request it applied and the client has not yet acknowledged
//! (`acknowledged_below` in each request), so:
//!
//! - a request whose reply is kept is a retry: it gets the original reply
//!   and is not applied again;
//! - a request below the session's forgotten mark was applied or given up
//!   on, and its reply is gone: it gets [`SessionError::ReplyForgotten`],
//!   never a second application;
//! - any other request is new.
//!
//! Bounds, all deterministic (decided by the applied log alone, so every
//! replica keeps the same sessions): at most [`SESSION_REPLIES_MAX`]
//! replies per client (the oldest is forgotten first), at most
//! [`SESSIONS_MAX`] clients, and a client idle for [`SESSION_IDLE_NS`] of
//! ledger time is expired. An expired client's next request starts a new
//! session, so the client library never retries a request for longer than
//! [`SESSION_RETRY_NS`], far below the idle limit: a retry cannot outlive
//! the session that would recognise it. Underneath, transfer ids are
//! idempotent (`exists`) whatever the session says.

use std::collections::{BTreeMap, BTreeSet};

use super::command::{SessionError, SessionRequest, decode_output, encode_output};
use crate::ledger::LedgerOutput;
use crate::storage::store::DecodeError;

/// Replies kept per client.
pub const SESSION_REPLIES_MAX: usize = 1024;
/// Clients kept; the least recently seen is expired first.
pub const SESSIONS_MAX: usize = 65_536;
/// Ledger time after which an idle client's session expires: one hour.
pub const SESSION_IDLE_NS: u64 = 3_600 * 1_000_000_000;
/// Longest a client retries one request: one minute.
pub const SESSION_RETRY_NS: u64 = 60 * 1_000_000_000;
const _: () = assert!(SESSION_RETRY_NS * 10 <= SESSION_IDLE_NS);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Session {
    /// Requests below this have no reply kept and are never applied again.
    forgotten_below: u64,
    /// Ledger time of the last request.
    last_seen: u64,
    replies: BTreeMap<u64, LedgerOutput>,
}

/// What the sessions say of a request.
#[derive(Debug)]
pub(crate) enum Check {
    /// Apply it, then [`Sessions::record`] the reply.
    New,
    /// A retry: the original reply.
    Duplicate(LedgerOutput),
    /// Applied before, reply gone.
    Forgotten(SessionError),
}

/// The session table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sessions {
    clients: BTreeMap<u128, Session>,
    /// (last seen, client) of every client, oldest first.
    by_last_seen: BTreeSet<(u64, u128)>,
}

impl Sessions {
    /// Number of clients with a session.
    pub(crate) fn len(&self) -> usize {
        self.clients.len()
    }

    /// Expires idle clients as of ledger time `now`.
    pub(crate) fn expire(&mut self, now: u64) {
        let horizon = now.saturating_sub(SESSION_IDLE_NS);
        while let Some(&(seen, client)) = self.by_last_seen.first() {
            if seen >= horizon && self.clients.len() <= SESSIONS_MAX {
                break;
            }
            self.by_last_seen.pop_first();
            self.clients.remove(&client);
        }
    }

    /// Classifies a request seen at ledger time `now`, and notes the
    /// acknowledgements it carries.
    pub(crate) fn check(&mut self, request: SessionRequest, now: u64) -> Check {
        let session = self.clients.entry(request.client_id).or_default();
        self.by_last_seen
            .remove(&(session.last_seen, request.client_id));
        session.last_seen = now;
        self.by_last_seen.insert((now, request.client_id));
        if request.acknowledged_below > session.forgotten_below {
            session.forgotten_below = request.acknowledged_below;
            session.replies = session.replies.split_off(&request.acknowledged_below);
        }
        if let Some(reply) = session.replies.get(&request.request) {
            return Check::Duplicate(reply.clone());
        }
        if request.request < session.forgotten_below {
            return Check::Forgotten(SessionError::ReplyForgotten {
                client_id: request.client_id,
                request: request.request,
            });
        }
        Check::New
    }

    /// Keeps the reply of a request [`check`](Self::check) called new.
    pub(crate) fn record(&mut self, request: SessionRequest, reply: &LedgerOutput) {
        let session = self.clients.entry(request.client_id).or_default();
        session.replies.insert(request.request, reply.clone());
        while session.replies.len() > SESSION_REPLIES_MAX {
            if let Some((oldest, _)) = session.replies.pop_first() {
                session.forgotten_below = session.forgotten_below.max(oldest + 1);
            }
        }
    }

    /// Appends the snapshot encoding: client count, then per client id,
    /// forgotten mark, last seen, reply count, and (request, output) pairs.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.clients.len() as u64).to_le_bytes());
        for (client, session) in &self.clients {
            out.extend_from_slice(&client.to_le_bytes());
            out.extend_from_slice(&session.forgotten_below.to_le_bytes());
            out.extend_from_slice(&session.last_seen.to_le_bytes());
            out.extend_from_slice(&(session.replies.len() as u64).to_le_bytes());
            for (request, output) in &session.replies {
                out.extend_from_slice(&request.to_le_bytes());
                encode_output(output, out);
            }
        }
    }

    /// Decodes what [`encode`](Self::encode) wrote. Never panics.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Sessions, DecodeError> {
        let error = |reason| DecodeError {
            what: "client sessions",
            reason,
        };
        let mut cursor = Cursor(bytes);
        let count = cursor.u64()?;
        if count > SESSIONS_MAX as u64 + 1 {
            return Err(error("more clients than a session table holds"));
        }
        let mut sessions = Sessions::default();
        for _ in 0..count {
            let client = u128::from_le_bytes(cursor.take(16)?.try_into().expect("16 bytes"));
            let forgotten_below = cursor.u64()?;
            let last_seen = cursor.u64()?;
            let replies = cursor.u64()?;
            if replies > SESSION_REPLIES_MAX as u64 {
                return Err(error("more replies than a session keeps"));
            }
            let mut session = Session {
                forgotten_below,
                last_seen,
                replies: BTreeMap::new(),
            };
            for _ in 0..replies {
                let request = cursor.u64()?;
                let (output, rest) = decode_output(cursor.0)?;
                cursor.0 = rest;
                session.replies.insert(request, output);
            }
            sessions.by_last_seen.insert((last_seen, client));
            sessions.clients.insert(client, session);
        }
        if !cursor.0.is_empty() {
            return Err(error("trailing bytes"));
        }
        Ok(sessions)
    }
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(DecodeError {
            what: "client sessions",
            reason: "shorter than its counts",
        })?;
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(client_id: u128, request: u64, acknowledged_below: u64) -> SessionRequest {
        SessionRequest {
            client_id,
            request,
            acknowledged_below,
        }
    }

    // Goal: a retry gets the original reply, an acknowledged request is
    // never new again, and the table round-trips through its encoding.
    #[test]
    fn retries_acknowledgements_and_encoding() {
        let mut sessions = Sessions::default();
        let reply = LedgerOutput::default();
        assert!(matches!(sessions.check(request(5, 1, 0), 10), Check::New));
        sessions.record(request(5, 1, 0), &reply);
        assert!(matches!(
            sessions.check(request(5, 1, 0), 11),
            Check::Duplicate(_)
        ));
        assert!(matches!(sessions.check(request(5, 2, 2), 12), Check::New));
        assert!(matches!(
            sessions.check(request(5, 1, 2), 13),
            Check::Forgotten(SessionError::ReplyForgotten {
                client_id: 5,
                request: 1
            })
        ));
        let mut bytes = Vec::new();
        sessions.encode(&mut bytes);
        assert_eq!(Sessions::decode(&bytes).ok(), Some(sessions.clone()));
        for len in 0..bytes.len() {
            assert!(Sessions::decode(&bytes[..len]).is_err());
        }
        sessions.expire(13 + SESSION_IDLE_NS + 1);
        assert_eq!(sessions.len(), 0);
    }

    // Goal: past the per-client bound the oldest reply is forgotten, and
    // its retry is refused, not applied again.
    #[test]
    fn reply_bound_forgets_oldest() {
        let mut sessions = Sessions::default();
        for r in 1..=SESSION_REPLIES_MAX as u64 + 1 {
            assert!(matches!(sessions.check(request(9, r, 0), r), Check::New));
            sessions.record(request(9, r, 0), &LedgerOutput::default());
        }
        assert!(matches!(
            sessions.check(request(9, 1, 0), 0),
            Check::Forgotten(_)
        ));
        assert!(matches!(
            sessions.check(request(9, 2, 0), 0),
            Check::Duplicate(_)
        ));
    }
}
