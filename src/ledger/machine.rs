//! The ledger as a [`StateMachine`] of the store: commands are batches of
//! accounts or transfers, outputs are their dense results.
//!
//! The store assigns each command `n` consecutive timestamps (one per
//! event, at least one per batch) and passes the last. A command of several
//! gathered batches splits them in batch order: batch `k` takes the next
//! `max(len_k, 1)` timestamps and is applied with the last of them as its
//! batch timestamp, exactly as if it had been logged alone right after the
//! batch before it. That is the TigerBeetle convention the state machine
//! expects, and what makes gathering invisible to each caller.

use std::io::Write;

use super::codec::{self, LedgerBatch, LedgerCommand};
use super::results::{CreateAccountResult, CreateTransferResult};
use super::state::{LedgerImage, LedgerState};
use crate::storage::store::{ApplyContext, DecodeError, StateMachine};

/// What applying one batch returns: the results of its kind, one per
/// event (the other list is empty). A struct rather than an enum, so that
/// taking the results out needs no branch for a kind that cannot occur.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerOutput {
    /// Results of `create_accounts`, one per event.
    pub accounts: Vec<CreateAccountResult>,
    /// Results of `create_transfers`, one per event.
    pub transfers: Vec<CreateTransferResult>,
}

/// The ledger state hosted by a store.
pub struct LedgerMachine {
    /// The state proper.
    pub state: LedgerState,
}

impl std::fmt::Debug for LedgerMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerMachine")
            .field("accounts", &self.state.account_count())
            .field("transfers", &self.state.transfer_count())
            .finish()
    }
}

impl LedgerMachine {
    /// Applies one batch with batch timestamp `timestamp`.
    pub fn apply_batch(&mut self, batch: LedgerBatch, timestamp: u64) -> LedgerOutput {
        match batch {
            LedgerBatch::CreateAccounts(events) => LedgerOutput {
                accounts: self.state.create_accounts(&events, timestamp),
                ..LedgerOutput::default()
            },
            LedgerBatch::CreateTransfers(events) => LedgerOutput {
                transfers: self.state.create_transfers(&events, timestamp),
                ..LedgerOutput::default()
            },
        }
    }
}

impl StateMachine for LedgerMachine {
    type Command = LedgerCommand;
    /// One output per batch of the command, in batch order.
    type Output = Vec<LedgerOutput>;
    type Image = LedgerImage;

    fn initial() -> Self {
        LedgerMachine {
            state: LedgerState::new(),
        }
    }

    fn encode_command(command: &LedgerCommand, out: &mut Vec<u8>) {
        codec::encode(command, out)
    }

    fn decode_command(bytes: &[u8]) -> Result<LedgerCommand, DecodeError> {
        codec::decode(bytes)
    }

    fn timestamps_needed(command: &LedgerCommand) -> u64 {
        command.timestamps_needed()
    }

    fn apply(&mut self, command: LedgerCommand, context: ApplyContext) -> Vec<LedgerOutput> {
        // The command owns `first ..= context.timestamp`; the store assigned
        // exactly `timestamps_needed` of them.
        let mut last = context.timestamp - command.timestamps_needed();
        let mut outputs = Vec::with_capacity(command.batches.len());
        for batch in command.batches {
            last += batch.timestamps_needed();
            outputs.push(self.apply_batch(batch, last));
        }
        // Pair assertion with the store's sequencer.
        assert_eq!(
            last, context.timestamp,
            "batch timestamps split the command's"
        );
        outputs
    }

    fn reserve_for_replay(&mut self, log_bytes: u64) {
        self.state.reserve_for_replay(log_bytes)
    }

    fn image(&self) -> LedgerImage {
        self.state.image()
    }

    fn write_image(image: &LedgerImage, out: &mut dyn Write) -> std::io::Result<()> {
        LedgerState::write_image(image, out)
    }

    fn restore(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::restore_for_replay(bytes, 0)
    }

    fn restore_for_replay(bytes: &[u8], log_bytes: u64) -> Result<Self, DecodeError> {
        LedgerState::restore_for_replay(bytes, log_bytes)
            .map(|state| LedgerMachine { state })
            .map_err(|_| DecodeError {
                what: "ledger snapshot",
                reason: "invalid ledger image",
            })
    }
}
