//! A runner for TigerBeetle-style table tests against [`ModelLedger`], the production
//! [`LedgerState`], and `LedgerState` restored from a snapshot after every batch.
//!
//! The tables use the column order of TigerBeetle 0.17's `src/state_machine_tests.zig`, so a
//! ported table can be compared with its source line by line. Each line is one action:
//! `account …` / `transfer …` rows queue events with their expected status, `lookup_*`,
//! `get_*` and `query_*` rows queue a read and its expected results, and `commit <operation>`
//! runs the queued operation and compares. `setup` overwrites balances and `tick` advances the
//! clock, as in TigerBeetle's harness.
//!
//! Expected result timestamps are derived the way TigerBeetle's own expected-result builder
//! derives them: `created` and `linked_event_failed` report the event's timestamp (the user's
//! when non-zero, otherwise the slot), `exists` reports the stored object's timestamp (or that
//! of the object rolled back earlier in the same chain), and every other status the slot.
//!
//! The runner mimics TigerBeetle's clock: every commit advances the prepare timestamp by one,
//! plus the event count for creates, so slot `i` of a batch of `n` is `P + 1 + i + 1` where
//! `P` is the prepare timestamp before the commit. A TigerBeetle `pulse` (which expires pending
//! transfers) is modelled by `expire_pending` after every tick and commit.
//!
//! The runner is generic over [`TableLedger`], the operations both implementations share, so
//! every table runs three times: against the model, against `LedgerState`, and against
//! [`SnapshotLedger`] (a `LedgerState` replaced by `LedgerState::restore(LedgerState::write_image(image()))` after every
//! create batch).

use std::collections::HashMap;

use super::super::{ModelLedger, TIMESTAMP_MAX};
use crate::ledger::state::{LedgerState, Sizes};
use crate::ledger::{
    Account, AccountBalance, AccountFilter, AccountFilterFlags, AccountFlags, CreateAccountResult,
    CreateAccountStatus, CreateTransferResult, CreateTransferStatus, QueryFilter, QueryFilterFlags,
    Transfer, TransferFlags,
};

/// The operation being assembled from table rows, with its input and expected output.
enum Operation {
    None,
    CreateAccounts(Vec<(Account, CreateAccountStatus)>),
    CreateTransfers(Vec<(Transfer, CreateTransferStatus)>),
    LookupAccounts(Vec<u128>, Vec<Account>),
    LookupTransfers(Vec<u128>, Vec<Transfer>),
    GetAccountTransfers(AccountFilter, Vec<Transfer>),
    GetAccountBalances(AccountFilter, Vec<AccountBalance>),
    QueryAccounts(QueryFilter, Vec<Account>),
    QueryTransfers(QueryFilter, Vec<Transfer>),
}

impl Operation {
    /// The name a table's `commit` line gives the operation.
    fn name(&self) -> &'static str {
        match self {
            Operation::None => "none",
            Operation::CreateAccounts(_) => "create_accounts",
            Operation::CreateTransfers(_) => "create_transfers",
            Operation::LookupAccounts(..) => "lookup_accounts",
            Operation::LookupTransfers(..) => "lookup_transfers",
            Operation::GetAccountTransfers(..) => "get_account_transfers",
            Operation::GetAccountBalances(..) => "get_account_balances",
            Operation::QueryAccounts(..) => "query_accounts",
            Operation::QueryTransfers(..) => "query_transfers",
        }
    }
}

/// The ledger operations a table exercises, shared by the model and the production state.
pub(crate) trait TableLedger: Default {
    /// The implementation's name, for failure messages.
    const NAME: &'static str;
    fn create_accounts(&mut self, events: &[Account], timestamp: u64) -> Vec<CreateAccountResult>;
    fn create_transfers(
        &mut self,
        events: &[Transfer],
        timestamp: u64,
    ) -> Vec<CreateTransferResult>;
    fn expire_pending(&mut self, now: u64);
    fn lookup_accounts(&self, ids: &[u128]) -> Vec<Account>;
    fn lookup_transfers(&self, ids: &[u128]) -> Vec<Transfer>;
    fn get_account_transfers(&self, filter: &AccountFilter) -> Vec<Transfer>;
    fn get_account_balances(&self, filter: &AccountFilter) -> Vec<AccountBalance>;
    fn query_accounts(&self, filter: &QueryFilter) -> Vec<Account>;
    fn query_transfers(&self, filter: &QueryFilter) -> Vec<Transfer>;
    fn check_invariants(&self) -> Result<(), String>;
    fn set_balances_for_test(&mut self, id: u128, balances: [u128; 4]);
}

