//! Little-endian field access for the fixed 128-byte (and 64-byte) wire
//! records. Callers pass constant, in-bounds offsets.

/// Reads a little-endian `u128` at `offset`; callers pass constant, in-bounds offsets.
pub(super) fn read_u128<const N: usize>(bytes: &[u8; N], offset: usize) -> u128 {
    let mut buffer = [0u8; 16];
    buffer.copy_from_slice(&bytes[offset..offset + 16]);
    u128::from_le_bytes(buffer)
}

/// Reads a little-endian `u64` at `offset`; callers pass constant, in-bounds offsets.
pub(super) fn read_u64<const N: usize>(bytes: &[u8; N], offset: usize) -> u64 {
    let mut buffer = [0u8; 8];
    buffer.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(buffer)
}

/// Reads a little-endian `u32` at `offset`; callers pass constant, in-bounds offsets.
pub(super) fn read_u32<const N: usize>(bytes: &[u8; N], offset: usize) -> u32 {
    let mut buffer = [0u8; 4];
    buffer.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(buffer)
}

/// Reads a little-endian `u16` at `offset`; callers pass constant, in-bounds offsets.
pub(super) fn read_u16<const N: usize>(bytes: &[u8; N], offset: usize) -> u16 {
    let mut buffer = [0u8; 2];
    buffer.copy_from_slice(&bytes[offset..offset + 2]);
    u16::from_le_bytes(buffer)
}

/// Copies `value` into `bytes` at `offset`; callers pass constant, in-bounds offsets.
pub(super) fn write_bytes<const N: usize>(bytes: &mut [u8; N], offset: usize, value: &[u8]) {
    bytes[offset..offset + value.len()].copy_from_slice(value);
}
#[cfg(test)]
mod tests {
    use crate::ledger::*;

    // Goal: the account layout puts every field at TigerBeetle's offset and round-trips.
    #[test]
    fn account_layout_round_trips_at_tigerbeetle_offsets() {
        let account = Account {
            id: 0x0102,
            debits_pending: 3,
            debits_posted: 4,
            credits_pending: 5,
            credits_posted: 6,
            user_data_128: 7,
            user_data_64: 8,
            user_data_32: 9,
            reserved: 10,
            ledger: 11,
            code: 12,
            flags: AccountFlags::HISTORY | AccountFlags::CLOSED,
            timestamp: 13,
        };
        let bytes = account.to_bytes();
        assert_eq!(bytes[0], 0x02);
        assert_eq!(bytes[1], 0x01);
        assert_eq!(bytes[16], 3);
        assert_eq!(bytes[64], 6);
        assert_eq!(bytes[96], 8);
        assert_eq!(bytes[104], 9);
        assert_eq!(bytes[108], 10);
        assert_eq!(bytes[112], 11);
        assert_eq!(bytes[116], 12);
        assert_eq!(u16::from_le_bytes([bytes[118], bytes[119]]), 0x28);
        assert_eq!(bytes[120], 13);
        assert_eq!(Account::from_bytes(&bytes), account);
    }

    // Goal: the transfer layout puts every field at TigerBeetle's offset and round-trips.
    #[test]
    fn transfer_layout_round_trips_at_tigerbeetle_offsets() {
        let transfer = Transfer {
            id: 1,
            debit_account_id: 2,
            credit_account_id: 3,
            amount: u128::MAX - 1,
            pending_id: 5,
            user_data_128: 6,
            user_data_64: 7,
            user_data_32: 8,
            timeout: 9,
            ledger: 10,
            code: 11,
            flags: TransferFlags::IMPORTED | TransferFlags::PENDING,
            timestamp: 12,
        };
        let bytes = transfer.to_bytes();
        assert_eq!(bytes[16], 2);
        assert_eq!(bytes[32], 3);
        assert_eq!(bytes[48], 0xFE);
        assert_eq!(bytes[64], 5);
        assert_eq!(bytes[108], 9);
        assert_eq!(bytes[112], 10);
        assert_eq!(bytes[116], 11);
        assert_eq!(u16::from_le_bytes([bytes[118], bytes[119]]), 0x102);
        assert_eq!(bytes[120], 12);
        assert_eq!(Transfer::from_bytes(&bytes), transfer);
    }

