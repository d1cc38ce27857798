//! Segment files: naming, the segment header, and the in-memory description
//! of a live segment.
//!
//! A segment is a preallocated, zero-filled file named `<index>.wal` (20
//! decimal digits). Its first sector holds the segment header (64 bytes,
//! the rest of the sector zero), written together with the segment's first
//! records (or alone, by a suffix truncation); frames follow from
//! `first_frame_offset`, which is 512 plus the offset, modulo 512, at which
//! the first frame sits in its submission (see `record.rs`: stamps sit at
//! file sector boundaries).
//!
//! ```text
//! offset  size  field
//!      0     8  magic "SYNCPAYW"
//!      8     4  format_version (2)
//!     12     4  header_crc: CRC32 of bytes 0..12 and 16..64
//!     16     8  segment_index (equals the number in the file name)
//!     24     8  base_lsn: LSN of the segment's first record
//!     32     8  segment_size_bytes (equals the file length)
//!     40     8  log_id: the log this segment belongs to (from the manifest)
//!     48     4  first_frame_offset: where the first frame starts
//!     52    12  reserved, zero
//! ```
//!
//! A segment whose `base_lsn` is not greater than the end of the segments
//! before it *supersedes* their records from `base_lsn` on: this is how a
//! suffix truncation becomes durable with one atomic (one-sector) header
//! write.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::sync::atomic::{AtomicU64, Ordering};

use super::manifest::ManifestFile;
use super::{Lsn, WalError};
use crate::storage::header::{intact_version, put_u32, put_u64, seal, u32_at, u64_at};
use crate::storage::io::{File, Io, OpenMode};

/// A sparse-index entry is added at least every this many bytes.
pub(super) const SPARSE_INTERVAL_BYTES: u64 = 64 << 10;

/// Zeros written (and synced) at a time when preparing a segment.
const ZERO_FILL_CHUNK_BYTES: u64 = 8 << 20;

/// A preallocated, never-used segment: (index, file, length).
pub(super) type Spare = (u64, Arc<dyn File>, u64);

/// Size of the segment header.
pub const SEGMENT_HEADER_SIZE_BYTES: usize = 64;
/// Frames start at or after this offset: the header has a sector to itself.
pub const SEGMENT_RECORDS_START_BYTES: u64 = crate::storage::io::SECTOR_SIZE_BYTES;
/// Magic bytes opening every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SYNCPAYW";
/// The segment format this code writes and reads. Version 1 (no sector
/// stamps, no manifest) is refused with a clear error.
pub const SEGMENT_FORMAT_VERSION: u32 = 2;

const _: () = assert!(SEGMENT_HEADER_SIZE_BYTES as u64 <= SEGMENT_RECORDS_START_BYTES);
const _: () =
    assert!(SEGMENT_RECORDS_START_BYTES.is_multiple_of(super::record::RECORD_ALIGN_BYTES as u64));

/// A decoded segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The segment's index (its file name).
    pub index: u64,
    /// LSN of its first record.
    pub base_lsn: Lsn,
    /// The size the segment was preallocated to.
    pub segment_size_bytes: u64,
    /// The log it belongs to.
    pub log_id: u64,
    /// Offset of the first frame (at least [`SEGMENT_RECORDS_START_BYTES`],
    /// less than one sector beyond it, a multiple of 32).
    pub first_frame_offset: u32,
}

/// What the first 64 bytes of a segment hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentHeaderSlot {
    /// All zero: a preallocated segment that was never used.
    Zero,
    /// A valid header.
    Valid(SegmentHeader),
    /// The magic of a segment, but another format version.
    Version(u32),
    /// Anything else.
    Invalid,
}

