//! Snapshots of [`LedgerState`]: the cheap in-memory [`LedgerImage`], its versioned byte
//! format ([`LedgerState::write_image`]), and [`LedgerState::restore`], which rebuilds a
//! state from those bytes.
//!
//! An image holds the five primary stores: accounts, transfers, pending statuses, balance
//! history and burnt ids. It shares their full chunks and copies only each store's partially
//! filled last chunk (at most 8192 records), so it can be taken under a lock that blocks
//! writers. Later writes copy any full chunk that an image still holds (see `chunked`), so
//! the image stays frozen. The derived indexes are not part of an image; `restore` rebuilds
//! them: the id indexes, the per-account transfer lists, and the expiry queue.
//!
//! # Format, version 1
//!
//! All integers are little-endian and every field has a fixed width. The file is:
//!
//! | Bytes | Content |
//! |---|---|
//! | 8 | magic `SYNCPAYL` |
//! | 4 | format version, 1 |
//! | 4 | header size in bytes, 64 |
//! | 8 | account count `A` |
//! | 8 | transfer count `T` |
//! | 8 | history row count `H` |
//! | 8 | burnt id count `F` |
//! | 16 | reserved, zero |
//! | 128 × A | accounts in store (timestamp) order, TigerBeetle `Account` layout |
//! | 128 × T | transfers in slot (timestamp) order, TigerBeetle `Transfer` layout |
//! | T, padded with zeros to a multiple of 8 | pending status per slot: 0 none, 1 pending, 2 posted, 3 voided, 4 expired |
//! | 72 × H | history rows in slot order: slot u32, account position u32, then `debits_pending`, `debits_posted`, `credits_pending`, `credits_posted` as u128 |
//! | 16 × F | burnt ids (u128) in the order they were burnt |
//! | 8 | checksum (u64) of every preceding byte |
//!
//! The checksum runs four lanes over 8-byte words. Each step (XOR the word, multiply by an
//! odd constant, rotate) is a bijection of the lane, so changing any single word always
//! changes the result.
//!
//! [`LedgerState::restore`] never panics. It checks the header, the exact length, the checksum, every
//! status byte and padding byte, and rejects duplicate ids. It then rebuilds the indexes and
//! accepts the state only if [`LedgerState::check_invariants`] passes. Writing a restored
//! state's image again gives the same bytes, because no hash-table order enters the format.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, Write};

use super::links::AccountLinks;
use super::secondary::QueryIndex;
use super::{AccountRecord, HistoryRow, LedgerState, PendingStatus, Sizes, UndoLog, expiry_key};
use crate::ledger::chunked::ChunkedVec;
use crate::ledger::dedup::{FailedIds, IdIndex};
use crate::ledger::{Account, Transfer};

/// The first eight bytes of every image.
const MAGIC: [u8; 8] = *b"SYNCPAYL";

/// The only format version this code reads and writes.
const FORMAT_VERSION: u32 = 1;

/// The size of the header in bytes.
const HEADER_BYTES: usize = 64;

/// The size of one encoded history row.
const HISTORY_ROW_BYTES: usize = 72;

/// The size of the trailing checksum.
const CHECKSUM_BYTES: usize = 8;

/// Bytes gathered before each write to the output, so that writes are large.
const WRITE_CHUNK_BYTES: usize = 1 << 20;

/// A frozen snapshot of a ledger's primary stores; cheap to take, `Send` and `Sync`.
#[derive(Clone, Debug)]
pub struct LedgerImage {
    accounts: ChunkedVec<AccountRecord>,
    transfers: ChunkedVec<Transfer>,
    pending_statuses: ChunkedVec<PendingStatus>,
    history: ChunkedVec<HistoryRow>,
    failed_ids: ChunkedVec<u128>,
}

#[cfg_attr(not(feature = "internals"), allow(dead_code))] // Used by tests and benchmarks.
impl LedgerImage {
    /// Returns the number of accounts in the image.
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// Returns the number of transfer records in the image.
    pub fn transfer_count(&self) -> usize {
        self.transfers.len()
    }

