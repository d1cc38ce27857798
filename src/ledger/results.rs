//! Results of `create_accounts` and `create_transfers`: the status enums in
//! TigerBeetle's declared (precedence) order with its wire values, and the
//! dense 0.17 result records.

/// Declares a `#[repr(u32)]` status enum whose variants are listed in TigerBeetle's declared
/// (precedence) order with TigerBeetle's wire values, plus `ALL`, `as_u32` and `from_u32`.
macro_rules! status_enum {
    (
        $(#[$enum_meta:meta])*
        $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $value:expr, )+
        }
    ) => {
        $(#[$enum_meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant = $value, )+
        }

        impl $name {
            /// Every variant, in TigerBeetle's declared (descending precedence) order.
            pub const ALL: &'static [Self] = &[ $( Self::$variant, )+ ];

            /// Returns TigerBeetle's numeric wire value.
            pub const fn as_u32(self) -> u32 {
                self as u32
            }

            /// Parses a wire value; unknown values (including retired ones) give `None`.
            pub fn from_u32(value: u32) -> Option<Self> {
                Self::ALL.iter().copied().find(|status| status.as_u32() == value)
            }
        }
    };
}

status_enum! {
    /// Outcome of one `create_accounts` event (TigerBeetle 0.17 `CreateAccountStatus`).
    CreateAccountStatus {
        /// The account was created.
        Created = 0xFFFF_FFFF,
        /// Another event of the same linked chain failed, so this one was not applied.
        LinkedEventFailed = 1,
        /// The batch ended inside a linked chain.
        LinkedEventChainOpen = 2,
        /// The batch is imported (its first event is) but this event is not.
        ImportedEventExpected = 22,
        /// The batch is not imported but this event is.
        ImportedEventNotExpected = 23,
        /// A non-imported event must submit `timestamp == 0`.
        TimestampMustBeZero = 3,
        /// An imported timestamp must be in [1, 2^63 − 1].
        ImportedEventTimestampOutOfRange = 24,
        /// An imported timestamp must be below the batch timestamp.
        ImportedEventTimestampMustNotAdvance = 25,
        /// `reserved` must be 0.
        ReservedField = 4,
        /// Padding flag bits must be 0.
        ReservedFlag = 5,
        /// `id` must not be 0.
        IdMustNotBeZero = 6,
        /// `id` must not be 2^128 − 1.
        IdMustNotBeIntMax = 7,
        /// The account exists with different flags.
        ExistsWithDifferentFlags = 15,
        /// The account exists with a different `user_data_128`.
        ExistsWithDifferentUserData128 = 16,
        /// The account exists with a different `user_data_64`.
        ExistsWithDifferentUserData64 = 17,
        /// The account exists with a different `user_data_32`.
        ExistsWithDifferentUserData32 = 18,
        /// The account exists with a different ledger.
        ExistsWithDifferentLedger = 19,
        /// The account exists with a different code.
        ExistsWithDifferentCode = 20,
        /// The same account already exists (idempotent resubmission).
        Exists = 21,
        /// Both balance-limit flags are set.
        FlagsAreMutuallyExclusive = 8,
        /// `debits_pending` must be 0 on create.
        DebitsPendingMustBeZero = 9,
        /// `debits_posted` must be 0 on create.
        DebitsPostedMustBeZero = 10,
        /// `credits_pending` must be 0 on create.
        CreditsPendingMustBeZero = 11,
        /// `credits_posted` must be 0 on create.
        CreditsPostedMustBeZero = 12,
        /// `ledger` must not be 0.
        LedgerMustNotBeZero = 13,
        /// `code` must not be 0.
        CodeMustNotBeZero = 14,
        /// An imported timestamp must exceed every account timestamp and differ from every
        /// transfer timestamp.
        ImportedEventTimestampMustNotRegress = 26,
    }
}

