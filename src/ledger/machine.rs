//! The ledger as a [`StateMachine`] of the store: commands are batches of
//! accounts or transfers, outputs are their dense results.
//!
//! The store assigns each batch `n` consecutive timestamps (one per event,
//! at least one) and passes the last as the batch timestamp, exactly the
//! TigerBeetle convention the state machine expects.

use std::io::Write;

use super::codec::{self, LedgerCommand};
use super::results::{CreateAccountResult, CreateTransferResult};
use super::state::{LedgerImage, LedgerState};
use crate::storage::store::{ApplyContext, DecodeError, StateMachine};

/// What applying a command returns: the results of its kind, one per
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

impl StateMachine for LedgerMachine {
    type Command = LedgerCommand;
    type Output = LedgerOutput;
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
        command.len().max(1) as u64
    }

    fn apply(&mut self, command: LedgerCommand, context: ApplyContext) -> LedgerOutput {
        match command {
            LedgerCommand::CreateAccounts(events) => LedgerOutput {
                accounts: self.state.create_accounts(&events, context.timestamp),
                ..LedgerOutput::default()
            },
            LedgerCommand::CreateTransfers(events) => LedgerOutput {
                transfers: self.state.create_transfers(&events, context.timestamp),
                ..LedgerOutput::default()
            },
        }
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