    /// Returns the exact number of bytes [`LedgerState::write_image`] writes for this image.
    pub fn encoded_bytes(&self) -> u64 {
        let counts = Counts {
            accounts: self.accounts.len(),
            transfers: self.transfers.len(),
            history: self.history.len(),
            failed_ids: self.failed_ids.len(),
        };
        // An image in memory always fits: its stores alone are larger.
        counts.image_len().map_or(u64::MAX, |len| len as u64)
    }
}

/// Why [`LedgerState::restore`] rejected its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// The input is shorter than the header.
    Truncated,
    /// The input does not start with the image magic.
    BadMagic,
    /// The image has a format version this code does not read.
    UnsupportedVersion(u32),
    /// The header's size, counts or reserved bytes are invalid.
    BadHeader,
    /// The input length differs from the length the header's counts imply.
    LengthMismatch {
        /// The length the header implies, if it fits in a `u64`.
        expected: Option<u64>,
        /// The input length.
        actual: usize,
    },
    /// The checksum does not match the content.
    ChecksumMismatch,
    /// The content decodes but does not describe a consistent ledger.
    Inconsistent(String),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => write!(formatter, "image is shorter than its header"),
            Self::BadMagic => write!(formatter, "input is not a ledger image"),
            Self::UnsupportedVersion(version) => {
                write!(formatter, "unsupported image format version {version}")
            }
            Self::BadHeader => write!(formatter, "image header is invalid"),
            Self::LengthMismatch { expected, actual } => write!(
                formatter,
                "image length {actual} differs from the expected {expected:?}"
            ),
            Self::ChecksumMismatch => write!(formatter, "image checksum mismatch"),
            Self::Inconsistent(reason) => write!(formatter, "inconsistent image: {reason}"),
        }
    }
}

impl std::error::Error for RestoreError {}

/// Odd multipliers for the checksum lanes (well-known 64-bit mixing constants).
const CHECKSUM_MULTIPLIERS: [u64; 4] = [
    0x9E37_79B9_7F4A_7C15,
    0xBF58_476D_1CE4_E5B9,
    0x94D0_49BB_1331_11EB,
    0xD6E8_FEB8_6659_FD93,
];

/// A streaming checksum over bytes: four lanes of bijective multiply-rotate steps over
/// 8-byte words, so any one changed word changes the result.
struct Checksum {
    lanes: [u64; 4],
    pending: [u8; 32],
    pending_len: usize,
    total_len: u64,
}

impl Checksum {
    fn new() -> Self {
        Self {
            lanes: [1, 2, 3, 4],
            pending: [0; 32],
            pending_len: 0,
            total_len: 0,
        }
    }

    /// One step of every lane over a 32-byte block.
    #[inline]
    fn absorb(&mut self, block: &[u8]) {
        for (lane, (word, multiplier)) in self
            .lanes
            .iter_mut()
            .zip(block.chunks_exact(8).zip(CHECKSUM_MULTIPLIERS))
        {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            *lane = (*lane ^ u64::from_le_bytes(bytes))
                .wrapping_mul(multiplier)
                .rotate_left(29);
        }
    }

    fn update(&mut self, mut bytes: &[u8]) {
        self.total_len += bytes.len() as u64;
        if self.pending_len > 0 {
            let take = (32 - self.pending_len).min(bytes.len());
            let (head, rest) = bytes.split_at(take);
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(head);
            self.pending_len += take;
            bytes = rest;
            if self.pending_len < 32 {
                return;
            }
            let block = self.pending;
            self.absorb(&block);
            self.pending_len = 0;
        }
        let mut blocks = bytes.chunks_exact(32);
        for block in &mut blocks {
            self.absorb(block);
        }
        let rest = blocks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    fn finish(mut self) -> u64 {
        if self.pending_len > 0 {
            let mut block = [0u8; 32];
            block[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
            self.absorb(&block);
        }
        let mut hash = self.total_len;
        for lane in self.lanes {
            hash = (hash ^ lane)
                .wrapping_mul(CHECKSUM_MULTIPLIERS[0])
                .rotate_left(31);
        }
        hash ^ (hash >> 32)
    }
}

/// Returns the checksum of `bytes`.
fn checksum_of(bytes: &[u8]) -> u64 {
    let mut checksum = Checksum::new();
    checksum.update(bytes);
    checksum.finish()
}

/// Buffers encoded bytes and writes them out in large chunks, checksumming as it goes.
struct ImageWriter<'a> {
    out: &'a mut dyn Write,
    buffer: Vec<u8>,
    checksum: Checksum,
}

impl ImageWriter<'_> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= WRITE_CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.checksum.update(&self.buffer);
        self.out.write_all(&self.buffer)?;
        self.buffer.clear();
        Ok(())
    }
}