    // Goal: the filter and balance layouts match TigerBeetle's asserted offsets and round-trip.
    #[test]
    fn filter_and_balance_layouts_round_trip() {
        let mut account_filter = AccountFilter {
            account_id: 1,
            user_data_128: 2,
            user_data_64: 3,
            user_data_32: 4,
            code: 5,
            timestamp_min: 6,
            timestamp_max: 7,
            limit: 8,
            flags: AccountFilterFlags::DEBITS | AccountFilterFlags::REVERSED,
            ..AccountFilter::default()
        };
        account_filter.reserved[57] = 9;
        let bytes = account_filter.to_bytes();
        assert_eq!(
            (bytes[44], bytes[103], bytes[104], bytes[120], bytes[124]),
            (5, 9, 6, 8, 5)
        );
        assert_eq!(AccountFilter::from_bytes(&bytes), account_filter);

        let query_filter = QueryFilter {
            user_data_128: 1,
            user_data_64: 2,
            user_data_32: 3,
            ledger: 4,
            code: 5,
            reserved: [0, 0, 0, 0, 0, 6],
            timestamp_min: 7,
            timestamp_max: 8,
            limit: 9,
            flags: QueryFilterFlags::REVERSED,
        };
        let bytes = query_filter.to_bytes();
        assert_eq!(
            (
                bytes[28], bytes[32], bytes[39], bytes[40], bytes[56], bytes[60]
            ),
            (4, 5, 6, 7, 9, 1)
        );
        assert_eq!(QueryFilter::from_bytes(&bytes), query_filter);

        let balance = AccountBalance {
            debits_pending: 1,
            debits_posted: 2,
            credits_pending: 3,
            credits_posted: 4,
            timestamp: 5,
        };
        let bytes = balance.to_bytes();
        assert_eq!((bytes[48], bytes[64]), (4, 5));
        assert!(bytes[72..].iter().all(|byte| *byte == 0));
        assert_eq!(AccountBalance::from_bytes(&bytes), balance);
    }

    // Goal: flag bit values and padding masks are TigerBeetle's.
    #[test]
    fn flag_bits_match_tigerbeetle() {
        let account_bits = [
            AccountFlags::LINKED,
            AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
            AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
            AccountFlags::HISTORY,
            AccountFlags::IMPORTED,
            AccountFlags::CLOSED,
        ];
        let all = account_bits
            .iter()
            .fold(AccountFlags::empty(), |acc, flag| acc | *flag);
        assert_eq!(all.0, 0x003F);
        assert_eq!(all.0 | AccountFlags::PADDING.0, u16::MAX);
        assert_eq!(TransferFlags::CLOSING_CREDIT.0, 0x80);
        assert_eq!(TransferFlags::IMPORTED.0, 0x100);
        assert_eq!(TransferFlags::PADDING.0 & 0x01FF, 0);
        assert_eq!(TransferFlags::PADDING.0 | 0x01FF, u16::MAX);
        assert!(TransferFlags(0x3).contains(TransferFlags::PENDING));
        assert!(!TransferFlags::PENDING.contains(TransferFlags(0x3)));
        assert_eq!(AccountFilterFlags::PADDING.0, 0xFFFF_FFF8);
        assert_eq!(QueryFilterFlags::PADDING.0, 0xFFFF_FFFE);
    }

    // Goal: status values are TigerBeetle 0.17's and `from_u32` is the inverse of `as_u32`.
    #[test]
    fn status_values_round_trip() {
        assert_eq!(CreateAccountStatus::ALL.len(), 27);
        assert_eq!(CreateTransferStatus::ALL.len(), 68);
        for status in CreateAccountStatus::ALL {
            assert_eq!(
                CreateAccountStatus::from_u32(status.as_u32()),
                Some(*status)
            );
        }
        for status in CreateTransferStatus::ALL {
            assert_eq!(
                CreateTransferStatus::from_u32(status.as_u32()),
                Some(*status)
            );
        }
        assert_eq!(CreateAccountStatus::Created.as_u32(), 0xFFFF_FFFF);
        assert_eq!(CreateTransferStatus::IdAlreadyFailed.as_u32(), 68);
        assert_eq!(CreateTransferStatus::ExistsWithDifferentLedger.as_u32(), 67);
        assert_eq!(CreateTransferStatus::from_u32(0), None);
        assert_eq!(CreateTransferStatus::from_u32(18), None);
        assert_eq!(CreateAccountStatus::from_u32(27), None);
        let transient: Vec<u32> = CreateTransferStatus::ALL
            .iter()
            .filter(|status| status.is_transient())
            .map(|status| status.as_u32())
            .collect();
        assert_eq!(transient, vec![21, 22, 25, 65, 66, 54, 55]);
    }

    // Goal: the batch limit is the multi-batch event maximum of a 1 MiB message.
    #[test]
    fn batch_events_max_matches_message_size() {
        let message_body_size_max = 1024 * 1024 - 256;
        assert_eq!(BATCH_EVENTS_MAX, message_body_size_max / 128 - 1);
    }
}