/// Implements [`TableLedger`] by delegating to the type's inherent methods of the same names.
macro_rules! delegate_table_ledger {
    ($type:ty, $name:expr) => {
        impl TableLedger for $type {
            const NAME: &'static str = $name;
            fn create_accounts(
                &mut self,
                events: &[Account],
                timestamp: u64,
            ) -> Vec<CreateAccountResult> {
                <$type>::create_accounts(self, events, timestamp)
            }
            fn create_transfers(
                &mut self,
                events: &[Transfer],
                timestamp: u64,
            ) -> Vec<CreateTransferResult> {
                <$type>::create_transfers(self, events, timestamp)
            }
            fn expire_pending(&mut self, now: u64) {
                <$type>::expire_pending(self, now)
            }
            fn lookup_accounts(&self, ids: &[u128]) -> Vec<Account> {
                <$type>::lookup_accounts(self, ids)
            }
            fn lookup_transfers(&self, ids: &[u128]) -> Vec<Transfer> {
                <$type>::lookup_transfers(self, ids)
            }
            fn get_account_transfers(&self, filter: &AccountFilter) -> Vec<Transfer> {
                <$type>::get_account_transfers(self, filter)
            }
            fn get_account_balances(&self, filter: &AccountFilter) -> Vec<AccountBalance> {
                <$type>::get_account_balances(self, filter)
            }
            fn query_accounts(&self, filter: &QueryFilter) -> Vec<Account> {
                <$type>::query_accounts(self, filter)
            }
            fn query_transfers(&self, filter: &QueryFilter) -> Vec<Transfer> {
                <$type>::query_transfers(self, filter)
            }
            fn check_invariants(&self) -> Result<(), String> {
                <$type>::check_invariants(self)
            }
            fn set_balances_for_test(&mut self, id: u128, balances: [u128; 4]) {
                <$type>::set_balances_for_test(self, id, balances)
            }
        }
    };
}

delegate_table_ledger!(ModelLedger, "ModelLedger");
delegate_table_ledger!(LedgerState, "LedgerState");

/// A `LedgerState` that is written out and restored after every create batch, so that the
/// tables also check that a restored state behaves like the original.
#[derive(Default)]
pub(crate) struct SnapshotLedger {
    state: LedgerState,
}

impl SnapshotLedger {
    /// Replaces the state by its restored snapshot, unless seeded balances broke the
    /// invariants (then `restore` rightly refuses the image).
    fn round_trip(&mut self) {
        if self.state.check_invariants().is_err() {
            return;
        }
        let mut bytes = Vec::new();
        LedgerState::write_image(&self.state.image(), &mut bytes).expect("write to a Vec");
        let restored = LedgerState::restore_with_sizes(&bytes, Sizes::SMALL)
            .expect("restore of a fresh image");
        let mut rewritten = Vec::new();
        LedgerState::write_image(&restored.image(), &mut rewritten).expect("write to a Vec");
        assert!(bytes == rewritten, "re-written image differs");
        self.state = restored;
    }
}