status_enum! {
    /// Outcome of one `create_transfers` event (TigerBeetle 0.17 `CreateTransferStatus`).
    ///
    /// Value 18 (`amount_must_not_be_zero`, retired in 0.16.0) is not represented.
    CreateTransferStatus {
        /// The transfer was created.
        Created = 0xFFFF_FFFF,
        /// Another event of the same linked chain failed, so this one was not applied.
        LinkedEventFailed = 1,
        /// The batch ended inside a linked chain.
        LinkedEventChainOpen = 2,
        /// The batch is imported (its first event is) but this event is not.
        ImportedEventExpected = 56,
        /// The batch is not imported but this event is.
        ImportedEventNotExpected = 57,
        /// A non-imported event must submit `timestamp == 0`.
        TimestampMustBeZero = 3,
        /// An imported timestamp must be in [1, 2^63 − 1].
        ImportedEventTimestampOutOfRange = 58,
        /// An imported timestamp must be below the batch timestamp.
        ImportedEventTimestampMustNotAdvance = 59,
        /// Padding flag bits must be 0.
        ReservedFlag = 4,
        /// `id` must not be 0.
        IdMustNotBeZero = 5,
        /// `id` must not be 2^128 − 1.
        IdMustNotBeIntMax = 6,
        /// The transfer exists with different flags.
        ExistsWithDifferentFlags = 36,
        /// The transfer exists with a different `pending_id`.
        ExistsWithDifferentPendingId = 40,
        /// The transfer exists with a different timeout.
        ExistsWithDifferentTimeout = 44,
        /// The transfer exists with a different debit account.
        ExistsWithDifferentDebitAccountId = 37,
        /// The transfer exists with a different credit account.
        ExistsWithDifferentCreditAccountId = 38,
        /// The transfer exists with a different amount.
        ExistsWithDifferentAmount = 39,
        /// The transfer exists with a different `user_data_128`.
        ExistsWithDifferentUserData128 = 41,
        /// The transfer exists with a different `user_data_64`.
        ExistsWithDifferentUserData64 = 42,
        /// The transfer exists with a different `user_data_32`.
        ExistsWithDifferentUserData32 = 43,
        /// The transfer exists with a different ledger.
        ExistsWithDifferentLedger = 67,
        /// The transfer exists with a different code.
        ExistsWithDifferentCode = 45,
        /// The same transfer already exists (idempotent resubmission).
        Exists = 46,
        /// The id was burnt by an earlier transient failure and cannot be reused.
        IdAlreadyFailed = 68,
        /// Flags that cannot be combined are set.
        FlagsAreMutuallyExclusive = 7,
        /// `debit_account_id` must not be 0.
        DebitAccountIdMustNotBeZero = 8,
        /// `debit_account_id` must not be 2^128 − 1.
        DebitAccountIdMustNotBeIntMax = 9,
        /// `credit_account_id` must not be 0.
        CreditAccountIdMustNotBeZero = 10,
        /// `credit_account_id` must not be 2^128 − 1.
        CreditAccountIdMustNotBeIntMax = 11,
        /// Debit and credit account must differ.
        AccountsMustBeDifferent = 12,
        /// `pending_id` must be 0 unless posting or voiding.
        PendingIdMustBeZero = 13,
        /// A post or void needs a `pending_id`.
        PendingIdMustNotBeZero = 14,
        /// `pending_id` must not be 2^128 − 1.
        PendingIdMustNotBeIntMax = 15,
        /// `pending_id` must differ from `id`.
        PendingIdMustBeDifferent = 16,
        /// `timeout` is only allowed on pending transfers.
        TimeoutReservedForPendingTransfer = 17,
        /// Closing flags are only allowed on pending transfers.
        ClosingTransferMustBePending = 64,
        /// `ledger` must not be 0.
        LedgerMustNotBeZero = 19,
        /// `code` must not be 0.
        CodeMustNotBeZero = 20,
        /// The debit account does not exist (transient).
        DebitAccountNotFound = 21,
        /// The credit account does not exist (transient).
        CreditAccountNotFound = 22,
        /// The two accounts are on different ledgers.
        AccountsMustHaveTheSameLedger = 23,
        /// The transfer's ledger differs from the accounts' ledger.
        TransferMustHaveTheSameLedgerAsAccounts = 24,
        /// The pending transfer does not exist (transient).
        PendingTransferNotFound = 25,
        /// The transfer named by `pending_id` is not pending.
        PendingTransferNotPending = 26,
        /// The debit account differs from the pending transfer's.
        PendingTransferHasDifferentDebitAccountId = 27,
        /// The credit account differs from the pending transfer's.
        PendingTransferHasDifferentCreditAccountId = 28,
        /// The ledger differs from the pending transfer's.
        PendingTransferHasDifferentLedger = 29,
        /// The code differs from the pending transfer's.
        PendingTransferHasDifferentCode = 30,
        /// The amount exceeds the pending amount.
        ExceedsPendingTransferAmount = 31,
        /// A void must name the full pending amount (or 0).
        PendingTransferHasDifferentAmount = 32,
        /// The pending transfer was already posted.
        PendingTransferAlreadyPosted = 33,
        /// The pending transfer was already voided.
        PendingTransferAlreadyVoided = 34,
        /// The pending transfer has expired.
        PendingTransferExpired = 35,
        /// An imported timestamp must exceed every transfer timestamp and differ from every
        /// account timestamp.
        ImportedEventTimestampMustNotRegress = 60,
        /// An imported timestamp must be after the debit account's timestamp.
        ImportedEventTimestampMustPostdateDebitAccount = 61,
        /// An imported timestamp must be after the credit account's timestamp.
        ImportedEventTimestampMustPostdateCreditAccount = 62,
        /// Imported pending transfers cannot time out.
        ImportedEventTimeoutMustBeZero = 63,
        /// The debit account is closed (transient).
        DebitAccountAlreadyClosed = 65,
        /// The credit account is closed (transient).
        CreditAccountAlreadyClosed = 66,
        /// The debit account's `debits_pending` would overflow.
        OverflowsDebitsPending = 47,
        /// The credit account's `credits_pending` would overflow.
        OverflowsCreditsPending = 48,
        /// The debit account's `debits_posted` would overflow.
        OverflowsDebitsPosted = 49,
        /// The credit account's `credits_posted` would overflow.
        OverflowsCreditsPosted = 50,
        /// The debit account's pending plus posted debits would overflow.
        OverflowsDebits = 51,
        /// The credit account's pending plus posted credits would overflow.
        OverflowsCredits = 52,
        /// `timestamp + timeout` would pass 2^63 − 1 nanoseconds.
        OverflowsTimeout = 53,
        /// The debit account's debits would exceed its credits (transient).
        ExceedsCredits = 54,
        /// The credit account's credits would exceed its debits (transient).
        ExceedsDebits = 55,
    }
}