impl LedgerState {
    /// Writes `image` in the versioned, little-endian, fixed-width format described in the
    /// `image` module, buffering about 1 MiB per write to `out`.
    pub fn write_image(image: &LedgerImage, out: &mut dyn Write) -> io::Result<()> {
        write_image(image, out)
    }

    /// Rebuilds a ledger from bytes written by [`LedgerState::write_image`], including its
    /// derived indexes. Never panics: any other input gives an `Err`, or a state that passes
    /// [`LedgerState::check_invariants`]. The restored ledger gives the same results as the
    /// one imaged, and writes the same image bytes.
    #[cfg(any(test, feature = "internals"))]
    pub fn restore(bytes: &[u8]) -> Result<LedgerState, RestoreError> {
        restore(bytes, 0, super::Sizes::PRODUCTION)
    }

    /// [`LedgerState::restore`] into structures of `sizes` (random walks restore into the
    /// sizes they run with).
    #[cfg(any(test, feature = "internals"))]
    pub fn restore_with_sizes(
        bytes: &[u8],
        sizes: super::Sizes,
    ) -> Result<LedgerState, RestoreError> {
        restore(bytes, 0, sizes)
    }

    /// [`LedgerState::restore`] with the transfer index sized, once, also for the
    /// transfers of `log_bytes` of log about to be replayed (see
    /// [`LedgerState::reserve_for_replay`]).
    pub fn restore_for_replay(bytes: &[u8], log_bytes: u64) -> Result<LedgerState, RestoreError> {
        restore(
            bytes,
            super::events_max(log_bytes),
            super::Sizes::PRODUCTION,
        )
    }

    /// Returns a frozen snapshot of the primary stores. It shares every full chunk and copies
    /// only the partially filled last chunk of each store, so it costs
    /// O(transfers / CHUNK_LEN + CHUNK_LEN) whatever the ledger's size.
    pub fn image(&self) -> LedgerImage {
        LedgerImage {
            accounts: self.accounts.clone(),
            transfers: self.transfers.clone(),
            pending_statuses: self.pending_statuses.clone(),
            history: self.history.clone(),
            failed_ids: self.failed_ids.log().clone(),
        }
    }
}

/// Writes `image` in the version-1 format (see the module documentation), in chunks of
/// about 1 MiB.
fn write_image(image: &LedgerImage, out: &mut dyn Write) -> io::Result<()> {
    let mut writer = ImageWriter {
        out,
        buffer: Vec::with_capacity(WRITE_CHUNK_BYTES + 256),
        checksum: Checksum::new(),
    };
    writer.put(&encode_header(image))?;
    for account in image.accounts.iter() {
        writer.put(&account.to_bytes())?;
    }
    for transfer in image.transfers.iter() {
        writer.put(&transfer.to_bytes())?;
    }
    for chunk in image.pending_statuses.chunks() {
        let bytes: Vec<u8> = chunk.iter().map(|status| *status as u8).collect();
        writer.put(&bytes)?;
    }
    let padding = image.transfers.len().next_multiple_of(8) - image.transfers.len();
    writer.put(&[0u8; 8][..padding])?;
    for row in image.history.iter() {
        writer.put(&encode_history_row(row))?;
    }
    for id in image.failed_ids.iter() {
        writer.put(&id.to_le_bytes())?;
    }
    writer.flush()?;
    let checksum = writer.checksum.finish();
    writer.out.write_all(&checksum.to_le_bytes())
}

fn encode_header(image: &LedgerImage) -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[0..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
    let counts = [
        image.accounts.len(),
        image.transfers.len(),
        image.history.len(),
        image.failed_ids.len(),
    ];
    for (index, count) in counts.into_iter().enumerate() {
        let offset = 16 + 8 * index;
        header[offset..offset + 8].copy_from_slice(&(count as u64).to_le_bytes());
    }
    header
}

