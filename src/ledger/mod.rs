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

mod account;
pub(crate) mod chunked;
pub(crate) mod codec;
pub(crate) mod dedup;
mod filter;
mod layout;
pub(crate) mod machine;
mod results;
pub(crate) mod state;
mod transfer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use account::{Account, AccountBalance, AccountFlags};
pub use filter::{AccountFilter, AccountFilterFlags, QueryFilter, QueryFilterFlags};
pub use machine::{LedgerMachine, LedgerOutput};
pub use results::{
    CreateAccountResult, CreateAccountStatus, CreateTransferResult, CreateTransferStatus,
};
#[cfg(feature = "internals")]
pub use state::{LedgerImage, RestoreError};
pub use state::{LedgerState, MemoryUsage};
pub use transfer::{AMOUNT_MAX, Transfer, TransferFlags};

use crate::error::{Error, ErrorKind, Result};
use crate::options::LedgerOptions;
use crate::recovery::{CheckpointInfo, CheckpointStats, Recovery, RepairPlan};
use crate::stats::{Recorder, Stats};
use crate::storage::gather::{GatherOptions, Gatherer, Handoff};
use crate::storage::store::Store;
use codec::{LedgerBatch, LedgerCommand};

/// A caller's batch waiting to be gathered, and its answer.
type LedgerGatherer = Gatherer<LedgerBatch, Result<LedgerOutput>>;

/// The largest number of events in one `create_accounts` or `create_transfers` batch,
/// and of ids in one lookup.
///
/// TigerBeetle's message body is 1 MiB minus the 256-byte header, i.e. 1_048_320 bytes, which
/// holds 8190 records of 128 bytes; the multi-batch encoding used by 0.17 clients spends one
/// record's worth of space on its trailer, leaving 8189 (`Operation.event_max`, asserted by the
/// `batch_elements_max` test in TigerBeetle's `src/state_machine_tests.zig`).
pub const BATCH_EVENTS_MAX: usize = 8189;

/// A durable ledger open on a directory. Share it between threads with an
/// `Arc`: every method takes `&self`.
///
/// ```
/// use syncpay::{Account, CreateTransferStatus, Ledger, LedgerOptions, Transfer};
///
/// let dir = tempfile::tempdir()?;
/// let ledger = Ledger::create(dir.path(), LedgerOptions::default())?;
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
    /// Gathers concurrent create calls into one logged command.
    gatherer: LedgerGatherer,
    recovery: Recovery,
    path: PathBuf,
    batch_events_max: usize,
    read_only: bool,
    stats: Recorder,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .finish()
    }
}

fn check_batch(len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(Error::batch_too_large(len, max));
    }
    Ok(())
}

/// Whether `path` holds a ledger: its log directory has a manifest or any
/// file (a log without a manifest is damage for the open to report, not a
/// missing ledger).
fn ledger_exists(path: &Path, options: &LedgerOptions) -> Result<bool> {
    let names = entries_or_none(options, &options.log_dir(path))?;
    Ok(names
        .iter()
        .any(|n| n != crate::storage::io::LOCK_FILE_NAME))
}

/// The entry names of `dir`; none if it does not exist.
fn entries_or_none(options: &LedgerOptions, dir: &Path) -> Result<Vec<String>> {
    match options.io_ref().list_dir(dir) {
        Ok(names) => Ok(names),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::new(
            ErrorKind::Io,
            format!("cannot list {}: {e}", dir.display()),
        )),
    }
}

/// Fails with [`ErrorKind::NotFound`] unless `path` holds a ledger. An
/// empty path passes: the store refuses it with a clearer error.
pub(crate) fn require_ledger(path: &Path, options: &LedgerOptions) -> Result<()> {
    if !path.as_os_str().is_empty() && !ledger_exists(path, options)? {
        return Err(Error::not_found(path.to_path_buf()));
    }
    Ok(())
}

