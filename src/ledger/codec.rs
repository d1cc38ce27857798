//! How a ledger command is encoded in the log.
//!
//! A command is one caller's batch, or several callers' batches gathered
//! into one record (see `storage::gather`). A single batch keeps the
//! original encoding, so logs written before gathering read unchanged:
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
//! A gathered command of `p` batches:
//!
//! ```text
//! offset  size  field
//!      0     1  operation: 3 = gathered
//!      1     1  codec version (1)
//!      2     2  reserved, zero
//!      4     4  batch count p (2 ..= BATCH_EVENTS_MAX)
//!      8   8*p  per batch: operation (1 or 2), 3 reserved zero bytes, event count
//!    ...  128*N  the events of every batch, in batch order
//! ```
//!
//! The events of all batches together number at most `BATCH_EVENTS_MAX`,
//! and so do the timestamps the command takes (one per event, at least one
//! per batch): a gathered command is never bigger than one full batch.
//!
//! Decoding accepts exactly what encoding produces and rejects everything
//! else with a [`DecodeError`]; it never panics, whatever the bytes.

use super::BATCH_EVENTS_MAX;
use super::account::Account;
use super::transfer::Transfer;
use crate::storage::store::DecodeError;

/// Bytes before the events.
pub const COMMAND_HEADER_BYTES: usize = 8;
/// Bytes of each batch header of a gathered command.
pub const BATCH_HEADER_BYTES: usize = 8;
/// The codec version this code writes and reads.
pub const CODEC_VERSION: u8 = 1;
const OPERATION_CREATE_ACCOUNTS: u8 = 1;
const OPERATION_CREATE_TRANSFERS: u8 = 2;
const OPERATION_GATHERED: u8 = 3;
const EVENT_BYTES: usize = 128;

const _: () = assert!(Account::SIZE == EVENT_BYTES && Transfer::SIZE == EVENT_BYTES);

/// One caller's batch of events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerBatch {
    /// `create_accounts`.
    CreateAccounts(Vec<Account>),
    /// `create_transfers`.
    CreateTransfers(Vec<Transfer>),
}

impl LedgerBatch {
    /// Number of events in the batch.
    pub fn len(&self) -> usize {
        match self {
            LedgerBatch::CreateAccounts(events) => events.len(),
            LedgerBatch::CreateTransfers(events) => events.len(),
        }
    }

    /// True for an empty batch.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // Beside `len`, for clippy.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Timestamps the batch takes: one per event, at least one.
    pub fn timestamps_needed(&self) -> u64 {
        self.len().max(1) as u64
    }

    fn operation(&self) -> u8 {
        match self {
            LedgerBatch::CreateAccounts(_) => OPERATION_CREATE_ACCOUNTS,
            LedgerBatch::CreateTransfers(_) => OPERATION_CREATE_TRANSFERS,
        }
    }

    fn encode_events(&self, out: &mut Vec<u8>) {
        match self {
            LedgerBatch::CreateAccounts(events) => {
                for event in events {
                    out.extend_from_slice(&event.to_bytes());
                }
            }
            LedgerBatch::CreateTransfers(events) => {
                for event in events {
                    out.extend_from_slice(&event.to_bytes());
                }
            }
        }
    }
}

/// A ledger command: the batches of one log record, applied one after
/// another exactly as if each had been logged on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerCommand {
    /// The batches, in the order they apply. At least one.
    pub batches: Vec<LedgerBatch>,
}

impl LedgerCommand {
    /// A command of one batch.
    pub fn single(batch: LedgerBatch) -> Self {
        LedgerCommand {
            batches: vec![batch],
        }
    }

    /// `create_accounts` of one batch.
    #[cfg(any(test, feature = "internals"))]
    pub fn create_accounts(accounts: Vec<Account>) -> Self {
        Self::single(LedgerBatch::CreateAccounts(accounts))
    }

    /// `create_transfers` of one batch.
    #[cfg(any(test, feature = "internals"))]
    pub fn create_transfers(transfers: Vec<Transfer>) -> Self {
        Self::single(LedgerBatch::CreateTransfers(transfers))
    }