fn encode_history_row(row: &HistoryRow) -> [u8; HISTORY_ROW_BYTES] {
    let mut bytes = [0u8; HISTORY_ROW_BYTES];
    bytes[0..4].copy_from_slice(&row.slot.to_le_bytes());
    bytes[4..8].copy_from_slice(&row.account.to_le_bytes());
    for (index, balance) in row.balances.iter().enumerate() {
        let offset = 8 + 16 * index;
        bytes[offset..offset + 16].copy_from_slice(&balance.to_le_bytes());
    }
    bytes
}

/// Reads a little-endian integer of `N` bytes at `offset`, if in bounds.
fn read_array<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    bytes.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

/// The section lengths the header announces.
struct Counts {
    accounts: usize,
    transfers: usize,
    history: usize,
    failed_ids: usize,
}

impl Counts {
    /// Returns the exact image length these counts imply, if it fits in a `usize`.
    fn image_len(&self) -> Option<usize> {
        let sections = [
            self.accounts.checked_mul(128)?,
            self.transfers.checked_mul(128)?,
            self.transfers.checked_next_multiple_of(8)?,
            self.history.checked_mul(HISTORY_ROW_BYTES)?,
            self.failed_ids.checked_mul(16)?,
        ];
        sections
            .into_iter()
            .try_fold(HEADER_BYTES + CHECKSUM_BYTES, usize::checked_add)
    }
}

/// Validates the header and returns its counts.
fn parse_header(bytes: &[u8]) -> Result<Counts, RestoreError> {
    let header = bytes.get(..HEADER_BYTES).ok_or(RestoreError::Truncated)?;
    if header[0..8] != MAGIC {
        return Err(RestoreError::BadMagic);
    }
    let version = read_array::<4>(header, 8).map(u32::from_le_bytes);
    if version != Some(FORMAT_VERSION) {
        return Err(RestoreError::UnsupportedVersion(version.unwrap_or(0)));
    }
    let header_bytes = read_array::<4>(header, 12).map(u32::from_le_bytes);
    if header_bytes != Some(HEADER_BYTES as u32) || header[48..64].iter().any(|b| *b != 0) {
        return Err(RestoreError::BadHeader);
    }
    let count = |index: usize| -> Result<usize, RestoreError> {
        let value = read_array::<8>(header, 16 + 8 * index).map(u64::from_le_bytes);
        value
            .and_then(|value| usize::try_from(value).ok())
            .ok_or(RestoreError::BadHeader)
    };
    let counts = Counts {
        accounts: count(0)?,
        transfers: count(1)?,
        history: count(2)?,
        failed_ids: count(3)?,
    };
    // Positions are u32 in memory; every transfer has at most two history rows.
    let slots_max = u32::MAX as usize;
    if counts.accounts > slots_max
        || counts.transfers > slots_max
        || counts.history > counts.transfers.saturating_mul(2)
    {
        return Err(RestoreError::BadHeader);
    }
    Ok(counts)
}

/// Rebuilds a ledger from an image's bytes (see [`LedgerState::restore`]), with room in
/// the transfer index for `spare_transfers` more.
fn restore(
    bytes: &[u8],
    spare_transfers: usize,
    sizes: super::Sizes,
) -> Result<LedgerState, RestoreError> {
    let counts = parse_header(bytes)?;
    let expected = counts.image_len();
    if expected != Some(bytes.len()) {
        return Err(RestoreError::LengthMismatch {
            expected: expected.map(|len| len as u64),
            actual: bytes.len(),
        });
    }
    let (content, trailer) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
    let stored_checksum = read_array::<8>(trailer, 0).map(u64::from_le_bytes);
    if stored_checksum != Some(checksum_of(content)) {
        return Err(RestoreError::ChecksumMismatch);
    }
    let mut sections = Sections {
        bytes: content,
        offset: HEADER_BYTES,
        chunk_shift: sizes.chunk_shift,
    };
    let accounts = sections.records(counts.accounts, 128, |r| {
        read_array(r, 0).map(|a| AccountRecord(Account::from_bytes(&a)))
    })?;
    let transfers = sections.records(counts.transfers, 128, |r| {
        read_array(r, 0).map(|t| Transfer::from_bytes(&t))
    })?;
    let pending_statuses = sections.records(counts.transfers, 1, |r| {
        r.first().and_then(|byte| PendingStatus::from_u8(*byte))
    })?;
    let padding = counts.transfers.next_multiple_of(8) - counts.transfers;
    sections.records(padding, 1, |r| (r.first() == Some(&0)).then_some(()))?;
    let history = sections.records(counts.history, HISTORY_ROW_BYTES, decode_history_row)?;
    let failed_ids = sections.records(counts.failed_ids, 16, |r| {
        read_array(r, 0).map(u128::from_le_bytes)
    })?;
    let failed_ids = FailedIds::from_log(failed_ids)
        .map_err(|id| RestoreError::Inconsistent(format!("burnt id {id} is listed twice")))?;
    let image = LedgerImage {
        accounts,
        transfers,
        pending_statuses,
        history,
        failed_ids: ChunkedVec::new(),
    };
    LedgerState::from_image_parts(image, failed_ids, spare_transfers, sizes)
}