impl Ledger {
    /// Creates a new, empty ledger in `path` (made if missing; an existing
    /// directory must be empty) and opens it. Fails with
    /// [`ErrorKind::AlreadyExists`] if `path` holds anything.
    ///
    /// ```
    /// use syncpay::{ErrorKind, Ledger, LedgerOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// Ledger::create(dir.path(), LedgerOptions::default())?.close()?;
    /// let again = Ledger::create(dir.path(), LedgerOptions::default()).unwrap_err();
    /// assert_eq!(again.kind(), ErrorKind::AlreadyExists);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(path: impl AsRef<Path>, options: LedgerOptions) -> Result<Ledger> {
        let path = path.as_ref();
        let occupied = |dir: &Path| Ok::<_, Error>(!entries_or_none(&options, dir)?.is_empty());
        if !path.as_os_str().is_empty() && (occupied(path)? || occupied(&options.log_dir(path))?) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "{} is not empty: Ledger::create makes a new ledger only in an empty or missing directory",
                    path.display()
                ),
            ));
        }
        Ledger::open_store(path, options, false)
    }

    /// Opens the existing ledger in `path`, recovering it (newest valid
    /// snapshot plus log replay). Fails with [`ErrorKind::NotFound`] if
    /// there is none (unless [`LedgerOptions::create_if_missing`]): a
    /// missing or unmounted directory never becomes an empty ledger. See [`Ledger::recovery`] for what opening found.
    pub fn open(path: impl AsRef<Path>, options: LedgerOptions) -> Result<Ledger> {
        let path = path.as_ref();
        if !options.creates_if_missing() {
            require_ledger(path, &options)?;
        }
        Ledger::open_store(path, options, false)
    }

    /// Opens the existing ledger in `path` without writing anything to its
    /// directory, verifying everything a writable open verifies (every
    /// snapshot it uses and every log record it replays). Damage a writable
    /// open would act on (a torn tail, leftover files) is only reported; the
    /// recovery mode is ignored. Reads work as usual; creates and
    /// checkpoints fail with [`ErrorKind::ReadOnly`]. Excludes writers
    /// while open (the lock file, if any, is locked, not created).
    ///
    /// ```
    /// use syncpay::{Account, ErrorKind, Ledger, LedgerOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let ledger = Ledger::create(dir.path(), LedgerOptions::default())?;
    /// ledger.create_accounts(&[Account { id: 1, ledger: 1, code: 1, ..Account::default() }])?;
    /// ledger.close()?;
    ///
    /// let reader = Ledger::open_read_only(dir.path(), LedgerOptions::default())?;
    /// assert_eq!(reader.lookup_accounts(&[1])?.len(), 1);
    /// let refused = reader.create_accounts(&[Account { id: 2, ledger: 1, code: 1, ..Account::default() }]);
    /// assert_eq!(refused.unwrap_err().kind(), ErrorKind::ReadOnly);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_read_only(path: impl AsRef<Path>, options: LedgerOptions) -> Result<Ledger> {
        let path = path.as_ref();
        require_ledger(path, &options)?;
        Ledger::open_store(path, options, true)
    }

    fn open_store(path: &Path, options: LedgerOptions, read_only: bool) -> Result<Ledger> {
        let (store, recovery) = Store::open(path, options.store_options(read_only))?;
        crate::stats::trace_recovery(path, &recovery, read_only);
        Ok(Ledger {
            store,
            gatherer: Gatherer::new(GatherOptions {
                weight_max: options.gather_weight_max(),
                wait_max: options.gather_wait_max_value(),
            }),
            recovery,
            path: path.to_path_buf(),
            batch_events_max: options.batch_events_max(),
            read_only,
            stats: Recorder::default(),
        })
    }

    /// Computes, changing nothing, what opening with
    /// [`RecoveryMode::Repair`](crate::RecoveryMode::Repair) would do to
    /// the ledger in `path` (a dry run): the records the log would be cut
    /// at, the segments and snapshots moved to `quarantine/`. An empty plan
    /// means the ledger opens as it is.
    ///
    /// ```
    /// # use syncpay::{Ledger, LedgerOptions};
    /// let dir = tempfile::tempdir()?;
    /// Ledger::create(dir.path(), LedgerOptions::default())?.close()?;
    /// assert!(Ledger::plan_repair(dir.path(), &LedgerOptions::default())?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn plan_repair(path: impl AsRef<Path>, options: &LedgerOptions) -> Result<RepairPlan> {
        let path = path.as_ref();
        require_ledger(path, options)?;
        let options = options
            .clone()
            .recovery_mode(crate::options::RecoveryMode::Repair);
        Ok(Store::<LedgerMachine>::plan_repair(
            path,
            &options.store_options(false),
        )?)
    }

    /// What opening found: snapshot used, records replayed, damage skipped,
    /// torn tail removed, repair done.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The directory this ledger was opened in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True if opened with [`Ledger::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::new(
                ErrorKind::ReadOnly,
                format!("ledger {} is open read-only", self.path.display()),
            ));
        }
        Ok(())
    }

    /// Logs and applies one caller's batch, gathered with concurrent
    /// callers' into one command: the same results as if it were logged
    /// alone, right after the batch logged before it.
    fn execute(&self, batch: LedgerBatch) -> Result<LedgerOutput> {
        self.check_writable()?;
        let events = batch.len();
        check_batch(events, self.batch_events_max)?;
        let started = Instant::now();
        let weight = batch.timestamps_needed();
        let result = self
            .gatherer
            .submit(batch, weight, &mut |batches, handoff| {
                self.execute_group(batches, handoff)
            })
            .unwrap_or_else(|| {
                Err(Error::new(
                    ErrorKind::Poisoned,
                    "the call that applied this batch's group panicked; the ledger is poisoned",
                ))
            });
        if result.is_ok() {
            self.stats.batch(events, started.elapsed());
        }
        result
    }

    /// Logs and applies a gathered group as one command; one answer per
    /// batch (the same error for each if the command failed).
    fn execute_group(
        &self,
        batches: Vec<LedgerBatch>,
        handoff: &mut Handoff<'_, LedgerBatch, Result<LedgerOutput>>,
    ) -> Vec<Result<LedgerOutput>> {
        let count = batches.len();
        let command = LedgerCommand { batches };
        match self.store.execute_with(command, &mut || handoff.release()) {
            Ok(outputs) => outputs.into_iter().map(Ok).collect(),
            Err(error) => {
                crate::stats::trace_failure("execute", &error);
                vec![Err(Error::from(error)); count]
            }
        }
    }

    /// Creates accounts; returns one result per account, in order. Durable
    /// when it returns `Ok`. At most [`BATCH_EVENTS_MAX`] accounts.
    ///
    /// ```
    /// # use syncpay::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = Ledger::create(dir.path(), LedgerOptions::default())?;
    /// let results = ledger.create_accounts(&[
    ///     Account { id: 1, ledger: 1, code: 1, ..Account::default() },
    ///     Account { id: 0, ledger: 1, code: 1, ..Account::default() },
    /// ])?;
    /// assert_eq!(results[0].status, CreateAccountStatus::Created);
    /// assert_eq!(results[1].status, CreateAccountStatus::IdMustNotBeZero);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_accounts(&self, accounts: &[Account]) -> Result<Vec<CreateAccountResult>> {
        let batch = LedgerBatch::CreateAccounts(accounts.to_vec());
        Ok(self.execute(batch)?.accounts)
    }

    /// Creates transfers; returns one result per transfer, in order.
    /// Durable when it returns `Ok`. At most [`BATCH_EVENTS_MAX`] transfers.
    /// A retry of the same batch returns `Exists` for each created transfer.
    ///
    /// ```
    /// # use syncpay::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = Ledger::create(dir.path(), LedgerOptions::default())?;
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
        let batch = LedgerBatch::CreateTransfers(transfers.to_vec());
        Ok(self.execute(batch)?.transfers)
    }

    /// Looks accounts up by id; ids not found are left out. At most
    /// [`BATCH_EVENTS_MAX`] ids.
    ///
    /// ```
    /// # use syncpay::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = Ledger::create(dir.path(), LedgerOptions::default())?;
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
    /// # use syncpay::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = Ledger::create(dir.path(), LedgerOptions::default())?;
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
    /// # use syncpay::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = Ledger::create(dir.path(), LedgerOptions::default())?;
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
    /// # use syncpay::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = Ledger::create(dir.path(), LedgerOptions::default())?;
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
    /// range), in timestamp order. Cost: the matches of the rarest filtered
    /// value, read from a secondary index (about `limit` reads when the
    /// other filtered fields match too), or a scan of the timestamp range
    /// when that is shorter or no field is filtered.
    ///
    /// ```
    /// # use syncpay::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = Ledger::create(dir.path(), LedgerOptions::default())?;
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

    /// Transfers matching `filter`, in timestamp order. Cost: the matches of
    /// the rarest filtered value, read from a secondary index (about `limit`
    /// reads when the other filtered fields match too), or a scan of the
    /// timestamp range until `limit` match when that is shorter or no field
    /// is filtered. [`Ledger::memory_usage`] reports what the indexes hold.
    ///
    /// ```
    /// # use syncpay::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let ledger = Ledger::create(dir.path(), LedgerOptions::default())?;
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
    /// A failure (disk full, say) is returned and counted but poisons
    /// nothing.
    pub fn checkpoint(&self) -> Result<CheckpointInfo> {
        self.check_writable()?;
        let result = self.store.checkpoint();
        match &result {
            Ok(info) => tracing::info!(
                target: "syncpay",
                path = %self.path.display(),
                lsn = info.lsn,
                "checkpoint written"
            ),
            Err(error) => tracing::warn!(
                target: "syncpay",
                path = %self.path.display(),
                %error,
                "checkpoint failed"
            ),
        }
        Ok(result?)
    }

    /// Checkpoints written and failed since open. A failed checkpoint (disk
    /// full, say) poisons nothing; automatic ones are retried.
    pub fn checkpoint_stats(&self) -> CheckpointStats {
        self.store.checkpoint_stats()
    }

    /// Counters and latency figures since open: batches, events, group
    /// commits, call latency, the log's position, checkpoints, and the
    /// recovery report.
    ///
    /// ```
    /// # use syncpay::*;
    /// # let dir = tempfile::tempdir()?;
    /// let ledger = Ledger::create(dir.path(), LedgerOptions::default())?;
    /// ledger.create_accounts(&[Account { id: 1, ledger: 1, code: 1, ..Account::default() }])?;
    /// let stats = ledger.stats();
    /// assert_eq!((stats.batches, stats.events), (1, 1));
    /// assert_eq!(stats.last_durable_lsn, 1);
    /// assert!(stats.call_latency.max_ns > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Stats {
        let wal = self.store.wal();
        let mut stats = self.stats.snapshot();
        stats.commands = self.gatherer.stats().groups;
        let wal_stats = wal.stats();
        stats.group_commits = wal_stats.groups;
        stats.fsyncs = wal_stats.syncs;
        stats.log_submissions = wal_stats.submissions;
        stats.fsync_latency = wal.sync_latency();
        stats.apply_latency = self.store.apply_latency();
        stats.last_durable_lsn = wal.next_lsn().saturating_sub(1);
        stats.first_lsn = wal.first_lsn();
        stats.log_segments = wal.segment_count();
        stats.log_bytes = wal.live_bytes();
        stats.checkpoints = self.store.checkpoint_stats();
        stats.recovery = self.recovery.clone();
        stats
    }

    /// Checks the ledger's invariants (sums of debits and credits, pending
    /// amounts, balance limits). A failure means the state is inconsistent
    /// ([`ErrorKind::Corrupt`]): a bug or undetected damage, never bad
    /// input. `syncpay verify` runs it.
    pub fn check_invariants(&self) -> Result<()> {
        self.store
            .read(|m| m.state.check_invariants())?
            .map_err(|reason| {
                Error::new(
                    ErrorKind::Corrupt,
                    format!("ledger invariant violated: {reason}"),
                )
            })
    }

    /// Estimated memory held by the ledger state, per component.
    pub fn memory_usage(&self) -> Result<MemoryUsage> {
        Ok(self.store.read(|m| m.state.memory_bytes())?)
    }

    /// The underlying store. Unstable.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn store(&self) -> &Store<LedgerMachine> {
        &self.store
    }

    /// Runs `f` on the ledger state (every account and transfer, for
    /// dumps and checks).
    pub(crate) fn read_state<R>(&self, f: impl FnOnce(&LedgerState) -> R) -> Result<R> {
        Ok(self.store.read(|m| f(&m.state))?)
    }

    /// Waits for everything submitted to be durable and applied, stops the
    /// background threads, records a clean-close mark, and reports a
    /// failure that poisoned the ledger. Dropping the ledger does the same
    /// without reporting.
    pub fn close(self) -> Result<()> {
        let result = self.store.close();
        if let Err(error) = &result {
            crate::stats::trace_failure("close", error);
        }
        Ok(result?)
    }
}