impl SegmentHeader {
    /// Encodes the header into 64 bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_SIZE_BYTES] {
        assert!(self.first_frame_offset_is_valid(), "{self:?}");
        let mut bytes = [0u8; SEGMENT_HEADER_SIZE_BYTES];
        put_u64(&mut bytes, 16, self.index);
        put_u64(&mut bytes, 24, self.base_lsn);
        put_u64(&mut bytes, 32, self.segment_size_bytes);
        put_u64(&mut bytes, 40, self.log_id);
        put_u32(&mut bytes, 48, self.first_frame_offset);
        seal(&mut bytes, &SEGMENT_MAGIC, SEGMENT_FORMAT_VERSION);
        debug_assert_eq!(
            decode_segment_header(&bytes),
            SegmentHeaderSlot::Valid(*self)
        );
        bytes
    }

    /// True if `first_frame_offset` is where a first frame may start.
    pub fn first_frame_offset_is_valid(&self) -> bool {
        let offset = u64::from(self.first_frame_offset);
        (SEGMENT_RECORDS_START_BYTES..2 * SEGMENT_RECORDS_START_BYTES).contains(&offset)
            && offset.is_multiple_of(super::record::RECORD_ALIGN_BYTES as u64)
    }
}

/// Classifies the first bytes of a segment file (at least 64 bytes).
pub fn decode_segment_header(bytes: &[u8]) -> SegmentHeaderSlot {
    let Some(bytes) = bytes.get(..SEGMENT_HEADER_SIZE_BYTES) else {
        return SegmentHeaderSlot::Invalid;
    };
    if bytes.iter().all(|&b| b == 0) {
        return SegmentHeaderSlot::Zero;
    }
    let u32_at = |o: usize| u32_at(bytes, o);
    let u64_at = |o: usize| u64_at(bytes, o);
    // Another version only if the header is otherwise intact (format 1
    // computed its checksum over the same bytes): a flipped version bit is
    // damage, not a foreign format.
    let version = intact_version(bytes, &SEGMENT_MAGIC);
    if let Some(version) = version
        && version != SEGMENT_FORMAT_VERSION
    {
        return SegmentHeaderSlot::Version(version);
    }
    let valid = version.is_some() && bytes[52..].iter().all(|&b| b == 0);
    if !valid {
        return SegmentHeaderSlot::Invalid;
    }
    let header = SegmentHeader {
        index: u64_at(16),
        base_lsn: u64_at(24),
        segment_size_bytes: u64_at(32),
        log_id: u64_at(40),
        first_frame_offset: u32_at(48),
    };
    if !header.first_frame_offset_is_valid() {
        return SegmentHeaderSlot::Invalid;
    }
    SegmentHeaderSlot::Valid(header)
}

/// The file name of segment `index`.
pub fn segment_file_name(index: u64) -> String {
    format!("{index:020}.wal")
}

/// The name a segment has while it is being preallocated.
pub fn segment_temp_name(index: u64) -> String {
    format!("{index:020}.wal.tmp")
}

/// What a directory entry of the log directory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A segment with this index.
    Segment(u64),
    /// A segment left half-prepared by a crash.
    Temp(u64),
    /// Something else (left alone).
    Other,
}

/// Parses a directory entry name.
pub fn parse_entry_name(name: &str) -> EntryKind {
    let parse = |digits: &str| {
        (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse::<u64>().ok())
            .flatten()
    };
    if let Some(digits) = name.strip_suffix(".wal.tmp") {
        return parse(digits).map_or(EntryKind::Other, EntryKind::Temp);
    }
    if let Some(digits) = name.strip_suffix(".wal") {
        return parse(digits).map_or(EntryKind::Other, EntryKind::Segment);
    }
    EntryKind::Other
}

/// The path of segment `index` under `dir`.
pub fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(segment_file_name(index))
}

/// A live segment as the writer and readers see it.
#[derive(Clone, Debug)]
pub struct Segment {
    /// Index from the file name.
    pub index: u64,
    /// Path of the file.
    pub path: PathBuf,
    /// Open handle (shared with readers).
    pub file: Arc<dyn File>,
    /// LSN of the first readable record (the header's base LSN, or later
    /// if recovery skipped damage the caller does not need).
    pub base_lsn: Lsn,
    /// Offset of the frame of `base_lsn`.
    pub first_frame_offset: u64,
    /// One past the last live, durable record.
    pub end_lsn: Lsn,
    /// Byte offset one past the last live, durable frame.
    pub end_offset: u64,
    /// Size of the file.
    pub size_bytes: u64,
    /// Sparse index: (lsn, offset of its frame), ascending, first entry at
    /// the first record.
    pub sparse: Vec<(Lsn, u64)>,
}