    /// Number of events in all batches.
    pub fn len(&self) -> usize {
        self.batches.iter().map(LedgerBatch::len).sum()
    }

    /// True when no batch has an event.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))] // Beside `len`, for clippy.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Timestamps the command takes: the sum of its batches'.
    pub fn timestamps_needed(&self) -> u64 {
        self.batches
            .iter()
            .map(LedgerBatch::timestamps_needed)
            .sum()
    }

    /// The batches with their batch timestamps, for a command whose last timestamp is
    /// `last`: batch k takes the next `timestamps_needed` after the batches before it, so
    /// the last batch's timestamp is `last`. `None` if `last` is smaller than the
    /// timestamps the command takes.
    pub fn into_timestamped(self, last: u64) -> Option<impl Iterator<Item = (LedgerBatch, u64)>> {
        let mut timestamp = last.checked_sub(self.timestamps_needed())?;
        Some(self.batches.into_iter().map(move |batch| {
            timestamp += batch.timestamps_needed();
            (batch, timestamp)
        }))
    }
}

/// Appends the encoding of `command` to `out`.
pub fn encode(command: &LedgerCommand, out: &mut Vec<u8>) {
    let batches: Vec<&LedgerBatch> = command.batches.iter().collect();
    encode_batches(&batches, out);
}

/// Appends the encoding of the command made of `batches`, in order,
/// without copying them into a command first (the replicated mode encodes
/// each entry's batches for its log and for every follower).
pub fn encode_batches(batches: &[&LedgerBatch], out: &mut Vec<u8>) {
    let timestamps: u64 = batches.iter().map(|b| b.timestamps_needed()).sum();
    assert!(
        !batches.is_empty() && timestamps <= BATCH_EVENTS_MAX as u64,
        "the engine checks batch sizes and gathers within them first"
    );
    let events: usize = batches.iter().map(|b| b.len()).sum();
    out.reserve(COMMAND_HEADER_BYTES + batches.len() * BATCH_HEADER_BYTES + events * EVENT_BYTES);
    if let [batch] = batches {
        out.push(batch.operation());
        out.push(CODEC_VERSION);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(batch.len() as u32).to_le_bytes());
        batch.encode_events(out);
        return;
    }
    out.push(OPERATION_GATHERED);
    out.push(CODEC_VERSION);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(batches.len() as u32).to_le_bytes());
    for batch in batches {
        out.push(batch.operation());
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&(batch.len() as u32).to_le_bytes());
    }
    for batch in batches {
        batch.encode_events(out);
    }
}

fn error(reason: &'static str) -> DecodeError {
    DecodeError {
        what: "ledger command",
        reason,
    }
}

fn read_u32(bytes: &[u8]) -> usize {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(word) as usize
}

