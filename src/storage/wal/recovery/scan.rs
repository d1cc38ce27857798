//! Scanning one segment: every frame from the first one on is checked, and
//! the scan says where the records end and why, which damage it met on the
//! way, and where intact records resume after each damage.
//!
//! The scan itself decides only facts that the bytes prove:
//! - a zero slot at a sector boundary followed by zeros only: the end;
//! - a zero slot inside a sector followed by zeros up to the boundary: the
//!   padding that ends a submission (the next one starts at the boundary);
//! - a frame with a valid header whose body fails verification, one of
//!   whose sectors (beyond the header's) is entirely zero, followed by
//!   zeros only: a *torn* frame (its write never completed);
//! - anything else that is not the next valid frame: damage. Intact
//!   records resume after a damaged frame with a valid header (its length
//!   is known), or at the next valid frame a slot-by-slot search finds.
//!
//! Whether a torn frame may be dropped, and whether damage blocks the open,
//! is decided by the caller (`recovery/mod.rs`), which knows the manifest
//! and which records are needed.

use super::Damage;
use crate::storage::wal::record::{
    self, BodyFault, HeaderSlot, RECORD_HEADER_SIZE_BYTES, SECTOR_BYTES,
};
use crate::storage::wal::{CorruptReason, Lsn};
use std::path::Path;

use crate::storage::wal::segment::SPARSE_INTERVAL_BYTES;

/// What to scan.
pub(super) struct ScanInput<'a> {
    pub path: &'a Path,
    /// The segment's bytes (a map or a zero-extended copy).
    pub bytes: &'a [u8],
    pub base_lsn: Lsn,
    pub first_frame_offset: u64,
    /// The LSN where the next live segment starts, if any.
    pub cap_lsn: Option<Lsn>,
}

/// Why a scan stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// Reached the LSN where the next live segment starts.
    Cap,
    /// No further record: zeros only from here, or no room for a header.
    End,
    /// A torn frame at `offset`: non-zero bytes end at `nonzero_end`;
    /// `reason` is what verification said (damage if it may not be torn).
    Torn {
        offset: u64,
        nonzero_end: u64,
        reason: CorruptReason,
    },
    /// Damage after which no intact record was found in this segment.
    Broken,
}

/// A damage with the file offset where records resume after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Fault {
    pub damage: Damage,
    /// Offset of the frame of `damage.resume_lsn` in the same segment, if
    /// records resume inside it (otherwise at the next segment, or never).
    pub resume_offset: Option<u64>,
}

/// What a scan found.
#[derive(Debug)]
pub(super) struct Scanned {
    /// One past the last intact record.
    pub end_lsn: Lsn,
    /// Offset one past the last intact frame (where the next would go).
    pub end_offset: u64,
    /// Sparse index over the intact records: (lsn, offset).
    pub sparse: Vec<(Lsn, u64)>,
    pub stop: Stop,
    pub faults: Vec<Fault>,
    /// Rot in bytes that hold no record (the zero padding before the cap):
    /// reported, never blocking.
    pub harmless: Vec<Damage>,
    /// Intact records found.
    pub records: u64,
}

/// Scans a segment from its first frame.
pub(super) fn scan(input: &ScanInput<'_>) -> Scanned {
    let bytes = input.bytes;
    let len = bytes.len() as u64;
    let mut position = input.first_frame_offset;
    let mut lsn = input.base_lsn;
    let mut scanned = Scanned {
        end_lsn: lsn,
        end_offset: position,
        sparse: Vec::new(),
        stop: Stop::End,
        faults: Vec::new(),
        harmless: Vec::new(),
        records: 0,
    };
    let damage = |offset: u64, lsn: Lsn, reason: CorruptReason| Damage {
        path: input.path.to_path_buf(),
        offset,
        lsn,
        resume_lsn: None,
        reason,
    };
    loop {
        if input.cap_lsn == Some(lsn) {
            scanned.stop = Stop::Cap;
            check_padding_before_cap(input, position, lsn, &mut scanned);
            break;
        }
        match check_slot(bytes, position, lsn) {
            Slot::Record(size) => {
                if scanned
                    .sparse
                    .last()
                    .is_none_or(|&(_, offset)| position - offset >= SPARSE_INTERVAL_BYTES)
                {
                    scanned.sparse.push((lsn, position));
                }
                position += size;
                lsn += 1;
                scanned.records += 1;
                scanned.end_lsn = lsn;
                scanned.end_offset = position;
            }
            Slot::Padding(boundary) => position = boundary,
            Slot::End => {
                scanned.stop = Stop::End;
                break;
            }
            Slot::Torn {
                nonzero_end,
                reason,
            } => {
                scanned.stop = Stop::Torn {
                    offset: position,
                    nonzero_end,
                    reason,
                };
                break;
            }
            Slot::Skip { size, reason } => {
                // The frame's extent is known: records resume right after it.
                let mut fault = damage(position, lsn, reason);
                fault.resume_lsn = Some(lsn + 1);
                scanned.faults.push(Fault {
                    damage: fault,
                    resume_offset: Some(position + size),
                });
                position += size;
                lsn += 1;
                scanned.end_lsn = lsn;
                scanned.end_offset = position;
            }
            Slot::Lost {
                reason,
                search_from,
            } => {
                let mut fault = damage(position, lsn, reason);
                match resync(bytes, search_from, lsn, input.cap_lsn) {
                    Some((found_lsn, found_offset)) => {
                        fault.resume_lsn = Some(found_lsn);
                        scanned.faults.push(Fault {
                            damage: fault,
                            resume_offset: Some(found_offset),
                        });
                        position = found_offset;
                        lsn = found_lsn;
                        scanned.end_lsn = lsn;
                        scanned.end_offset = position;
                    }
                    None => {
                        scanned.faults.push(Fault {
                            damage: fault,
                            resume_offset: None,
                        });
                        scanned.stop = Stop::Broken;
                        break;
                    }
                }
            }
        }
        if position > len {
            // A frame cannot end past the file (checked); defensive.
            scanned.stop = Stop::End;
            break;
        }
    }
    scanned
}

