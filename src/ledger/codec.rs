//! How a ledger command is encoded in the log.
//!
//! ```text
//! offset  size  field
//!      0     1  operation: 1 = create_accounts, 2 = create_transfers
//!      1     1  codec version (1)
//!      2     2  reserved, zero
//!      4     4  event count n (at most BATCH_EVENTS_MAX)
//!      8 128*n  events, each in TigerBeetle's 128-byte layout
//! ```
//!
//! Decoding accepts exactly what encoding produces and rejects everything
//! else with a [`DecodeError`]; it never panics, whatever the bytes.

use super::BATCH_EVENTS_MAX;
use super::account::Account;
use super::transfer::Transfer;
use crate::storage::store::DecodeError;

/// Bytes before the events.
pub const COMMAND_HEADER_BYTES: usize = 8;
/// The codec version this code writes and reads.
pub const CODEC_VERSION: u8 = 1;
const OPERATION_CREATE_ACCOUNTS: u8 = 1;
const OPERATION_CREATE_TRANSFERS: u8 = 2;
const EVENT_BYTES: usize = 128;

const _: () = assert!(Account::SIZE == EVENT_BYTES && Transfer::SIZE == EVENT_BYTES);

/// A ledger command: one batch of events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerCommand {
    /// `create_accounts`.
    CreateAccounts(Vec<Account>),
    /// `create_transfers`.
    CreateTransfers(Vec<Transfer>),
}

impl LedgerCommand {
    /// Number of events in the batch.
    pub fn len(&self) -> usize {
        match self {
            LedgerCommand::CreateAccounts(events) => events.len(),
            LedgerCommand::CreateTransfers(events) => events.len(),
        }
    }

    /// True for an empty batch.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // Beside `len`, for clippy.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Appends the encoding of `command` to `out`.
pub fn encode(command: &LedgerCommand, out: &mut Vec<u8>) {
    assert!(
        command.len() <= BATCH_EVENTS_MAX,
        "the engine checks batch sizes first"
    );
    let (operation, count) = match command {
        LedgerCommand::CreateAccounts(events) => (OPERATION_CREATE_ACCOUNTS, events.len()),
        LedgerCommand::CreateTransfers(events) => (OPERATION_CREATE_TRANSFERS, events.len()),
    };
    out.reserve(COMMAND_HEADER_BYTES + count * EVENT_BYTES);
    out.push(operation);
    out.push(CODEC_VERSION);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(count as u32).to_le_bytes());
    match command {
        LedgerCommand::CreateAccounts(events) => {
            for event in events {
                out.extend_from_slice(&event.to_bytes());
            }
        }
        LedgerCommand::CreateTransfers(events) => {
            for event in events {
                out.extend_from_slice(&event.to_bytes());
            }
        }
    }
}

fn error(reason: &'static str) -> DecodeError {
    DecodeError {
        what: "ledger command",
        reason,
    }
}

/// Decodes a command written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<LedgerCommand, DecodeError> {
    let header = bytes
        .get(..COMMAND_HEADER_BYTES)
        .ok_or(error("shorter than its header"))?;
    if header[1] != CODEC_VERSION {
        return Err(error("unknown codec version"));
    }
    if header[2..4] != [0, 0] {
        return Err(error("reserved bytes are not zero"));
    }
    let count = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
    if count > BATCH_EVENTS_MAX {
        return Err(error("more events than a batch may hold"));
    }
    let events = &bytes[COMMAND_HEADER_BYTES..];
    if events.len() != count * EVENT_BYTES {
        return Err(error("length does not match the event count"));
    }
    let chunks = events
        .chunks_exact(EVENT_BYTES)
        .map(|chunk| <&[u8; EVENT_BYTES]>::try_from(chunk).expect("exact chunks"));
    match header[0] {
        OPERATION_CREATE_ACCOUNTS => Ok(LedgerCommand::CreateAccounts(
            chunks.map(Account::from_bytes).collect(),
        )),
        OPERATION_CREATE_TRANSFERS => Ok(LedgerCommand::CreateTransfers(
            chunks.map(Transfer::from_bytes).collect(),
        )),
        _ => Err(error("unknown operation")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: commands round-trip, and every truncation or corruption of the
    // header is rejected rather than misread.
    #[test]
    fn round_trip_and_rejections() {
        let transfers: Vec<Transfer> = (1..=3u128)
            .map(|id| Transfer {
                id,
                amount: id * 10,
                ..Transfer::default()
            })
            .collect();
        let command = LedgerCommand::CreateTransfers(transfers);
        let mut bytes = Vec::new();
        encode(&command, &mut bytes);
        assert_eq!(bytes.len(), 8 + 3 * 128);
        assert_eq!(decode(&bytes).unwrap(), command);
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for (index, value) in [(0, 9u8), (1, 2), (2, 1), (3, 1), (4, 4), (7, 1)] {
            let mut bad = bytes.clone();
            bad[index] = value;
            assert!(decode(&bad).is_err(), "byte {index} = {value}");
        }
        let empty = LedgerCommand::CreateAccounts(Vec::new());
        let mut bytes = Vec::new();
        encode(&empty, &mut bytes);
        assert_eq!(decode(&bytes).unwrap(), empty);
    }
}