impl TableLedger for SnapshotLedger {
    const NAME: &'static str = "restored LedgerState";
    fn create_accounts(&mut self, events: &[Account], timestamp: u64) -> Vec<CreateAccountResult> {
        let results = self.state.create_accounts(events, timestamp);
        self.round_trip();
        results
    }
    fn create_transfers(
        &mut self,
        events: &[Transfer],
        timestamp: u64,
    ) -> Vec<CreateTransferResult> {
        let results = self.state.create_transfers(events, timestamp);
        self.round_trip();
        results
    }
    fn expire_pending(&mut self, now: u64) {
        self.state.expire_pending(now)
    }
    fn lookup_accounts(&self, ids: &[u128]) -> Vec<Account> {
        self.state.lookup_accounts(ids)
    }
    fn lookup_transfers(&self, ids: &[u128]) -> Vec<Transfer> {
        self.state.lookup_transfers(ids)
    }
    fn get_account_transfers(&self, filter: &AccountFilter) -> Vec<Transfer> {
        self.state.get_account_transfers(filter)
    }
    fn get_account_balances(&self, filter: &AccountFilter) -> Vec<AccountBalance> {
        self.state.get_account_balances(filter)
    }
    fn query_accounts(&self, filter: &QueryFilter) -> Vec<Account> {
        self.state.query_accounts(filter)
    }
    fn query_transfers(&self, filter: &QueryFilter) -> Vec<Transfer> {
        self.state.query_transfers(filter)
    }
    fn check_invariants(&self) -> Result<(), String> {
        self.state.check_invariants()
    }
    fn set_balances_for_test(&mut self, id: u128, balances: [u128; 4]) {
        self.state.set_balances_for_test(id, balances)
    }
}

/// Runs a table against every implementation; panics with the implementation and the
/// offending line on the first mismatch.
pub(crate) fn check(table: &str) {
    check_with::<ModelLedger>(table);
    check_with::<LedgerState>(table);
    check_with::<SnapshotLedger>(table);
}

/// Runs a table against one implementation.
fn check_with<L: TableLedger>(table: &str) {
    let mut runner = Runner::<L>::new();
    for (line_number, raw_line) in table.lines().enumerate() {
        let line = raw_line.split("//").next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        runner.line = format!("{}, line {}: {}", L::NAME, line_number + 1, line);
        runner.action(&tokens);
    }
    assert!(
        matches!(runner.operation, Operation::None),
        "table ends without commit"
    );
}

/// The state of a table run: the ledger under test, the clock, and the expected objects.
struct Runner<L> {
    ledger: L,
    prepare_timestamp: u64,
    accounts: HashMap<u128, Account>,
    transfers: HashMap<u128, Transfer>,
    linked_events_failed: HashMap<u128, u64>,
    balances_seeded: bool,
    operation: Operation,
    line: String,
}

impl<L: TableLedger> Runner<L> {
    fn new() -> Self {
        Self {
            ledger: L::default(),
            prepare_timestamp: 0,
            accounts: HashMap::new(),
            transfers: HashMap::new(),
            linked_events_failed: HashMap::new(),
            balances_seeded: false,
            operation: Operation::None,
            line: String::new(),
        }
    }

    fn action(&mut self, tokens: &[&str]) {
        let arguments = &tokens[1..];
        match tokens[0] {
            "setup" => self.setup(arguments),
            "tick" => self.tick(arguments),
            "account" => self.account(arguments),
            "transfer" => self.transfer(arguments),
            "lookup_account" => self.lookup_account(arguments),
            "lookup_transfer" => self.lookup_transfer(arguments),
            "get_account_transfers" | "get_account_balances" => {
                self.account_filter(tokens[0], arguments)
            }
            "get_account_transfers_result" => self.get_account_transfers_result(arguments),
            "get_account_balances_result" => self.get_account_balances_result(arguments),
            "query_accounts" | "query_transfers" => self.query_filter(tokens[0], arguments),
            "query_accounts_result" => self.query_accounts_result(arguments),
            "query_transfers_result" => self.query_transfers_result(arguments),
            "commit" => self.commit(arguments),
            other => panic!("{}: unknown action {other}", self.line),
        }
    }

    fn expect_arguments(&self, arguments: &[&str], count: usize) {
        assert_eq!(
            arguments.len(),
            count,
            "{}: expected {count} columns",
            self.line
        );
    }

    fn setup(&mut self, arguments: &[&str]) {
        self.expect_arguments(arguments, 5);
        let balances = [1, 2, 3, 4].map(|index| number(arguments[index], u128::MAX));
        self.ledger
            .set_balances_for_test(number(arguments[0], u128::MAX), balances);
        self.balances_seeded = true;
    }