impl CreateTransferStatus {
    /// Returns true for the statuses that depend on the ledger's current state, so that a
    /// retry with the same id could succeed later. TigerBeetle burns the id of an event that
    /// fails with one of them: every later attempt with that id gets `IdAlreadyFailed`
    /// (`CreateTransferResult.transient()` in TigerBeetle's `src/tigerbeetle.zig`).
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            Self::DebitAccountNotFound
                | Self::CreditAccountNotFound
                | Self::PendingTransferNotFound
                | Self::ExceedsCredits
                | Self::ExceedsDebits
                | Self::DebitAccountAlreadyClosed
                | Self::CreditAccountAlreadyClosed
        )
    }
}

/// Dense 0.17 result of one `create_accounts` event (wire: u64 timestamp, u32 status, u32 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CreateAccountResult {
    /// The created (or existing) account's timestamp, or the event's reserved slot.
    pub timestamp: u64,
    /// The outcome.
    pub status: CreateAccountStatus,
}

/// Dense 0.17 result of one `create_transfers` event (wire: u64 timestamp, u32 status, u32 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CreateTransferResult {
    /// The created (or existing) transfer's timestamp, or the event's reserved slot.
    pub timestamp: u64,
    /// The outcome.
    pub status: CreateTransferStatus,
}
