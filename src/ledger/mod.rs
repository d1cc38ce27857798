//! The embedded ledger: double-entry accounts and transfers with
//! TigerBeetle 0.17 semantics, durable on return.
//!
//! [`Ledger`] is the API a payment system links against. Create calls are
//! logged, made durable (`fdatasync`) and applied before they return, and
//! concurrent callers share group commits. Reads see only durable state.
//! The state machine itself ([`LedgerState`]) knows nothing of files,
//! threads or wall time: it is a deterministic function of the logged
//! batches and the timestamps the engine assigned to them.
//!
//! Where syncpay differs from TigerBeetle, `docs/semantics.md` says how and
//! why.

/// The operations every flag set (a newtype over its raw integer) has: `empty`,
/// `contains`, `intersects`, `without`, and `|`.
macro_rules! flag_set_operations {
    ($name:ident) => {
        impl $name {
            /// Returns the empty flag set.
            pub const fn empty() -> Self {
                Self(0)
            }

            /// Returns true when every bit of `other` is set in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// Returns true when at least one bit of `other` is set in `self`.
            pub const fn intersects(self, other: Self) -> bool {
                self.0 & other.0 != 0
            }

            /// Returns `self` with the bits of `other` cleared.
            pub const fn without(self, other: Self) -> Self {
                Self(self.0 & !other.0)
            }
        }

        impl std::ops::BitOr for $name {
            type Output = Self;

            fn bitor(self, other: Self) -> Self {
                Self(self.0 | other.0)
            }
        }
    };
}

pub mod account;
pub mod codec;
pub mod filter;
mod layout;
pub mod machine;
pub mod results;
pub mod state_machine;
pub mod transfer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use account::{Account, AccountBalance, AccountFlags};
pub use filter::{AccountFilter, AccountFilterFlags, QueryFilter, QueryFilterFlags};
pub use machine::{LedgerMachine, LedgerOutput};
pub use results::{
    CreateAccountResult, CreateAccountStatus, CreateTransferResult, CreateTransferStatus,
};
pub use state_machine::{LedgerImage, LedgerState, MemoryUsage, RestoreError};
pub use transfer::{AMOUNT_MAX, Transfer, TransferFlags};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::io::{Io, RealIo};
use crate::store::{
    CheckpointInfo, CheckpointStats, Store, StoreOptions, StoreRecovery, StoreRepairPlan,
};
use crate::wal::WalOptions;
use codec::LedgerCommand;

/// The largest number of events in one `create_accounts` or `create_transfers` batch,
/// and of ids in one lookup.
///
/// TigerBeetle's message body is 1 MiB minus the 256-byte header, i.e. 1_048_320 bytes, which
/// holds 8190 records of 128 bytes; the multi-batch encoding used by 0.17 clients spends one
/// record's worth of space on its trailer, leaving 8189 (`Operation.event_max`, asserted by the
/// `batch_elements_max` test in TigerBeetle's `src/state_machine_tests.zig`).
pub const BATCH_EVENTS_MAX: usize = 8189;

/// Options of a [`Ledger`]. The defaults suit most users.
#[derive(Clone, Debug)]
pub struct Options {
    /// Size of each preallocated log segment. Default 64 MiB. A segment
    /// must hold a whole batch: below about 1 MiB the batch maximum shrinks
    /// accordingly (see [`Options::batch_events_max`]).
    pub segment_size_bytes: u64,
    /// Log bytes between automatic checkpoints (snapshots); 0 disables
    /// them. Default 1 GiB: recovery then replays at most about two
    /// intervals of log.
    pub checkpoint_interval_bytes: u64,
    /// Put the log in this directory instead of `<path>/wal` (for example on
    /// a separate disk). Default `None`.
    pub wal_dir: Option<PathBuf>,
    /// Opt-in repair: if damage blocks the open, cut the log at the first
    /// damaged record the newest valid snapshot does not cover, moving the
    /// segments and damaged snapshots it removes to `quarantine/`, and
    /// report it in [`Ledger::recovery`]; refused if the result could not
    /// open. [`Ledger::plan_repair`] shows the plan without acting. Default
    /// false: damage fails `open` with a typed error naming file, offset
    /// and LSN.
    pub repair: bool,
    /// The file system (tests substitute a simulated one).
    pub io: Arc<dyn Io>,
    /// The clock timestamps come from (tests substitute a simulated one).
    pub clock: Arc<dyn Clock>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_size_bytes: crate::wal::SEGMENT_SIZE_BYTES_DEFAULT,
            checkpoint_interval_bytes: crate::store::CHECKPOINT_INTERVAL_BYTES_DEFAULT,
            wal_dir: None,
            repair: false,
            io: Arc::new(RealIo),
            clock: SystemClock::shared(),
        }
    }
}