/// At the cap, the submission that wrote the last live record ends with
/// zero padding to the next sector boundary, unless a superseded record
/// follows directly (a truncated suffix). Rot in that padding is damage;
/// records resume at the cap (in the next segment).
fn check_padding_before_cap(input: &ScanInput<'_>, position: u64, lsn: Lsn, scanned: &mut Scanned) {
    let bytes = input.bytes;
    let len = bytes.len() as u64;
    let start = position as usize;
    if position + RECORD_HEADER_SIZE_BYTES as u64 <= len
        && let HeaderSlot::Valid(header) =
            record::decode_header(&bytes[start..start + RECORD_HEADER_SIZE_BYTES])
        && header.lsn == lsn
    {
        return; // A superseded record.
    }
    let boundary = record::sector_align_up(position).min(len) as usize;
    if let Some(at) = first_nonzero(&bytes[start.min(boundary)..boundary]) {
        scanned.harmless.push(Damage {
            path: input.path.to_path_buf(),
            offset: position + at as u64,
            lsn,
            resume_lsn: Some(lsn),
            reason: CorruptReason::Padding,
        });
    }
}

/// What the slot at a position holds.
enum Slot {
    /// The next valid record; its frame size.
    Record(u64),
    /// Zero padding up to this sector boundary; records continue there.
    Padding(u64),
    /// No further record.
    End,
    /// A torn frame (see the module comment).
    Torn {
        nonzero_end: u64,
        reason: CorruptReason,
    },
    /// A damaged frame of known size (valid header).
    Skip { size: u64, reason: CorruptReason },
    /// Damage of unknown extent: search for intact records from here.
    Lost {
        reason: CorruptReason,
        search_from: u64,
    },
}

fn check_slot(bytes: &[u8], position: u64, lsn: Lsn) -> Slot {
    let len = bytes.len() as u64;
    let header_size = RECORD_HEADER_SIZE_BYTES as u64;
    if position + header_size > len {
        return match first_nonzero(&bytes[position.min(len) as usize..]) {
            None => Slot::End,
            Some(at) => lost_at(position + at as u64, position),
        };
    }
    let start = position as usize;
    let header = match record::decode_header(&bytes[start..start + RECORD_HEADER_SIZE_BYTES]) {
        HeaderSlot::Zero => return zero_slot(bytes, position),
        HeaderSlot::Invalid {
            expected_crc,
            actual_crc,
        } => {
            return Slot::Lost {
                reason: CorruptReason::HeaderChecksum {
                    expected_crc,
                    actual_crc,
                },
                search_from: position + header_size,
            };
        }
        HeaderSlot::Valid(header) => header,
    };
    if header.lsn != lsn {
        return Slot::Lost {
            reason: CorruptReason::Lsn { found: header.lsn },
            search_from: position + header_size,
        };
    }
    let size = header.frame_size_at(position);
    if position + size > len {
        return Slot::Lost {
            reason: CorruptReason::Length {
                len: u64::from(header.payload_len),
            },
            search_from: position + header_size,
        };
    }
    let frame = &bytes[start..start + size as usize];
    let fault = match record::verify_body(frame, position, &header) {
        Ok(()) => return Slot::Record(size),
        Err(fault) => fault,
    };
    let reason = match fault {
        BodyFault::Checksum {
            expected_crc,
            actual_crc,
        } => CorruptReason::BodyChecksum {
            expected_crc,
            actual_crc,
        },
        BodyFault::Stamp { at } => CorruptReason::Stamp { at: at as u64 },
        BodyFault::Padding => CorruptReason::Padding,
    };
    let rest = &bytes[start..];
    let unwritten = record::first_unwritten_sector(rest, position, size as usize);
    let after_is_zero = first_nonzero(&rest[size as usize..]).is_none();
    if unwritten.is_some() && after_is_zero {
        let nonzero_end = position + last_nonzero(rest).map_or(0, |i| i as u64 + 1);
        return Slot::Torn {
            nonzero_end,
            reason,
        };
    }
    Slot::Skip { size, reason }
}