/// A cursor over the sections of an image whose length was already validated.
struct Sections<'a> {
    bytes: &'a [u8],
    offset: usize,
    chunk_shift: u32,
}

impl Sections<'_> {
    /// Decodes `count` fixed-width records; a record that `decode` rejects is an error.
    fn records<T: Clone>(
        &mut self,
        count: usize,
        width: usize,
        decode: impl Fn(&[u8]) -> Option<T>,
    ) -> Result<ChunkedVec<T>, RestoreError> {
        let len = count.checked_mul(width).ok_or(RestoreError::BadHeader)?;
        let end = self
            .offset
            .checked_add(len)
            .ok_or(RestoreError::BadHeader)?;
        let section = self
            .bytes
            .get(self.offset..end)
            .ok_or(RestoreError::Truncated)?;
        self.offset = end;
        let mut records = ChunkedVec::with_chunk_shift(self.chunk_shift);
        for (index, record) in section.chunks_exact(width.max(1)).enumerate() {
            let value = decode(record).ok_or_else(|| {
                RestoreError::Inconsistent(format!("record {index} of a section is invalid"))
            })?;
            records.push(value);
        }
        Ok(records)
    }
}

fn decode_history_row(bytes: &[u8]) -> Option<HistoryRow> {
    let balance = |index: usize| read_array(bytes, 8 + 16 * index).map(u128::from_le_bytes);
    Some(HistoryRow {
        slot: read_array(bytes, 0).map(u32::from_le_bytes)?,
        account: read_array(bytes, 4).map(u32::from_le_bytes)?,
        balances: [balance(0)?, balance(1)?, balance(2)?, balance(3)?],
    })
}

impl LedgerState {
    /// Builds a state from decoded stores: rebuilds the id indexes, the per-account transfer
    /// lists and the expiry queue, then checks every invariant.
    fn from_image_parts(
        image: LedgerImage,
        failed_ids: FailedIds,
        spare_transfers: usize,
        sizes: Sizes,
    ) -> Result<Self, RestoreError> {
        let duplicate = |kind: &str, id: u128| {
            RestoreError::Inconsistent(format!("{kind} id {id} is stored twice"))
        };
        let mut account_index = IdIndex::with_capacity(image.accounts.len());
        for (position, account) in image.accounts.iter().enumerate() {
            if account_index.insert(account.id, position as u32).is_some() {
                return Err(duplicate("account", account.id));
            }
        }
        // The transfer id index is the costliest part and independent of the rest: it is
        // built on a second thread while this one builds the account lists, the expiry
        // queue and the query indexes. Nothing depends on which thread does what.
        let (indexes, derived) = std::thread::scope(|scope| {
            let worker = std::thread::Builder::new()
                .name("syncpay-restore".into())
                .spawn_scoped(scope, || build_indexes(&image, spare_transfers));
            let derived = build_derived(&image, &account_index, sizes.unindexed_min);
            let indexes = match worker {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                // No thread to be had: build them here.
                Err(_) => build_indexes(&image, spare_transfers),
            };
            (indexes, derived)
        });
        let (transfer_index, transfer_query, account_query) =
            indexes.map_err(|id| duplicate("transfer", id))?;
        let (links, expiry_queue) = derived?;
        let state = Self {
            accounts: image.accounts,
            account_index,
            links,
            transfers: image.transfers,
            transfer_index,
            pending_statuses: image.pending_statuses,
            history: image.history,
            expiry_queue,
            failed_ids,
            undo: UndoLog::default(),
            transfer_query,
            account_query,
            parallel_check_min: sizes.parallel_check_min,
        };
        // The id indexes were just built from the stores with duplicates rejected, so they
        // agree with the stores by construction; everything else is checked.
        state
            .check_invariants_with(false)
            .map_err(RestoreError::Inconsistent)?;
        Ok(state)
    }
}