    fn tick(&mut self, arguments: &[&str]) {
        self.expect_arguments(arguments, 2);
        let unit_nanoseconds: u64 = match arguments[1] {
            "seconds" => 1_000_000_000,
            "nanoseconds" => 1,
            other => panic!("{}: unknown unit {other}", self.line),
        };
        let (negative, magnitude) = match arguments[0].strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, arguments[0]),
        };
        let interval = magnitude.parse::<u64>().expect("tick value") * unit_nanoseconds;
        // A negative tick jumps to `TIMESTAMP_MAX - interval` ahead, as TigerBeetle's harness.
        self.prepare_timestamp += if negative {
            TIMESTAMP_MAX - interval
        } else {
            interval
        };
        self.pulse();
    }

    fn pulse(&mut self) {
        self.ledger.expire_pending(self.prepare_timestamp);
    }

    fn account(&mut self, arguments: &[&str]) {
        self.expect_arguments(arguments, 20);
        let flag_bits = [
            AccountFlags::LINKED,
            AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
            AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
            AccountFlags::HISTORY,
            AccountFlags::IMPORTED,
            AccountFlags::CLOSED,
        ];
        let mut flags = AccountFlags((number(arguments[17], 0x3FF) as u16) << 6);
        for (offset, bit) in flag_bits.iter().enumerate() {
            if arguments[11 + offset] != "_" {
                flags = flags | *bit;
            }
        }
        let event = Account {
            id: number(arguments[0], u128::MAX),
            debits_pending: number(arguments[1], u128::MAX),
            debits_posted: number(arguments[2], u128::MAX),
            credits_pending: number(arguments[3], u128::MAX),
            credits_posted: number(arguments[4], u128::MAX),
            user_data_128: number(arguments[5], u128::MAX),
            user_data_64: number(arguments[6], u64::MAX as u128) as u64,
            user_data_32: number(arguments[7], u32::MAX as u128) as u32,
            reserved: number(arguments[8], u32::MAX as u128) as u32,
            ledger: number(arguments[9], u32::MAX as u128) as u32,
            code: number(arguments[10], u16::MAX as u128) as u16,
            flags,
            timestamp: number(arguments[18], u64::MAX as u128) as u64,
        };
        let status = account_status(arguments[19]);
        match &mut self.operation {
            Operation::None => self.operation = Operation::CreateAccounts(vec![(event, status)]),
            Operation::CreateAccounts(rows) => rows.push((event, status)),
            _ => panic!("{}: mixed operations", self.line),
        }
    }

    fn transfer(&mut self, arguments: &[&str]) {
        self.expect_arguments(arguments, 23);
        let flag_bits = [
            TransferFlags::LINKED,
            TransferFlags::PENDING,
            TransferFlags::POST_PENDING_TRANSFER,
            TransferFlags::VOID_PENDING_TRANSFER,
            TransferFlags::BALANCING_DEBIT,
            TransferFlags::BALANCING_CREDIT,
            TransferFlags::IMPORTED,
            TransferFlags::CLOSING_DEBIT,
            TransferFlags::CLOSING_CREDIT,
        ];
        let mut flags = TransferFlags((number(arguments[20], 0x7F) as u16) << 9);
        for (offset, bit) in flag_bits.iter().enumerate() {
            if arguments[11 + offset] != "_" {
                flags = flags | *bit;
            }
        }
        let event = Transfer {
            id: number(arguments[0], u128::MAX),
            debit_account_id: number(arguments[1], u128::MAX),
            credit_account_id: number(arguments[2], u128::MAX),
            amount: number(arguments[3], u128::MAX),
            pending_id: number(arguments[4], u128::MAX),
            user_data_128: number(arguments[5], u128::MAX),
            user_data_64: number(arguments[6], u64::MAX as u128) as u64,
            user_data_32: number(arguments[7], u32::MAX as u128) as u32,
            timeout: number(arguments[8], u32::MAX as u128) as u32,
            ledger: number(arguments[9], u32::MAX as u128) as u32,
            code: number(arguments[10], u16::MAX as u128) as u16,
            flags,
            timestamp: number(arguments[21], u64::MAX as u128) as u64,
        };
        let status = transfer_status(arguments[22]);
        match &mut self.operation {
            Operation::None => self.operation = Operation::CreateTransfers(vec![(event, status)]),
            Operation::CreateTransfers(rows) => rows.push((event, status)),
            _ => panic!("{}: mixed operations", self.line),
        }
    }

    fn lookup_account(&mut self, arguments: &[&str]) {
        let id = number(arguments[0], u128::MAX);
        let expected = if arguments.len() == 2 {
            assert_eq!(arguments[1], "_", "{}", self.line);
            None
        } else {
            self.expect_arguments(arguments, 6);
            Some(self.expected_account(id, &arguments[1..]))
        };
        match &mut self.operation {
            Operation::None => {
                self.operation = Operation::LookupAccounts(vec![id], expected.into_iter().collect())
            }
            Operation::LookupAccounts(ids, results) => {
                ids.push(id);
                results.extend(expected);
            }
            _ => panic!("{}: mixed operations", self.line),
        }
    }

    /// The builder's account with balances and the `closed` flag taken from the row.
    fn expected_account(&self, id: u128, data: &[&str]) -> Account {
        let mut account = *self
            .accounts
            .get(&id)
            .unwrap_or_else(|| panic!("{}: unknown account", self.line));
        account.debits_pending = number(data[0], u128::MAX);
        account.debits_posted = number(data[1], u128::MAX);
        account.credits_pending = number(data[2], u128::MAX);
        account.credits_posted = number(data[3], u128::MAX);
        account.flags = if data[4] == "CLSD" {
            account.flags | AccountFlags::CLOSED
        } else {
            account.flags.without(AccountFlags::CLOSED)
        };
        account
    }

    fn lookup_transfer(&mut self, arguments: &[&str]) {
        self.expect_arguments(arguments, 3);
        let id = number(arguments[0], u128::MAX);
        let expected = match arguments[1] {
            "exists" if arguments[2] == "false" => None,
            "exists" => Some(self.known_transfer(id)),
            "amount" => Some(Transfer {
                amount: number(arguments[2], u128::MAX),
                ..self.known_transfer(id)
            }),
            "timestamp" => Some(Transfer {
                timestamp: number(arguments[2], u64::MAX as u128) as u64,
                ..self.known_transfer(id)
            }),
            other => panic!("{}: unknown lookup kind {other}", self.line),
        };
        match &mut self.operation {
            Operation::None => {
                self.operation =
                    Operation::LookupTransfers(vec![id], expected.into_iter().collect())
            }
            Operation::LookupTransfers(ids, results) => {
                ids.push(id);
                results.extend(expected);
            }
            _ => panic!("{}: mixed operations", self.line),
        }
    }

    fn known_transfer(&self, id: u128) -> Transfer {
        *self
            .transfers
            .get(&id)
            .unwrap_or_else(|| panic!("{}: unknown transfer", self.line))
    }

    fn transfer_timestamp_or_zero(&self, token: &str) -> u64 {
        if token == "_" {
            0
        } else {
            self.known_transfer(number(token, u128::MAX)).timestamp
        }
    }

    fn account_filter(&mut self, action: &str, arguments: &[&str]) {
        self.expect_arguments(arguments, 11);
        let mut flags = AccountFilterFlags::empty();
        for (token, flag) in arguments[8..].iter().zip([
            AccountFilterFlags::DEBITS,
            AccountFilterFlags::CREDITS,
            AccountFilterFlags::REVERSED,
        ]) {
            if *token != "_" {
                flags = flags | flag;
            }
        }
        let filter = AccountFilter {
            account_id: number(arguments[0], u128::MAX),
            user_data_128: number(arguments[1], u128::MAX),
            user_data_64: number(arguments[2], u64::MAX as u128) as u64,
            user_data_32: number(arguments[3], u32::MAX as u128) as u32,
            code: number(arguments[4], u16::MAX as u128) as u16,
            timestamp_min: self.transfer_timestamp_or_zero(arguments[5]),
            timestamp_max: self.transfer_timestamp_or_zero(arguments[6]),
            limit: number(arguments[7], u32::MAX as u128) as u32,
            flags,
            ..AccountFilter::default()
        };
        assert!(
            matches!(self.operation, Operation::None),
            "{}: mixed operations",
            self.line
        );
        self.operation = if action == "get_account_transfers" {
            Operation::GetAccountTransfers(filter, Vec::new())
        } else {
            Operation::GetAccountBalances(filter, Vec::new())
        };
    }

    fn get_account_transfers_result(&mut self, arguments: &[&str]) {
        self.expect_arguments(arguments, 1);
        let transfer = self.known_transfer(number(arguments[0], u128::MAX));
        match &mut self.operation {
            Operation::GetAccountTransfers(_, results) => results.push(transfer),
            _ => panic!("{}: result without filter", self.line),
        }
    }

    fn get_account_balances_result(&mut self, arguments: &[&str]) {
        self.expect_arguments(arguments, 5);
        let balance = AccountBalance {
            debits_pending: number(arguments[1], u128::MAX),
            debits_posted: number(arguments[2], u128::MAX),
            credits_pending: number(arguments[3], u128::MAX),
            credits_posted: number(arguments[4], u128::MAX),
            timestamp: self
                .known_transfer(number(arguments[0], u128::MAX))
                .timestamp,
        };
        match &mut self.operation {
            Operation::GetAccountBalances(_, results) => results.push(balance),
            _ => panic!("{}: result without filter", self.line),
        }
    }

    fn query_filter(&mut self, action: &str, arguments: &[&str]) {
        self.expect_arguments(arguments, 9);
        let is_accounts = action == "query_accounts";
        // The bounds name an object by id: an account for query_accounts, else a transfer.
        let bound = |token: &str| -> u64 {
            if token == "_" {
                0
            } else if is_accounts {
                self.accounts[&number(token, u128::MAX)].timestamp
            } else {
                self.known_transfer(number(token, u128::MAX)).timestamp
            }
        };
        let filter = QueryFilter {
            user_data_128: number(arguments[0], u128::MAX),
            user_data_64: number(arguments[1], u64::MAX as u128) as u64,
            user_data_32: number(arguments[2], u32::MAX as u128) as u32,
            ledger: number(arguments[3], u32::MAX as u128) as u32,
            code: number(arguments[4], u16::MAX as u128) as u16,
            timestamp_min: bound(arguments[5]),
            timestamp_max: bound(arguments[6]),
            limit: number(arguments[7], u32::MAX as u128) as u32,
            flags: if arguments[8] == "_" {
                QueryFilterFlags::empty()
            } else {
                QueryFilterFlags::REVERSED
            },
            reserved: [0; 6],
        };
        assert!(
            matches!(self.operation, Operation::None),
            "{}: mixed operations",
            self.line
        );
        self.operation = if is_accounts {
            Operation::QueryAccounts(filter, Vec::new())
        } else {
            Operation::QueryTransfers(filter, Vec::new())
        };
    }

    fn query_accounts_result(&mut self, arguments: &[&str]) {
        let id = number(arguments[0], u128::MAX);
        let account = if arguments.len() == 2 {
            self.accounts[&id]
        } else {
            self.expected_account(id, &arguments[1..])
        };
        match &mut self.operation {
            Operation::QueryAccounts(_, results) => results.push(account),
            _ => panic!("{}: result without filter", self.line),
        }
    }

    fn query_transfers_result(&mut self, arguments: &[&str]) {
        self.expect_arguments(arguments, 1);
        let transfer = self.known_transfer(number(arguments[0], u128::MAX));
        match &mut self.operation {
            Operation::QueryTransfers(_, results) => results.push(transfer),
            _ => panic!("{}: result without filter", self.line),
        }
    }

    fn commit(&mut self, arguments: &[&str]) {
        self.expect_arguments(arguments, 1);
        let mut operation = std::mem::replace(&mut self.operation, Operation::None);
        // A commit with nothing queued is an empty batch of the named create.
        if let Operation::None = operation {
            operation = match arguments[0] {
                "create_accounts" => Operation::CreateAccounts(Vec::new()),
                "create_transfers" => Operation::CreateTransfers(Vec::new()),
                other => panic!("{}: nothing queued for {other}", self.line),
            };
        }
        assert_eq!(operation.name(), arguments[0], "{}", self.line);
        // Every operation takes one timestamp; creates also take one per event.
        self.prepare_timestamp += 1;
        match operation {
            Operation::None => unreachable!("replaced above"),
            Operation::CreateAccounts(rows) => self.commit_create_accounts(rows),
            Operation::CreateTransfers(rows) => self.commit_create_transfers(rows),
            Operation::LookupAccounts(ids, expected) => {
                assert_eq!(self.ledger.lookup_accounts(&ids), expected, "{}", self.line);
            }
            Operation::LookupTransfers(ids, expected) => {
                assert_eq!(
                    self.ledger.lookup_transfers(&ids),
                    expected,
                    "{}",
                    self.line
                );
            }
            Operation::GetAccountTransfers(filter, expected) => {
                assert_eq!(
                    self.ledger.get_account_transfers(&filter),
                    expected,
                    "{}",
                    self.line
                );
            }
            Operation::GetAccountBalances(filter, expected) => {
                assert_eq!(
                    self.ledger.get_account_balances(&filter),
                    expected,
                    "{}",
                    self.line
                );
            }
            Operation::QueryAccounts(filter, expected) => {
                assert_eq!(
                    self.ledger.query_accounts(&filter),
                    expected,
                    "{}",
                    self.line
                );
            }
            Operation::QueryTransfers(filter, expected) => {
                assert_eq!(
                    self.ledger.query_transfers(&filter),
                    expected,
                    "{}",
                    self.line
                );
            }
        }
        // Seeded balances break the sum invariants by construction, as in TigerBeetle.
        if let (false, Err(violation)) = (self.balances_seeded, self.ledger.check_invariants()) {
            panic!("{}: invariant violated: {violation}", self.line);
        }
        self.pulse();
    }

    /// Applies TigerBeetle's expected-timestamp rule for one event and updates the builder's
    /// bookkeeping of rolled-back chain members.
    fn expected_timestamp(
        &mut self,
        id: u128,
        linked: bool,
        base: u64,
        slot: u64,
        kind: StatusKind,
    ) -> u64 {
        let timestamp = match kind {
            StatusKind::Created | StatusKind::LinkedEventFailed => base,
            StatusKind::Exists(existing) => existing
                .or_else(|| self.linked_events_failed.get(&id).copied())
                .unwrap_or_else(|| panic!("{}: exists without an object", self.line)),
            StatusKind::Other => slot,
        };
        if linked {
            if matches!(kind, StatusKind::LinkedEventFailed) {
                self.linked_events_failed.insert(id, base);
            }
        } else {
            self.linked_events_failed.clear();
        }
        timestamp
    }

    fn commit_create_accounts(&mut self, rows: Vec<(Account, CreateAccountStatus)>) {
        let first_slot = self.prepare_timestamp + 1;
        self.prepare_timestamp += rows.len() as u64;
        let mut expected = Vec::new();
        for (index, (event, status)) in rows.iter().enumerate() {
            let slot = first_slot + index as u64;
            let base = if event.timestamp == 0 {
                slot
            } else {
                event.timestamp
            };
            if *status == CreateAccountStatus::Created {
                self.accounts.insert(
                    event.id,
                    Account {
                        timestamp: base,
                        ..*event
                    },
                );
            }
            let kind = match status {
                CreateAccountStatus::Created => StatusKind::Created,
                CreateAccountStatus::LinkedEventFailed => StatusKind::LinkedEventFailed,
                CreateAccountStatus::Exists => {
                    StatusKind::Exists(self.accounts.get(&event.id).map(|a| a.timestamp))
                }
                _ => StatusKind::Other,
            };
            let linked = event.flags.contains(AccountFlags::LINKED);
            let timestamp = self.expected_timestamp(event.id, linked, base, slot, kind);
            expected.push(CreateAccountResult {
                timestamp,
                status: *status,
            });
        }
        let events: Vec<Account> = rows.iter().map(|(event, _)| *event).collect();
        let actual = self.ledger.create_accounts(&events, self.prepare_timestamp);
        assert_eq!(actual, expected, "{}", self.line);
    }

    fn commit_create_transfers(&mut self, rows: Vec<(Transfer, CreateTransferStatus)>) {
        let first_slot = self.prepare_timestamp + 1;
        self.prepare_timestamp += rows.len() as u64;
        let mut expected = Vec::new();
        for (index, (event, status)) in rows.iter().enumerate() {
            let slot = first_slot + index as u64;
            let base = if event.timestamp == 0 {
                slot
            } else {
                event.timestamp
            };
            if *status == CreateTransferStatus::Created {
                let stored = self.expected_stored_transfer(Transfer {
                    timestamp: base,
                    ..*event
                });
                self.transfers.insert(event.id, stored);
            }
            let kind = match status {
                CreateTransferStatus::Created => StatusKind::Created,
                CreateTransferStatus::LinkedEventFailed => StatusKind::LinkedEventFailed,
                CreateTransferStatus::Exists => {
                    StatusKind::Exists(self.transfers.get(&event.id).map(|t| t.timestamp))
                }
                _ => StatusKind::Other,
            };
            let linked = event.flags.contains(TransferFlags::LINKED);
            let timestamp = self.expected_timestamp(event.id, linked, base, slot, kind);
            expected.push(CreateTransferResult {
                timestamp,
                status: *status,
            });
        }
        let events: Vec<Transfer> = rows.iter().map(|(event, _)| *event).collect();
        let actual = self
            .ledger
            .create_transfers(&events, self.prepare_timestamp);
        assert_eq!(actual, expected, "{}", self.line);
    }

    /// The builder's stored form of a created transfer: a post/void inherits zero fields from
    /// its pending transfer, and a void's zero amount becomes the pending amount. (Balancing
    /// and posted amounts are checked through explicit `amount` lookups, as in TigerBeetle.)
    fn expected_stored_transfer(&self, mut transfer: Transfer) -> Transfer {
        if transfer.pending_id == 0 {
            return transfer;
        }
        let pending = self.known_transfer(transfer.pending_id);
        let inherit_u128 =
            |value: u128, inherited: u128| if value == 0 { inherited } else { value };
        transfer.debit_account_id =
            inherit_u128(transfer.debit_account_id, pending.debit_account_id);
        transfer.credit_account_id =
            inherit_u128(transfer.credit_account_id, pending.credit_account_id);
        transfer.user_data_128 = inherit_u128(transfer.user_data_128, pending.user_data_128);
        if transfer.user_data_64 == 0 {
            transfer.user_data_64 = pending.user_data_64;
        }
        if transfer.user_data_32 == 0 {
            transfer.user_data_32 = pending.user_data_32;
        }
        if transfer.ledger == 0 {
            transfer.ledger = pending.ledger;
        }
        if transfer.code == 0 {
            transfer.code = pending.code;
        }
        if transfer
            .flags
            .contains(TransferFlags::VOID_PENDING_TRANSFER)
            && transfer.amount == 0
        {
            transfer.amount = pending.amount;
        }
        transfer
    }
}