impl Segment {
    /// The offset of the nearest indexed frame at or before `lsn`.
    pub fn seek_hint(&self, lsn: Lsn) -> (Lsn, u64) {
        let position = self.sparse.partition_point(|&(l, _)| l <= lsn);
        if position == 0 {
            (self.base_lsn, self.first_frame_offset)
        } else {
            self.sparse[position - 1]
        }
    }
}

fn zero_fill(file: &dyn File, path: &Path, size_bytes: u64) -> Result<(), WalError> {
    let mut length = file.len().map_err(|e| WalError::io("stat", path, e))?;
    while length < size_bytes {
        let target = (length + ZERO_FILL_CHUNK_BYTES).min(size_bytes);
        file.preallocate(target)
            .map_err(|e| WalError::io("preallocate", path, e))?;
        file.sync_data()
            .map_err(|e| WalError::io("sync_data", path, e))?;
        length = target;
    }
    Ok(())
}

/// Creates segment `index` durably: temporary name, zero-fill to
/// `size_bytes` (synced), rename, directory `fsync`, and finally lists it
/// in the manifest (only a listed segment may receive records).
pub(super) fn prepare_segment(
    io: &dyn Io,
    dir: &Path,
    index: u64,
    size_bytes: u64,
    manifest: &parking_lot::Mutex<ManifestFile>,
    durable_next_lsn: Option<&AtomicU64>,
) -> Result<Arc<dyn File>, WalError> {
    let temp = dir.join(segment_temp_name(index));
    let path = segment_path(dir, index);
    if io
        .exists(&temp)
        .map_err(|e| WalError::io("stat", &temp, e))?
    {
        io.remove_file(&temp)
            .map_err(|e| WalError::io("remove", &temp, e))?;
    }
    let file = io
        .open(&temp, OpenMode::CreateNew)
        .map_err(|e| WalError::io("create", &temp, e))?;
    let result = zero_fill(file.as_ref(), &temp, size_bytes)
        .and_then(|()| {
            io.rename(&temp, &path)
                .map_err(|e| WalError::io("rename", &temp, e))
        })
        .and_then(|()| {
            io.sync_dir(dir)
                .map_err(|e| WalError::io("sync_dir", dir, e))
        });
    if let Err(error) = result {
        // Best effort: a leftover temporary file is removed at the next open.
        let _ = io.remove_file(&temp);
        return Err(error);
    }
    // A segment renamed but not listed is never used, so recovery may
    // remove it; so list it before handing it out.
    // The same update raises the mark to the durable end: after a crash,
    // a log ending before it has lost records, whatever its bytes say.
    let mut manifest = manifest.lock();
    let durable = durable_next_lsn.map(|lsn| lsn.load(Ordering::SeqCst));
    manifest.update(|m| {
        m.last_index = m.last_index.max(index);
        if let Some(durable) = durable {
            m.acked_lsn = m.acked_lsn.max(durable);
        }
    })?;
    Ok(Arc::from(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_names() {
        let header = SegmentHeader {
            index: 7,
            base_lsn: 1234,
            segment_size_bytes: 1 << 20,
            log_id: 99,
            first_frame_offset: 544,
        };
        let bytes = header.encode();
        assert_eq!(
            decode_segment_header(&bytes),
            SegmentHeaderSlot::Valid(header)
        );
        for bit in 0..SEGMENT_HEADER_SIZE_BYTES * 8 {
            let mut copy = bytes;
            copy[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                decode_segment_header(&copy),
                SegmentHeaderSlot::Invalid,
                "bit {bit}"
            );
        }
        assert_eq!(decode_segment_header(&[0; 64]), SegmentHeaderSlot::Zero);
        assert_eq!(
            parse_entry_name(&segment_file_name(7)),
            EntryKind::Segment(7)
        );
        assert_eq!(parse_entry_name(&segment_temp_name(9)), EntryKind::Temp(9));
        assert_eq!(parse_entry_name("LOCK"), EntryKind::Other);
        assert_eq!(parse_entry_name("12.wal"), EntryKind::Other);
    }
}