/// The transfer id index of `transfers` (with room for `spare` more), or the first id
/// stored twice.
fn build_transfer_index(
    transfers: &ChunkedVec<Transfer>,
    spare: usize,
) -> Result<IdIndex<u32>, u128> {
    let mut transfer_index = IdIndex::with_capacity(transfers.len().saturating_add(spare));
    let mut slot = 0u32;
    for chunk in transfers.chunks() {
        // Warm a group's buckets before inserting it, so that the misses overlap.
        for group in chunk.chunks(super::WARM_GROUP_LEN) {
            let warmed = group
                .iter()
                .fold(0, |value, t| value ^ transfer_index.warm(t.id));
            std::hint::black_box(warmed);
            for transfer in group {
                if transfer_index.insert(transfer.id, slot).is_some() {
                    return Err(transfer.id);
                }
                slot += 1;
            }
        }
    }
    Ok(transfer_index)
}

/// The transfer id index and the query indexes of transfers and accounts, or the first
/// transfer id stored twice.
fn build_indexes(
    image: &LedgerImage,
    spare_transfers: usize,
) -> Result<(IdIndex<u32>, QueryIndex, QueryIndex), u128> {
    let transfer_index = build_transfer_index(&image.transfers, spare_transfers)?;
    let mut transfer_query = QueryIndex::default();
    transfer_query.catch_up_transfers(&image.transfers);
    let mut account_query = QueryIndex::default();
    account_query.catch_up_accounts(&image.accounts);
    Ok((transfer_index, transfer_query, account_query))
}

/// The account transfer lists and the expiry queue.
type Derived = (AccountLinks, BTreeSet<super::ExpiryKey>);

/// Builds the [`Derived`] structures of an image.
fn build_derived(
    image: &LedgerImage,
    account_index: &IdIndex<u32>,
    unindexed_min: usize,
) -> Result<Derived, RestoreError> {
    let links = AccountLinks::build(
        image.accounts.len(),
        transfer_sides(image, account_index)?,
        unindexed_min,
    );
    let mut expiry_queue = BTreeSet::new();
    for (slot, (transfer, status)) in image
        .transfers
        .iter()
        .zip(image.pending_statuses.iter())
        .enumerate()
    {
        if *status == PendingStatus::Pending {
            expiry_queue.extend(expiry_key(slot as u32, transfer));
        }
    }
    Ok((links, expiry_queue))
}

/// Returns every transfer's (debit, credit) account positions, in slot order.
fn transfer_sides(
    image: &LedgerImage,
    account_index: &IdIndex<u32>,
) -> Result<Vec<[u32; 2]>, RestoreError> {
    let position_of = |id: u128| {
        account_index
            .get(id)
            .ok_or_else(|| RestoreError::Inconsistent(format!("account {id} is missing")))
    };
    image
        .transfers
        .iter()
        .map(|t| {
            Ok([
                position_of(t.debit_account_id)?,
                position_of(t.credit_account_id)?,
            ])
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers for tests that need to forge images.

    use super::{CHECKSUM_BYTES, checksum_of};

    /// Recomputes the trailing checksum of a (modified) image in place.
    pub(crate) fn reseal(bytes: &mut [u8]) {
        if bytes.len() < CHECKSUM_BYTES {
            return;
        }
        let split = bytes.len() - CHECKSUM_BYTES;
        let checksum = checksum_of(&bytes[..split]);
        bytes[split..].copy_from_slice(&checksum.to_le_bytes());
    }
}
