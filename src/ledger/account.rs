//! Accounts: the `Account` record, its flags, and the balance-history row,
//! in TigerBeetle 0.17's layouts.
//!
//! Every record here mirrors a TigerBeetle `extern struct` field for field: the same names,
//! the same integer widths, and (for the 128-byte and 64-byte records) the same little-endian
//! byte offsets, so that `to_bytes`/`from_bytes` produce exactly the bytes a TigerBeetle client
//! would send or receive. Flag sets are plain newtypes over the raw integer so that unknown
//! (padding) bits survive a round trip and can be rejected by validation, exactly as TigerBeetle
//! rejects them with `reserved_flag`. The numeric values of the status enums are TigerBeetle's
//! wire values; the declaration order of their variants is TigerBeetle's precedence order
//! (TigerBeetle documents its result codes as "ordered by descending precedence").

use super::layout::{read_u16, read_u32, read_u64, read_u128, write_bytes};

/// Flags of an [`Account`] (TigerBeetle `AccountFlags`, a `u16`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct AccountFlags(pub u16);

impl AccountFlags {
    /// The account is linked to the next event of the batch (all-or-nothing chain).
    pub const LINKED: Self = Self(1 << 0);
    /// Debits (pending plus posted) must never exceed posted credits.
    pub const DEBITS_MUST_NOT_EXCEED_CREDITS: Self = Self(1 << 1);
    /// Credits (pending plus posted) must never exceed posted debits.
    pub const CREDITS_MUST_NOT_EXCEED_DEBITS: Self = Self(1 << 2);
    /// Keep a balance snapshot per transfer, readable with `get_account_balances`.
    pub const HISTORY: Self = Self(1 << 3);
    /// The event carries its own past timestamp (data migration).
    pub const IMPORTED: Self = Self(1 << 4);
    /// The account is closed: it rejects new transfers, only voids are allowed.
    pub const CLOSED: Self = Self(1 << 5);
    /// The ten unused high bits; any of them set is rejected with `reserved_flag`.
    pub const PADDING: Self = Self(0xFFC0);
}

flag_set_operations!(AccountFlags);

/// A ledger account (TigerBeetle `Account`, 128 bytes, little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct Account {
    /// Unique identifier; must not be 0 or 2^128 − 1. Offset 0.
    pub id: u128,
    /// Amount reserved by unresolved pending transfers debiting this account. Offset 16.
    pub debits_pending: u128,
    /// Amount debited by posted transfers. Offset 32.
    pub debits_posted: u128,
    /// Amount reserved by unresolved pending transfers crediting this account. Offset 48.
    pub credits_pending: u128,
    /// Amount credited by posted transfers. Offset 64.
    pub credits_posted: u128,
    /// Opaque user data; 0 means "not set" for queries. Offset 80.
    pub user_data_128: u128,
    /// Opaque user data; 0 means "not set" for queries. Offset 96.
    pub user_data_64: u64,
    /// Opaque user data; 0 means "not set" for queries. Offset 104.
    pub user_data_32: u32,
    /// Reserved; must be 0 (`reserved_field`). Offset 108.
    pub reserved: u32,
    /// Ledger (currency or asset class); must not be 0. Offset 112.
    pub ledger: u32,
    /// User-defined account kind; must not be 0. Offset 116.
    pub code: u16,
    /// Account flags. Offset 118.
    pub flags: AccountFlags,
    /// Creation timestamp in nanoseconds; 0 on create unless imported. Offset 120.
    pub timestamp: u64,
}

impl Account {
    /// Size of the wire record in bytes.
    pub const SIZE: usize = 128;

    /// Encodes the account with TigerBeetle's little-endian layout.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut bytes = [0u8; 128];
        write_bytes(&mut bytes, 0, &self.id.to_le_bytes());
        write_bytes(&mut bytes, 16, &self.debits_pending.to_le_bytes());
        write_bytes(&mut bytes, 32, &self.debits_posted.to_le_bytes());
        write_bytes(&mut bytes, 48, &self.credits_pending.to_le_bytes());
        write_bytes(&mut bytes, 64, &self.credits_posted.to_le_bytes());
        write_bytes(&mut bytes, 80, &self.user_data_128.to_le_bytes());
        write_bytes(&mut bytes, 96, &self.user_data_64.to_le_bytes());
        write_bytes(&mut bytes, 104, &self.user_data_32.to_le_bytes());
        write_bytes(&mut bytes, 108, &self.reserved.to_le_bytes());
        write_bytes(&mut bytes, 112, &self.ledger.to_le_bytes());
        write_bytes(&mut bytes, 116, &self.code.to_le_bytes());
        write_bytes(&mut bytes, 118, &self.flags.0.to_le_bytes());
        write_bytes(&mut bytes, 120, &self.timestamp.to_le_bytes());
        bytes
    }

    /// Decodes an account from TigerBeetle's little-endian layout (every bit pattern is valid).
    pub fn from_bytes(bytes: &[u8; 128]) -> Self {
        Self {
            id: read_u128(bytes, 0),
            debits_pending: read_u128(bytes, 16),
            debits_posted: read_u128(bytes, 32),
            credits_pending: read_u128(bytes, 48),
            credits_posted: read_u128(bytes, 64),
            user_data_128: read_u128(bytes, 80),
            user_data_64: read_u64(bytes, 96),
            user_data_32: read_u32(bytes, 104),
            reserved: read_u32(bytes, 108),
            ledger: read_u32(bytes, 112),
            code: read_u16(bytes, 116),
            flags: AccountFlags(read_u16(bytes, 118)),
            timestamp: read_u64(bytes, 120),
        }
    }
}

/// One balance-history row of `get_account_balances` (TigerBeetle `AccountBalance`, 128 bytes
/// on the wire, the last 56 of them reserved zeros).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct AccountBalance {
    /// The account's `debits_pending` right after the transfer. Offset 0.
    pub debits_pending: u128,
    /// The account's `debits_posted` right after the transfer. Offset 16.
    pub debits_posted: u128,
    /// The account's `credits_pending` right after the transfer. Offset 32.
    pub credits_pending: u128,
    /// The account's `credits_posted` right after the transfer. Offset 48.
    pub credits_posted: u128,
    /// The timestamp of the transfer after which the balance was recorded. Offset 64.
    pub timestamp: u64,
}

impl AccountBalance {
    /// Size of the wire record in bytes.
    pub const SIZE: usize = 128;

    /// Encodes the row with TigerBeetle's little-endian layout (reserved bytes are zero).
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut bytes = [0u8; 128];
        write_bytes(&mut bytes, 0, &self.debits_pending.to_le_bytes());
        write_bytes(&mut bytes, 16, &self.debits_posted.to_le_bytes());
        write_bytes(&mut bytes, 32, &self.credits_pending.to_le_bytes());
        write_bytes(&mut bytes, 48, &self.credits_posted.to_le_bytes());
        write_bytes(&mut bytes, 64, &self.timestamp.to_le_bytes());
        bytes
    }

    /// Decodes a row from TigerBeetle's little-endian layout, ignoring the reserved bytes.
    pub fn from_bytes(bytes: &[u8; 128]) -> Self {
        Self {
            debits_pending: read_u128(bytes, 0),
            debits_posted: read_u128(bytes, 16),
            credits_pending: read_u128(bytes, 32),
            credits_posted: read_u128(bytes, 48),
            timestamp: read_u64(bytes, 64),
        }
    }
}
