//! Transfers: the `Transfer` record, its flags, and the amount sentinel,
//! in TigerBeetle 0.17's layout.

use super::layout::{read_u16, read_u32, read_u64, read_u128, write_bytes};

/// The "as much as possible" amount sentinel (2^128 − 1).
///
/// Since TigerBeetle 0.16.0 a balancing transfer with this amount moves as much as the balance
/// allows, and a post of a pending transfer with this amount posts the full pending amount
/// (`docs/reference/transfer.md`, tracking issue tigerbeetle/tigerbeetle#2231). In every other
/// context it is an ordinary (huge) amount.
pub const AMOUNT_MAX: u128 = u128::MAX;

/// Flags of a [`Transfer`] (TigerBeetle `TransferFlags`, a `u16`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct TransferFlags(pub u16);

impl TransferFlags {
    /// The transfer is linked to the next event of the batch (all-or-nothing chain).
    pub const LINKED: Self = Self(1 << 0);
    /// The first phase of a two-phase transfer: reserve the amount as pending.
    pub const PENDING: Self = Self(1 << 1);
    /// Post (commit) the pending transfer named by `pending_id`.
    pub const POST_PENDING_TRANSFER: Self = Self(1 << 2);
    /// Void (cancel) the pending transfer named by `pending_id`.
    pub const VOID_PENDING_TRANSFER: Self = Self(1 << 3);
    /// Clamp the amount so the debit account's debits do not exceed its credits.
    pub const BALANCING_DEBIT: Self = Self(1 << 4);
    /// Clamp the amount so the credit account's credits do not exceed its debits.
    pub const BALANCING_CREDIT: Self = Self(1 << 5);
    /// Close the debit account (requires `PENDING`; voiding or expiry reopens it).
    pub const CLOSING_DEBIT: Self = Self(1 << 6);
    /// Close the credit account (requires `PENDING`; voiding or expiry reopens it).
    pub const CLOSING_CREDIT: Self = Self(1 << 7);
    /// The event carries its own past timestamp (data migration).
    pub const IMPORTED: Self = Self(1 << 8);
    /// The seven unused high bits; any of them set is rejected with `reserved_flag`.
    pub const PADDING: Self = Self(0xFE00);
}

flag_set_operations!(TransferFlags);

/// A transfer between two accounts (TigerBeetle `Transfer`, 128 bytes, little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct Transfer {
    /// Unique identifier; must not be 0 or 2^128 − 1. Offset 0.
    pub id: u128,
    /// Account debited. Offset 16.
    pub debit_account_id: u128,
    /// Account credited. Offset 32.
    pub credit_account_id: u128,
    /// Amount moved; see [`AMOUNT_MAX`] for the sentinel meaning. Offset 48.
    pub amount: u128,
    /// For a post or void: the pending transfer it resolves; otherwise 0. Offset 64.
    pub pending_id: u128,
    /// Opaque user data; 0 means "not set" (and "inherit" on post/void). Offset 80.
    pub user_data_128: u128,
    /// Opaque user data; 0 means "not set" (and "inherit" on post/void). Offset 96.
    pub user_data_64: u64,
    /// Opaque user data; 0 means "not set" (and "inherit" on post/void). Offset 104.
    pub user_data_32: u32,
    /// Pending transfers only: seconds until expiry, 0 = never. Offset 108.
    pub timeout: u32,
    /// Ledger; must match both accounts. Offset 112.
    pub ledger: u32,
    /// User-defined reason code; must not be 0. Offset 116.
    pub code: u16,
    /// Transfer flags. Offset 118.
    pub flags: TransferFlags,
    /// Creation timestamp in nanoseconds; 0 on create unless imported. Offset 120.
    pub timestamp: u64,
}

impl Transfer {
    /// Size of the wire record in bytes.
    pub const SIZE: usize = 128;

    /// Encodes the transfer with TigerBeetle's little-endian layout.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut bytes = [0u8; 128];
        write_bytes(&mut bytes, 0, &self.id.to_le_bytes());
        write_bytes(&mut bytes, 16, &self.debit_account_id.to_le_bytes());
        write_bytes(&mut bytes, 32, &self.credit_account_id.to_le_bytes());
        write_bytes(&mut bytes, 48, &self.amount.to_le_bytes());
        write_bytes(&mut bytes, 64, &self.pending_id.to_le_bytes());
        write_bytes(&mut bytes, 80, &self.user_data_128.to_le_bytes());
        write_bytes(&mut bytes, 96, &self.user_data_64.to_le_bytes());
        write_bytes(&mut bytes, 104, &self.user_data_32.to_le_bytes());
        write_bytes(&mut bytes, 108, &self.timeout.to_le_bytes());
        write_bytes(&mut bytes, 112, &self.ledger.to_le_bytes());
        write_bytes(&mut bytes, 116, &self.code.to_le_bytes());
        write_bytes(&mut bytes, 118, &self.flags.0.to_le_bytes());
        write_bytes(&mut bytes, 120, &self.timestamp.to_le_bytes());
        bytes
    }

    /// Decodes a transfer from TigerBeetle's little-endian layout (every bit pattern is valid).
    pub fn from_bytes(bytes: &[u8; 128]) -> Self {
        Self {
            id: read_u128(bytes, 0),
            debit_account_id: read_u128(bytes, 16),
            credit_account_id: read_u128(bytes, 32),
            amount: read_u128(bytes, 48),
            pending_id: read_u128(bytes, 64),
            user_data_128: read_u128(bytes, 80),
            user_data_64: read_u64(bytes, 96),
            user_data_32: read_u32(bytes, 104),
            timeout: read_u32(bytes, 108),
            ledger: read_u32(bytes, 112),
            code: read_u16(bytes, 116),
            flags: TransferFlags(read_u16(bytes, 118)),
            timestamp: read_u64(bytes, 120),
        }
    }
}