/// Bytes a logged batch takes besides its events: the store's timestamp and
/// the command header.
const RECORD_OVERHEAD_BYTES: usize =
    crate::store::RECORD_PREFIX_BYTES + codec::COMMAND_HEADER_BYTES;
/// The largest log record a batch needs.
pub const RECORD_SIZE_MAX_BYTES: usize = RECORD_OVERHEAD_BYTES + BATCH_EVENTS_MAX * 128;

const _: () = assert!(
    crate::wal::segment_overhead_bytes(RECORD_SIZE_MAX_BYTES)
        <= crate::wal::SEGMENT_SIZE_BYTES_DEFAULT,
    "a full batch must fit in a default segment"
);

impl Options {
    /// The largest record the log accepts with these options: a full batch,
    /// or whatever fits in one segment if segments are smaller than that.
    fn record_size_max_bytes(&self) -> usize {
        crate::wal::record_size_max_for_segment(self.segment_size_bytes).min(RECORD_SIZE_MAX_BYTES)
    }

    /// Events per batch these options allow: [`BATCH_EVENTS_MAX`] unless
    /// segments are too small to hold a full batch (tests use small ones).
    pub fn batch_events_max(&self) -> usize {
        (self
            .record_size_max_bytes()
            .saturating_sub(RECORD_OVERHEAD_BYTES)
            / 128)
            .min(BATCH_EVENTS_MAX)
    }

    fn store_options(&self) -> StoreOptions {
        StoreOptions {
            wal: WalOptions {
                segment_size_bytes: self.segment_size_bytes,
                record_size_max_bytes: self.record_size_max_bytes(),
                repair: self.repair,
                io: Arc::clone(&self.io),
                ..WalOptions::default()
            },
            wal_dir: self.wal_dir.clone(),
            checkpoint_interval_bytes: self.checkpoint_interval_bytes,
            clock: Arc::clone(&self.clock),
        }
    }
}

/// A durable ledger open on a directory. Share it between threads with an
/// `Arc`: every method takes `&self`.
///
/// ```
/// use syncpay::ledger::{Account, CreateTransferStatus, Ledger, Options, Transfer};
///
/// let dir = tempfile::tempdir()?;
/// let ledger = Ledger::open(dir.path(), Options::default())?;
/// let account = |id| Account { id, ledger: 1, code: 1, ..Account::default() };
/// ledger.create_accounts(&[account(1), account(2)])?;
/// let results = ledger.create_transfers(&[Transfer {
///     id: 10,
///     debit_account_id: 1,
///     credit_account_id: 2,
///     amount: 500,
///     ledger: 1,
///     code: 1,
///     ..Transfer::default()
/// }])?;
/// // When create_transfers returns, the batch is durable.
/// assert_eq!(results[0].status, CreateTransferStatus::Created);
/// let accounts = ledger.lookup_accounts(&[1, 2])?;
/// assert_eq!((accounts[0].debits_posted, accounts[1].credits_posted), (500, 500));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Ledger {
    store: Store<LedgerMachine>,
    recovery: StoreRecovery,
    path: PathBuf,
    batch_events_max: usize,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("path", &self.path).finish()
    }
}

fn check_batch(len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(Error::BatchTooLarge { len, max });
    }
    Ok(())
}

