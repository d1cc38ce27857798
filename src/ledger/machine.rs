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
        // The store assigned exactly `timestamps_needed` timestamps ending at
        // `context.timestamp` (and replay checks that a logged one is that large).
        let timestamped = command
            .into_timestamped(context.timestamp)
            .expect("the store assigns a command the timestamps it needs");
        let mut outputs = Vec::new();
        let mut last = 0;
        for (batch, timestamp) in timestamped {
            outputs.push(self.apply_batch(batch, timestamp));
            last = timestamp;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Account, CreateTransferStatus, Transfer, TransferFlags};
    use crate::storage::store::ApplyContext;

    fn accounts() -> LedgerBatch {
        LedgerBatch::CreateAccounts(
            (1..=2)
                .map(|id| Account {
                    id,
                    ledger: 1,
                    code: 1,
                    ..Account::default()
                })
                .collect(),
        )
    }

    fn transfer(id: u128, flags: TransferFlags) -> Transfer {
        Transfer {
            id,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: 1,
            ledger: 1,
            code: 1,
            flags,
            ..Transfer::default()
        }
    }

    // Goal: a gathered command gives each batch exactly the results (and timestamps) it
    // gets when logged alone right after the batch before it; in particular a chain left
    // open at the end of one caller's batch fails as `linked_event_chain_open` in that
    // batch and does not reach into the next caller's.
    #[test]
    fn gathered_batches_apply_as_if_logged_alone() {
        let open_chain = LedgerBatch::CreateTransfers(vec![
            transfer(10, TransferFlags::empty()),
            transfer(11, TransferFlags::LINKED),
        ]);
        let next_caller = LedgerBatch::CreateTransfers(vec![transfer(12, TransferFlags::empty())]);
        let batches = vec![
            accounts(),
            open_chain,
            LedgerBatch::CreateAccounts(Vec::new()),
            next_caller,
        ];
        let needed: u64 = batches.iter().map(LedgerBatch::timestamps_needed).sum();
        let last = 1_000 + needed;

        let mut gathered = LedgerMachine::initial();
        let outputs = gathered.apply(
            LedgerCommand {
                batches: batches.clone(),
            },
            ApplyContext {
                lsn: 1,
                timestamp: last,
            },
        );

        let mut alone = LedgerMachine::initial();
        let mut timestamp = 1_000;
        let expected: Vec<LedgerOutput> = batches
            .into_iter()
            .map(|batch| {
                timestamp += batch.timestamps_needed();
                alone.apply_batch(batch, timestamp)
            })
            .collect();
        assert_eq!(outputs, expected);
        let chain = &outputs[1].transfers;
        assert_eq!(chain[0].status, CreateTransferStatus::Created);
        assert_eq!(chain[1].status, CreateTransferStatus::LinkedEventChainOpen);
        assert_eq!(
            outputs[3].transfers[0].status,
            CreateTransferStatus::Created
        );
        assert_eq!(outputs[3].transfers[0].timestamp, last);
        assert_eq!(
            gathered.state.lookup_transfers(&[10, 11, 12]),
            alone.state.lookup_transfers(&[10, 11, 12])
        );
    }
}