/// What an expected status means for its result timestamp.
enum StatusKind {
    Created,
    LinkedEventFailed,
    Exists(Option<u64>),
    Other,
}

/// Parses a table number: `_` is 0, a leading letter prefix (`A`, `T`, `U`, `L`, `C`, `P`) is
/// ignored, and `-n` means `max - n` for the column's type.
pub(crate) fn number(token: &str, max: u128) -> u128 {
    if token == "_" {
        return 0;
    }
    let digits = token.trim_start_matches(|character: char| character.is_ascii_alphabetic());
    match digits.strip_prefix('-') {
        Some(rest) => {
            max - rest
                .parse::<u128>()
                .unwrap_or_else(|_| panic!("bad number {token}"))
        }
        None => digits
            .parse::<u128>()
            .unwrap_or_else(|_| panic!("bad number {token}")),
    }
}

/// Converts a variant name to TigerBeetle's snake_case name (`UserData128` → `user_data_128`).
fn snake_case(name: &str) -> String {
    let mut snake = String::new();
    let mut previous: Option<char> = None;
    for character in name.chars() {
        let starts_word = character.is_ascii_uppercase()
            || (character.is_ascii_digit() && !previous.is_some_and(|p| p.is_ascii_digit()));
        if starts_word && previous.is_some() {
            snake.push('_');
        }
        snake.push(character.to_ascii_lowercase());
        previous = Some(character);
    }
    snake
}

fn account_status(name: &str) -> CreateAccountStatus {
    *CreateAccountStatus::ALL
        .iter()
        .find(|status| snake_case(&format!("{status:?}")) == name)
        .unwrap_or_else(|| panic!("unknown account status {name}"))
}

fn transfer_status(name: &str) -> CreateTransferStatus {
    *CreateTransferStatus::ALL
        .iter()
        .find(|status| snake_case(&format!("{status:?}")) == name)
        .unwrap_or_else(|| panic!("unknown transfer status {name}"))
}