impl Ledger {
    /// Opens the ledger in `path`, creating it if it does not exist and
    /// recovering it (newest valid snapshot plus log replay) if it does.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Ledger> {
        let path = path.as_ref().to_path_buf();
        let (store, recovery) = Store::open(&path, options.store_options())?;
        Ok(Ledger {
            store,
            recovery,
            path,
            batch_events_max: options.batch_events_max(),
        })
    }

    /// Computes, changing nothing, what opening with `repair: true` would do
    /// to the ledger in `path` (a dry run): the records the log would be
    /// cut at, the segments and snapshots moved to `quarantine/`. An empty
    /// plan means the ledger opens as it is.
    ///
    /// ```
    /// # use syncpay::ledger::{Ledger, Options};
    /// let dir = tempfile::tempdir()?;
    /// Ledger::open(dir.path(), Options::default())?.close()?;
    /// assert!(Ledger::plan_repair(dir.path(), &Options::default())?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn plan_repair(path: impl AsRef<Path>, options: &Options) -> Result<StoreRepairPlan> {
        Ok(Store::<LedgerMachine>::plan_repair(
            path.as_ref(),
            &options.store_options(),
        )?)
    }

    /// What opening found: snapshot used, records replayed, torn tail
    /// removed, repair done.
    pub fn recovery(&self) -> &StoreRecovery {
        &self.recovery
    }

    /// Creates accounts; returns one result per account, in order. Durable
    /// when it returns `Ok`. At most [`BATCH_EVENTS_MAX`] accounts.
    ///
    /// ```
    /// # use syncpay::ledger::{Account, CreateAccountStatus, Ledger, Options};
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = Ledger::open(dir.path(), Options::default())?;
    /// let results = ledger.create_accounts(&[
    ///     Account { id: 1, ledger: 1, code: 1, ..Account::default() },
    ///     Account { id: 0, ledger: 1, code: 1, ..Account::default() },
    /// ])?;
    /// assert_eq!(results[0].status, CreateAccountStatus::Created);
    /// assert_eq!(results[1].status, CreateAccountStatus::IdMustNotBeZero);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_accounts(&self, accounts: &[Account]) -> Result<Vec<CreateAccountResult>> {
        check_batch(accounts.len(), self.batch_events_max)?;
        match self
            .store
            .execute(LedgerCommand::CreateAccounts(accounts.to_vec()))?
        {
            LedgerOutput::Accounts(results) => Ok(results),
            LedgerOutput::Transfers(_) => Err(Error::Internal("transfer results for accounts")),
        }
    }

    /// Creates transfers; returns one result per transfer, in order.
    /// Durable when it returns `Ok`. At most [`BATCH_EVENTS_MAX`] transfers.
    /// A retry of the same batch returns `Exists` for each created transfer.
    ///
    /// ```
    /// # use syncpay::ledger::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = Ledger::open(dir.path(), Options::default())?;
    /// # ledger.create_accounts(&[1, 2].map(|id| Account { id, ledger: 1, code: 1, ..Account::default() }))?;
    /// let pending = Transfer {
    ///     id: 7, debit_account_id: 1, credit_account_id: 2, amount: 100,
    ///     ledger: 1, code: 1, flags: TransferFlags::PENDING, ..Transfer::default()
    /// };
    /// let post = Transfer {
    ///     id: 8, pending_id: 7, amount: AMOUNT_MAX,
    ///     flags: TransferFlags::POST_PENDING_TRANSFER, ..Transfer::default()
    /// };
    /// let results = ledger.create_transfers(&[pending, post])?;
    /// assert!(results.iter().all(|r| r.status == CreateTransferStatus::Created));
    /// // Retrying is safe: nothing is applied twice.
    /// let again = ledger.create_transfers(&[pending])?;
    /// assert_eq!(again[0].status, CreateTransferStatus::Exists);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_transfers(&self, transfers: &[Transfer]) -> Result<Vec<CreateTransferResult>> {
        check_batch(transfers.len(), self.batch_events_max)?;
        match self
            .store
            .execute(LedgerCommand::CreateTransfers(transfers.to_vec()))?
        {
            LedgerOutput::Transfers(results) => Ok(results),
            LedgerOutput::Accounts(_) => Err(Error::Internal("account results for transfers")),
        }
    }

    /// Looks accounts up by id; ids not found are left out. At most
    /// [`BATCH_EVENTS_MAX`] ids.
    ///
    /// ```
    /// # use syncpay::ledger::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = Ledger::open(dir.path(), Options::default())?;
    /// ledger.create_accounts(&[Account { id: 3, ledger: 1, code: 1, ..Account::default() }])?;
    /// let found = ledger.lookup_accounts(&[3, 4])?;
    /// assert_eq!(found.len(), 1);
    /// assert!(found[0].timestamp > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lookup_accounts(&self, ids: &[u128]) -> Result<Vec<Account>> {
        check_batch(ids.len(), BATCH_EVENTS_MAX)?;
        Ok(self.store.read(|m| m.state.lookup_accounts(ids))?)
    }

    /// Looks transfers up by id; ids not found are left out. At most
    /// [`BATCH_EVENTS_MAX`] ids.
    ///
    /// ```
    /// # use syncpay::ledger::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = Ledger::open(dir.path(), Options::default())?;
    /// # ledger.create_accounts(&[1, 2].map(|id| Account { id, ledger: 1, code: 1, ..Account::default() }))?;
    /// let transfer = Transfer { id: 9, debit_account_id: 1, credit_account_id: 2,
    ///     amount: 5, ledger: 1, code: 1, ..Transfer::default() };
    /// ledger.create_transfers(&[transfer])?;
    /// assert_eq!(ledger.lookup_transfers(&[9])?[0].amount, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lookup_transfers(&self, ids: &[u128]) -> Result<Vec<Transfer>> {
        check_batch(ids.len(), BATCH_EVENTS_MAX)?;
        Ok(self.store.read(|m| m.state.lookup_transfers(ids))?)
    }

    /// The transfers of one account matching `filter`, in timestamp order
    /// (reversed with the `REVERSED` flag). An invalid filter gives an empty
    /// result, as in TigerBeetle.
    ///
    /// ```
    /// # use syncpay::ledger::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = Ledger::open(dir.path(), Options::default())?;
    /// # ledger.create_accounts(&[1, 2].map(|id| Account { id, ledger: 1, code: 1, ..Account::default() }))?;
    /// # let t = |id| Transfer { id, debit_account_id: 1, credit_account_id: 2, amount: 1, ledger: 1, code: 1, ..Transfer::default() };
    /// ledger.create_transfers(&[t(1), t(2), t(3)])?;
    /// let filter = AccountFilter {
    ///     account_id: 2,
    ///     limit: 2,
    ///     flags: AccountFilterFlags::CREDITS | AccountFilterFlags::REVERSED,
    ///     ..AccountFilter::default()
    /// };
    /// let ids: Vec<u128> = ledger.get_account_transfers(&filter)?.iter().map(|t| t.id).collect();
    /// assert_eq!(ids, vec![3, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_account_transfers(&self, filter: &AccountFilter) -> Result<Vec<Transfer>> {
        Ok(self.store.read(|m| m.state.get_account_transfers(filter))?)
    }

    /// The balance history of an account created with the `HISTORY` flag:
    /// its balances after each matching transfer. Empty for other accounts.
    ///
    /// ```
    /// # use syncpay::ledger::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = Ledger::open(dir.path(), Options::default())?;
    /// let history = Account { id: 1, ledger: 1, code: 1, flags: AccountFlags::HISTORY, ..Account::default() };
    /// ledger.create_accounts(&[history, Account { id: 2, ledger: 1, code: 1, ..Account::default() }])?;
    /// # let t = |id, amount| Transfer { id, debit_account_id: 1, credit_account_id: 2, amount, ledger: 1, code: 1, ..Transfer::default() };
    /// ledger.create_transfers(&[t(1, 10), t(2, 5)])?;
    /// let filter = AccountFilter { account_id: 1, limit: 10,
    ///     flags: AccountFilterFlags::DEBITS, ..AccountFilter::default() };
    /// let balances = ledger.get_account_balances(&filter)?;
    /// assert_eq!(balances.iter().map(|b| b.debits_posted).collect::<Vec<_>>(), vec![10, 15]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_account_balances(&self, filter: &AccountFilter) -> Result<Vec<AccountBalance>> {
        Ok(self.store.read(|m| m.state.get_account_balances(filter))?)
    }

    /// Accounts matching `filter` (user data, ledger, code, timestamp
    /// range), in timestamp order. Cost: a scan of the accounts in the
    /// timestamp range.
    ///
    /// ```
    /// # use syncpay::ledger::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = Ledger::open(dir.path(), Options::default())?;
    /// let a = |id, code| Account { id, ledger: 1, code, ..Account::default() };
    /// ledger.create_accounts(&[a(1, 7), a(2, 8), a(3, 7)])?;
    /// let filter = QueryFilter { code: 7, limit: 10, ..QueryFilter::default() };
    /// let ids: Vec<u128> = ledger.query_accounts(&filter)?.iter().map(|a| a.id).collect();
    /// assert_eq!(ids, vec![1, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn query_accounts(&self, filter: &QueryFilter) -> Result<Vec<Account>> {
        Ok(self.store.read(|m| m.state.query_accounts(filter))?)
    }

    /// Transfers matching `filter`, in timestamp order. Cost: a scan of the
    /// transfers in the timestamp range until `limit` match.
    ///
    /// ```
    /// # use syncpay::ledger::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = Ledger::open(dir.path(), Options::default())?;
    /// # ledger.create_accounts(&[1, 2].map(|id| Account { id, ledger: 1, code: 1, ..Account::default() }))?;
    /// let t = |id, user_data_64| Transfer { id, debit_account_id: 1, credit_account_id: 2,
    ///     amount: 1, ledger: 1, code: 1, user_data_64, ..Transfer::default() };
    /// ledger.create_transfers(&[t(1, 42), t(2, 43), t(3, 42)])?;
    /// let filter = QueryFilter { user_data_64: 42, limit: 10, ..QueryFilter::default() };
    /// assert_eq!(ledger.query_transfers(&filter)?.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn query_transfers(&self, filter: &QueryFilter) -> Result<Vec<Transfer>> {
        Ok(self.store.read(|m| m.state.query_transfers(filter))?)
    }

    /// Writes a snapshot now and truncates the log behind the older
    /// retained snapshot. Automatic checkpoints make calling this optional.
    pub fn checkpoint(&self) -> Result<CheckpointInfo> {
        Ok(self.store.checkpoint()?)
    }

    /// Checkpoints written and failed since open. A failed checkpoint (disk
    /// full, say) poisons nothing; automatic ones are retried.
    pub fn checkpoint_stats(&self) -> CheckpointStats {
        self.store.checkpoint_stats()
    }

    /// Checks the ledger's invariants (sums of debits and credits, pending
    /// amounts, balance limits). An error is a bug, never bad input.
    pub fn check_invariants(&self) -> Result<()> {
        self.store
            .read(|m| m.state.check_invariants())?
            .map_err(Error::Invariant)
    }

    /// Estimated memory held by the ledger state, per component.
    pub fn memory_usage(&self) -> Result<MemoryUsage> {
        Ok(self.store.read(|m| m.state.memory_bytes())?)
    }

    /// The underlying store (log sizes, LSNs).
    pub fn store(&self) -> &Store<LedgerMachine> {
        &self.store
    }

    /// Waits for everything submitted to be durable and applied, stops the
    /// background threads, and reports a failure that poisoned the ledger.
    /// Dropping the ledger does the same without reporting.
    pub fn close(self) -> Result<()> {
        Ok(self.store.close()?)
    }
}
