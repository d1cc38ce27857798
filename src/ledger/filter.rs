//! Query filters: `AccountFilter` (for `get_account_transfers` and
//! `get_account_balances`) and `QueryFilter` (for `query_accounts` and
//! `query_transfers`), in TigerBeetle 0.17's layouts.

use super::layout::{read_u16, read_u32, read_u64, read_u128, write_bytes};

/// Flags of an [`AccountFilter`] (TigerBeetle `AccountFilterFlags`, a `u32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct AccountFilterFlags(pub u32);

impl AccountFilterFlags {
    /// Include transfers that debit the account.
    pub const DEBITS: Self = Self(1 << 0);
    /// Include transfers that credit the account.
    pub const CREDITS: Self = Self(1 << 1);
    /// Newest first instead of oldest first.
    pub const REVERSED: Self = Self(1 << 2);
    /// The unused bits 3..=31; any of them set makes the filter invalid.
    pub const PADDING: Self = Self(!0b111);
}

flag_set_operations!(AccountFilterFlags);

/// Filter of `get_account_transfers` and `get_account_balances` (TigerBeetle `AccountFilter`,
/// 128 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccountFilter {
    /// The account whose transfers are listed; must not be 0 or 2^128 − 1. Offset 0.
    pub account_id: u128,
    /// Keep only transfers with this `user_data_128` (0 = any). Offset 16.
    pub user_data_128: u128,
    /// Keep only transfers with this `user_data_64` (0 = any). Offset 32.
    pub user_data_64: u64,
    /// Keep only transfers with this `user_data_32` (0 = any). Offset 40.
    pub user_data_32: u32,
    /// Keep only transfers with this code (0 = any). Offset 44.
    pub code: u16,
    /// Reserved; must be all zero. Offset 46.
    pub reserved: [u8; 58],
    /// Inclusive lower timestamp bound (0 = none). Offset 104.
    pub timestamp_min: u64,
    /// Inclusive upper timestamp bound (0 = none). Offset 112.
    pub timestamp_max: u64,
    /// Maximum number of results; must not be 0. Offset 120.
    pub limit: u32,
    /// Filter flags. Offset 124.
    pub flags: AccountFilterFlags,
}

impl Default for AccountFilter {
    fn default() -> Self {
        Self {
            account_id: 0,
            user_data_128: 0,
            user_data_64: 0,
            user_data_32: 0,
            code: 0,
            reserved: [0; 58],
            timestamp_min: 0,
            timestamp_max: 0,
            limit: 0,
            flags: AccountFilterFlags::empty(),
        }
    }
}

impl AccountFilter {
    /// Size of the wire record in bytes.
    pub const SIZE: usize = 128;

    /// Encodes the filter with TigerBeetle's little-endian layout.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut bytes = [0u8; 128];
        write_bytes(&mut bytes, 0, &self.account_id.to_le_bytes());
        write_bytes(&mut bytes, 16, &self.user_data_128.to_le_bytes());
        write_bytes(&mut bytes, 32, &self.user_data_64.to_le_bytes());
        write_bytes(&mut bytes, 40, &self.user_data_32.to_le_bytes());
        write_bytes(&mut bytes, 44, &self.code.to_le_bytes());
        write_bytes(&mut bytes, 46, &self.reserved);
        write_bytes(&mut bytes, 104, &self.timestamp_min.to_le_bytes());
        write_bytes(&mut bytes, 112, &self.timestamp_max.to_le_bytes());
        write_bytes(&mut bytes, 120, &self.limit.to_le_bytes());
        write_bytes(&mut bytes, 124, &self.flags.0.to_le_bytes());
        bytes
    }

    /// Decodes a filter from TigerBeetle's little-endian layout (every bit pattern is valid).
    pub fn from_bytes(bytes: &[u8; 128]) -> Self {
        let mut reserved = [0u8; 58];
        reserved.copy_from_slice(&bytes[46..104]);
        Self {
            account_id: read_u128(bytes, 0),
            user_data_128: read_u128(bytes, 16),
            user_data_64: read_u64(bytes, 32),
            user_data_32: read_u32(bytes, 40),
            code: read_u16(bytes, 44),
            reserved,
            timestamp_min: read_u64(bytes, 104),
            timestamp_max: read_u64(bytes, 112),
            limit: read_u32(bytes, 120),
            flags: AccountFilterFlags(read_u32(bytes, 124)),
        }
    }
}