/// A zero header slot: submission padding if the rest of its sector is
/// zero and the slot is inside a sector; the end if everything after it is
/// zero; damage otherwise.
fn zero_slot(bytes: &[u8], position: u64) -> Slot {
    let sector = SECTOR_BYTES as u64;
    let len = bytes.len() as u64;
    if !position.is_multiple_of(sector) {
        let boundary = record::sector_align_up(position).min(len);
        return match first_nonzero(&bytes[position as usize..boundary as usize]) {
            None => Slot::Padding(boundary),
            Some(at) => lost_at(position + at as u64, position),
        };
    }
    match first_nonzero(&bytes[position as usize..]) {
        None => Slot::End,
        Some(at) => lost_at(position + at as u64, position),
    }
}

/// Damage: non-zero bytes at `nonzero` where zeros (padding or the end)
/// belong; the search for intact records starts at the slot holding them.
fn lost_at(nonzero: u64, position: u64) -> Slot {
    let align = record::RECORD_ALIGN_BYTES as u64;
    Slot::Lost {
        reason: CorruptReason::DataAfterEnd { offset: nonzero },
        search_from: (nonzero / align * align).max(position),
    }
}

/// Searches 32-byte slots from `from` for the frame of an LSN after
/// `damaged_lsn` (and before `cap_lsn`) that verifies completely: where
/// intact records resume after damage of unknown extent. A header that
/// merely passes its checksum is not enough; the whole frame must verify.
fn resync(bytes: &[u8], from: u64, damaged_lsn: Lsn, cap_lsn: Option<Lsn>) -> Option<(Lsn, u64)> {
    let align = record::RECORD_ALIGN_BYTES as u64;
    let len = bytes.len() as u64;
    let header_size = RECORD_HEADER_SIZE_BYTES as u64;
    let mut position = from.div_ceil(align) * align;
    // An LSN more than one per slot ahead cannot be in this segment.
    let lsn_max = damaged_lsn.saturating_add(len / align + 1);
    while position + header_size <= len {
        let start = position as usize;
        let slot = record::decode_header(&bytes[start..start + RECORD_HEADER_SIZE_BYTES]);
        if let HeaderSlot::Valid(header) = slot
            && header.lsn > damaged_lsn
            && header.lsn <= lsn_max
            && cap_lsn.is_none_or(|cap| header.lsn < cap)
        {
            let size = header.frame_size_at(position);
            if position + size <= len
                && record::verify_body(&bytes[start..start + size as usize], position, &header)
                    .is_ok()
            {
                return Some((header.lsn, position));
            }
        }
        position += align;
    }
    None
}

/// Index of the first non-zero byte.
pub(super) fn first_nonzero(bytes: &[u8]) -> Option<usize> {
    // Compare 8 bytes at a time: unused space is most of a segment.
    let chunks = bytes.chunks_exact(8);
    let remainder_start = bytes.len() - chunks.remainder().len();
    for (i, chunk) in chunks.enumerate() {
        if u64::from_ne_bytes(chunk.try_into().expect("8 bytes")) != 0 {
            let within = chunk.iter().position(|&b| b != 0).expect("non-zero chunk");
            return Some(i * 8 + within);
        }
    }
    bytes[remainder_start..]
        .iter()
        .position(|&b| b != 0)
        .map(|i| remainder_start + i)
}

fn last_nonzero(bytes: &[u8]) -> Option<usize> {
    bytes.iter().rposition(|&b| b != 0)
}

/// Searches the first sector of records of a segment whose header is lost
/// for its first frame: the LSN and offset a rebuilt header would name.
pub(super) fn find_first_frame(bytes: &[u8]) -> Option<(Lsn, u64)> {
    let start = crate::storage::wal::segment::SEGMENT_RECORDS_START_BYTES;
    let align = record::RECORD_ALIGN_BYTES as u64;
    let len = bytes.len() as u64;
    let header_size = RECORD_HEADER_SIZE_BYTES as u64;
    let mut position = start;
    while position < 2 * start && position + header_size <= len {
        let at = position as usize;
        if let HeaderSlot::Valid(header) =
            record::decode_header(&bytes[at..at + RECORD_HEADER_SIZE_BYTES])
            && header.lsn > 0
        {
            let size = header.frame_size_at(position);
            if position + size <= len
                && record::verify_body(&bytes[at..at + size as usize], position, &header).is_ok()
            {
                return Some((header.lsn, position));
            }
        }
        position += align;
    }
    None
}