/// Decodes `count` events of `operation` from the front of `events`.
fn decode_batch(operation: u8, count: usize, events: &[u8]) -> Result<LedgerBatch, DecodeError> {
    let bytes = events
        .get(..count * EVENT_BYTES)
        .ok_or(error("length does not match the event count"))?;
    let chunks = bytes
        .chunks_exact(EVENT_BYTES)
        .map(|chunk| <&[u8; EVENT_BYTES]>::try_from(chunk).expect("exact chunks"));
    match operation {
        OPERATION_CREATE_ACCOUNTS => Ok(LedgerBatch::CreateAccounts(
            chunks.map(Account::from_bytes).collect(),
        )),
        OPERATION_CREATE_TRANSFERS => Ok(LedgerBatch::CreateTransfers(
            chunks.map(Transfer::from_bytes).collect(),
        )),
        _ => Err(error("unknown operation")),
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
    let count = read_u32(&header[4..8]);
    if count > BATCH_EVENTS_MAX {
        return Err(error("more events than a batch may hold"));
    }
    let body = &bytes[COMMAND_HEADER_BYTES..];
    if header[0] != OPERATION_GATHERED {
        if body.len() != count * EVENT_BYTES {
            return Err(error("length does not match the event count"));
        }
        return Ok(LedgerCommand::single(decode_batch(header[0], count, body)?));
    }
    decode_gathered(count, body)
}

/// Decodes the batch headers and events of a gathered command of `parts` batches.
fn decode_gathered(parts: usize, body: &[u8]) -> Result<LedgerCommand, DecodeError> {
    if parts < 2 {
        return Err(error("a gathered command holds at least two batches"));
    }
    let headers = body
        .get(..parts * BATCH_HEADER_BYTES)
        .ok_or(error("shorter than its batch headers"))?;
    let mut events = &body[parts * BATCH_HEADER_BYTES..];
    let mut batches = Vec::with_capacity(parts);
    let mut timestamps = 0usize;
    for header in headers.chunks_exact(BATCH_HEADER_BYTES) {
        if header[1..4] != [0, 0, 0] {
            return Err(error("reserved bytes are not zero"));
        }
        let count = read_u32(&header[4..8]);
        timestamps += count.max(1);
        if timestamps > BATCH_EVENTS_MAX {
            return Err(error("more events than a batch may hold"));
        }
        batches.push(decode_batch(header[0], count, events)?);
        events = &events[count * EVENT_BYTES..];
    }
    if !events.is_empty() {
        return Err(error("length does not match the event count"));
    }
    Ok(LedgerCommand { batches })
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
        let command = LedgerCommand::create_transfers(transfers);
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
        let empty = LedgerCommand::create_accounts(Vec::new());
        let mut bytes = Vec::new();
        encode(&empty, &mut bytes);
        assert_eq!(decode(&bytes).unwrap(), empty);
    }

    // Goal: a gathered command round-trips batch by batch, keeps a single
    // batch in the original encoding, and every truncation, extension or
    // corruption of its headers is rejected rather than misread.
    #[test]
    fn gathered_round_trip_and_rejections() {
        let transfer = |id| Transfer {
            id,
            ..Transfer::default()
        };
        let account = |id| Account {
            id,
            ..Account::default()
        };
        let command = LedgerCommand {
            batches: vec![
                LedgerBatch::CreateTransfers(vec![transfer(1), transfer(2)]),
                LedgerBatch::CreateAccounts(Vec::new()),
                LedgerBatch::CreateAccounts(vec![account(3)]),
            ],
        };
        assert_eq!(command.timestamps_needed(), 4);
        let mut bytes = Vec::new();
        encode(&command, &mut bytes);
        assert_eq!(bytes.len(), 8 + 3 * 8 + 3 * 128);
        assert_eq!(bytes[0], OPERATION_GATHERED);
        assert_eq!(decode(&bytes).unwrap(), command);
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0; 128]);
        assert!(decode(&longer).is_err(), "extra event bytes");
        // Batch count 1 or 0 (a single batch has its own encoding), a bad
        // batch operation, reserved bytes, a count beyond the bytes.
        for (index, value) in [
            (4, 1u8),
            (4, 0),
            (8, 3),
            (8, 0),
            (9, 1),
            (12, 9),
            (28, 2),
            (20, 1),
        ] {
            let mut bad = bytes.clone();
            bad[index] = value;
            assert!(decode(&bad).is_err(), "byte {index} = {value}");
        }
        let single = LedgerCommand::create_transfers(vec![transfer(1)]);
        let mut bytes = Vec::new();
        encode(&single, &mut bytes);
        assert_eq!(
            (bytes[0], bytes.len()),
            (OPERATION_CREATE_TRANSFERS, 8 + 128)
        );
    }

    // Goal: a gathered command may not take more timestamps than one full
    // batch, even when each batch is small (empty batches take one each).
    #[test]
    fn gathered_command_within_the_batch_limit() {
        let parts = BATCH_EVENTS_MAX + 1;
        let mut bytes = vec![OPERATION_GATHERED, CODEC_VERSION, 0, 0];
        bytes.extend_from_slice(&(parts as u32).to_le_bytes());
        for _ in 0..parts {
            bytes.extend_from_slice(&[OPERATION_CREATE_ACCOUNTS, 0, 0, 0, 0, 0, 0, 0]);
        }
        assert!(decode(&bytes).is_err(), "8190 batches");
    }
}