/// Flags of a [`QueryFilter`] (TigerBeetle `QueryFilterFlags`, a `u32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct QueryFilterFlags(pub u32);

impl QueryFilterFlags {
    /// Newest first instead of oldest first.
    pub const REVERSED: Self = Self(1 << 0);
    /// The unused bits 1..=31; any of them set makes the filter invalid.
    pub const PADDING: Self = Self(!0b1);
}

flag_set_operations!(QueryFilterFlags);

/// Filter of `query_accounts` and `query_transfers` (TigerBeetle `QueryFilter`, 64 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct QueryFilter {
    /// Keep only objects with this `user_data_128` (0 = any). Offset 0.
    pub user_data_128: u128,
    /// Keep only objects with this `user_data_64` (0 = any). Offset 16.
    pub user_data_64: u64,
    /// Keep only objects with this `user_data_32` (0 = any). Offset 24.
    pub user_data_32: u32,
    /// Keep only objects on this ledger (0 = any). Offset 28.
    pub ledger: u32,
    /// Keep only objects with this code (0 = any). Offset 32.
    pub code: u16,
    /// Reserved; must be all zero. Offset 34.
    pub reserved: [u8; 6],
    /// Inclusive lower timestamp bound (0 = none). Offset 40.
    pub timestamp_min: u64,
    /// Inclusive upper timestamp bound (0 = none). Offset 48.
    pub timestamp_max: u64,
    /// Maximum number of results; must not be 0. Offset 56.
    pub limit: u32,
    /// Filter flags. Offset 60.
    pub flags: QueryFilterFlags,
}

impl QueryFilter {
    /// Size of the wire record in bytes.
    pub const SIZE: usize = 64;

    /// Encodes the filter with TigerBeetle's little-endian layout.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut bytes = [0u8; 64];
        write_bytes(&mut bytes, 0, &self.user_data_128.to_le_bytes());
        write_bytes(&mut bytes, 16, &self.user_data_64.to_le_bytes());
        write_bytes(&mut bytes, 24, &self.user_data_32.to_le_bytes());
        write_bytes(&mut bytes, 28, &self.ledger.to_le_bytes());
        write_bytes(&mut bytes, 32, &self.code.to_le_bytes());
        write_bytes(&mut bytes, 34, &self.reserved);
        write_bytes(&mut bytes, 40, &self.timestamp_min.to_le_bytes());
        write_bytes(&mut bytes, 48, &self.timestamp_max.to_le_bytes());
        write_bytes(&mut bytes, 56, &self.limit.to_le_bytes());
        write_bytes(&mut bytes, 60, &self.flags.0.to_le_bytes());
        bytes
    }

    /// Decodes a filter from TigerBeetle's little-endian layout (every bit pattern is valid).
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        let mut reserved = [0u8; 6];
        reserved.copy_from_slice(&bytes[34..40]);
        Self {
            user_data_128: read_u128(bytes, 0),
            user_data_64: read_u64(bytes, 16),
            user_data_32: read_u32(bytes, 24),
            ledger: read_u32(bytes, 28),
            code: read_u16(bytes, 32),
            reserved,
            timestamp_min: read_u64(bytes, 40),
            timestamp_max: read_u64(bytes, 48),
            limit: read_u32(bytes, 56),
            flags: QueryFilterFlags(read_u32(bytes, 60)),
        }
    }
}
