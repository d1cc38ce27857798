//! The record frame: how one payload is laid out in a segment, and the
//! sector stamps that tell a torn write from bit rot by construction.
//!
//! ```text
//! offset  size  field
//!      0     4  header_crc   CRC32 of bytes 4..32 of this header
//!      4     4  body_crc     CRC32 of the body as stored (payload + stamps)
//!      8     8  lsn          log sequence number
//!     16     4  payload_len  bytes of payload in the body
//!     20    12  reserved     zero
//!     32     b  body         the payload, with an 8-byte stamp inserted at
//!                            every 512-byte sector boundary it crosses
//!   32+b     p  zero padding to a multiple of 32 bytes
//! ```
//!
//! Frames start at multiples of 32 bytes, so a header never straddles a
//! 512-byte sector: a header that is present was written whole.
//!
//! Stamps. Every sector a frame reaches beyond the one holding its header
//! begins with the frame's stamp (`STAMP_TAG` and the low half of its LSN),
//! so every sector a frame touches holds a non-zero byte written by that
//! frame's write. Segments are zero-filled before use and never rewritten,
//! so a sector of a frame that is entirely zero was never written: the
//! frame's write was torn. A complete frame whose checksum fails has every
//! sector written: that is rot, whatever its payload holds. Stamps sit at
//! *file* sector boundaries; the writer places every submission at a sector
//! boundary (and a submission split across segments at the same offset
//! modulo 512), so the encoder, which knows only a frame's offset within its
//! submission, puts them in the right places.

use super::Lsn;
use crate::storage::header::{u32_at, u64_at};

/// Size of a record header.
pub const RECORD_HEADER_SIZE_BYTES: usize = 32;
/// Frames start and end at multiples of this.
pub const RECORD_ALIGN_BYTES: usize = 32;
/// The unit a torn write keeps or loses, and the stamp interval.
pub const SECTOR_BYTES: usize = crate::storage::io::SECTOR_SIZE_BYTES as usize;
/// Size of the stamp at the start of every sector a frame body enters.
pub const STAMP_SIZE_BYTES: usize = 8;
/// The high half of every stamp: never zero, so a stamp is never zero.
const STAMP_TAG: u32 = 0x504D_5453; // "STMP"
/// Payload bytes a sector holds after its stamp.
const SECTOR_PAYLOAD_BYTES: usize = SECTOR_BYTES - STAMP_SIZE_BYTES;

const _: () = assert!(RECORD_HEADER_SIZE_BYTES.is_multiple_of(RECORD_ALIGN_BYTES));
const _: () = assert!(SECTOR_BYTES.is_multiple_of(RECORD_ALIGN_BYTES));
const _: () = assert!(STAMP_SIZE_BYTES < RECORD_ALIGN_BYTES);

/// A decoded, checksum-verified record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// The record's log sequence number.
    pub lsn: Lsn,
    /// Length of the payload in bytes.
    pub payload_len: u32,
    /// CRC32 of the stored body (payload and stamps).
    pub body_crc: u32,
}

impl RecordHeader {
    /// Total bytes the frame occupies at file offset `offset`, padding included.
    pub fn frame_size_at(&self, offset: u64) -> u64 {
        frame_size_at(offset, self.payload_len as usize) as u64
    }
}

/// What a 32-byte header slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderSlot {
    /// Every byte is zero: never written.
    Zero,
    /// A header whose checksum and reserved bytes are right.
    Valid(RecordHeader),
    /// Non-zero bytes that are not a valid header.
    Invalid {
        /// CRC32 the header claims.
        expected_crc: u32,
        /// CRC32 of the header bytes as read.
        actual_crc: u32,
    },
}

/// Why a frame whose header is valid fails verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFault {
    /// The body checksum does not match.
    Checksum {
        /// Stored in the header.
        expected_crc: u32,
        /// Computed over the body as read.
        actual_crc: u32,
    },
    /// The checksum matches but a stamp is not this frame's (cannot happen
    /// short of a checksum collision or a writer bug).
    Stamp {
        /// Offset of the stamp within the frame.
        at: usize,
    },
    /// Non-zero bytes in the padding after the body.
    Padding,
}

/// CRC32 of `bytes`. `crc32fast::hash` detects the CPU's features on every
/// call (about 40 instructions, twice per frame); a detected hasher is
/// cloned instead.
fn crc32(bytes: &[u8]) -> u32 {
    static DETECTED: std::sync::OnceLock<crc32fast::Hasher> = std::sync::OnceLock::new();
    let mut hasher = DETECTED.get_or_init(crc32fast::Hasher::new).clone();
    hasher.update(bytes);
    hasher.finalize()
}

/// Rounds `len` up to the frame alignment.
pub const fn align_up(len: usize) -> usize {
    len.div_ceil(RECORD_ALIGN_BYTES) * RECORD_ALIGN_BYTES
}

/// Rounds `offset` up to the next sector boundary.
pub const fn sector_align_up(offset: u64) -> u64 {
    offset.div_ceil(SECTOR_BYTES as u64) * SECTOR_BYTES as u64
}

/// Bytes the body of a frame at `offset` with `payload_len` bytes of
/// payload occupies: the payload plus one stamp per sector boundary it
/// crosses (including one right after the header, if the header ends on a
/// boundary and payload follows).
pub fn body_len(offset: u64, payload_len: usize) -> usize {
    let sector = SECTOR_BYTES as u64;
    let body_start = offset + RECORD_HEADER_SIZE_BYTES as u64;
    let boundary = sector_align_up(body_start);
    if body_start != boundary && body_start + payload_len as u64 <= boundary {
        return payload_len; // No boundary inside: no stamp (most small records).
    }
    let mut end = body_start;
    let mut left = payload_len as u64;
    if left > 0 && !end.is_multiple_of(sector) {
        let take = (sector - end % sector).min(left);
        end += take;
        left -= take;
    }
    let per_sector = SECTOR_PAYLOAD_BYTES as u64;
    end += left / per_sector * sector;
    if !left.is_multiple_of(per_sector) {
        end += STAMP_SIZE_BYTES as u64 + left % per_sector;
    }
    (end - body_start) as usize
}

/// Bytes a frame at file offset `offset` holding `payload_len` bytes
/// occupies, padding included.
pub fn frame_size_at(offset: u64, payload_len: usize) -> usize {
    align_up(RECORD_HEADER_SIZE_BYTES + body_len(offset, payload_len))
}

/// The most bytes a frame holding `payload_len` bytes can occupy, wherever
/// it starts: a body crosses at most `ceil(payload_len / 504)` sector
/// boundaries.
pub const fn frame_size_max(payload_len: usize) -> usize {
    align_up(
        RECORD_HEADER_SIZE_BYTES
            + payload_len
            + STAMP_SIZE_BYTES * payload_len.div_ceil(SECTOR_PAYLOAD_BYTES),
    )
}

/// The stamp of the frame with LSN `lsn`.
pub fn stamp(lsn: Lsn) -> [u8; STAMP_SIZE_BYTES] {
    let mut bytes = [0u8; STAMP_SIZE_BYTES];
    bytes[0..4].copy_from_slice(&(lsn as u32).to_le_bytes());
    bytes[4..8].copy_from_slice(&STAMP_TAG.to_le_bytes());
    bytes
}

/// Appends a frame for `lsn` holding the concatenation of `parts` to `out`.
/// `out.len()` must be a multiple of the frame alignment, and the bytes of
/// `out` must land in the file at an offset congruent to their index in
/// `out` modulo the sector size (the writer guarantees it).
pub fn encode_frame(out: &mut Vec<u8>, lsn: Lsn, parts: &[&[u8]]) {
    assert!(
        out.len().is_multiple_of(RECORD_ALIGN_BYTES),
        "frames must stay aligned"
    );
    let start = out.len();
    let payload_len: usize = parts.iter().map(|p| p.len()).sum();
    let payload_len_u32 = u32::try_from(payload_len).expect("payload length checked by the caller");
    let body_start = start + RECORD_HEADER_SIZE_BYTES;
    // Where the next stamp goes: the first sector boundary at or after the
    // body's start (a boundary at the start itself takes a stamp too).
    let mut boundary = sector_align_up(body_start as u64) as usize;
    let unstamped = body_start + payload_len <= boundary && body_start != boundary;
    let body = if unstamped {
        payload_len
    } else {
        body_len(start as u64, payload_len)
    };
    let size = align_up(RECORD_HEADER_SIZE_BYTES + body);
    out.reserve(size);
    out.extend_from_slice(&[0u8; RECORD_HEADER_SIZE_BYTES]);
    if unstamped {
        // The common case for small records: no boundary inside the body.
        for part in parts {
            out.extend_from_slice(part);
        }
    } else {
        let stamp = stamp(lsn);
        for part in parts {
            let mut part: &[u8] = part;
            while !part.is_empty() {
                if out.len() == boundary {
                    out.extend_from_slice(&stamp);
                    boundary += SECTOR_BYTES;
                }
                let (now, rest) = part.split_at((boundary - out.len()).min(part.len()));
                out.extend_from_slice(now);
                part = rest;
            }
        }
    }
    let body_end = out.len();
    debug_assert_eq!(body_end - body_start, body, "encoder and layout agree");
    out.resize(start + size, 0);
    let body_crc = crc32(&out[body_start..body_end]);
    let header = &mut out[start..body_start];
    header[4..8].copy_from_slice(&body_crc.to_le_bytes());
    header[8..16].copy_from_slice(&lsn.to_le_bytes());
    header[16..20].copy_from_slice(&payload_len_u32.to_le_bytes());
    let header_crc = crc32(&header[4..]);
    header[0..4].copy_from_slice(&header_crc.to_le_bytes());
    // Pair assertion: what we wrote must decode to what we meant.
    debug_assert_eq!(
        decode_header(header),
        HeaderSlot::Valid(RecordHeader {
            lsn,
            payload_len: payload_len_u32,
            body_crc,
        })
    );
}

/// Classifies the 32 bytes of a header slot. `bytes` must be 32 bytes long.
pub fn decode_header(bytes: &[u8]) -> HeaderSlot {
    assert_eq!(bytes.len(), RECORD_HEADER_SIZE_BYTES);
    if bytes.iter().all(|&b| b == 0) {
        return HeaderSlot::Zero;
    }
    let expected_crc = u32_at(bytes, 0);
    let actual_crc = crc32(&bytes[4..]);
    if expected_crc != actual_crc || bytes[20..32].iter().any(|&b| b != 0) {
        return HeaderSlot::Invalid {
            expected_crc,
            actual_crc,
        };
    }
    HeaderSlot::Valid(RecordHeader {
        lsn: u64_at(bytes, 8),
        payload_len: u32_at(bytes, 16),
        body_crc: u32_at(bytes, 4),
    })
}

/// Verifies the body of a frame whose header is valid. `frame` holds the
/// whole frame (`header.frame_size_at(offset)` bytes) as read from file
/// offset `offset`.
pub fn verify_body(frame: &[u8], offset: u64, header: &RecordHeader) -> Result<(), BodyFault> {
    let body_len = body_len(offset, header.payload_len as usize);
    let body_end = RECORD_HEADER_SIZE_BYTES + body_len;
    let actual_crc = crc32(&frame[RECORD_HEADER_SIZE_BYTES..body_end]);
    if actual_crc != header.body_crc {
        return Err(BodyFault::Checksum {
            expected_crc: header.body_crc,
            actual_crc,
        });
    }
    let expected = stamp(header.lsn);
    let body_start = offset + RECORD_HEADER_SIZE_BYTES as u64;
    let mut at = (sector_align_up(body_start) - offset) as usize;
    while at < body_end {
        if frame[at..at + STAMP_SIZE_BYTES] != expected {
            return Err(BodyFault::Stamp { at });
        }
        at += SECTOR_BYTES;
    }
    // At most 31 bytes of padding.
    if frame[body_end..].iter().fold(0u8, |acc, &b| acc | b) != 0 {
        return Err(BodyFault::Padding);
    }
    Ok(())
}

/// The offset (within `sectors`, which starts at file offset `offset`) of
/// the first sector after the one holding `offset` that is entirely zero:
/// evidence that a write reaching it never happened. Only sectors that
/// start inside `sectors[..extent]` are examined; each is examined whole
/// (up to the end of `sectors`).
pub fn first_unwritten_sector(sectors: &[u8], offset: u64, extent: usize) -> Option<usize> {
    let first = (sector_align_up(offset + 1) - offset) as usize;
    (first..extent.min(sectors.len()))
        .step_by(SECTOR_BYTES)
        .find(|&at| {
            let end = (at + SECTOR_BYTES).min(sectors.len());
            sectors[at..end].iter().all(|&b| b == 0)
        })
}

/// Removes the stamps from the body of a verified frame, in place: the
/// body starts at `body[0]`, at file offset `body_offset`. Returns the
/// payload length; the payload is then `body[..len]`.
pub fn strip_stamps(body: &mut [u8], body_offset: u64, payload_len: usize) -> usize {
    let first_boundary = (sector_align_up(body_offset) - body_offset) as usize;
    if first_boundary >= payload_len {
        return payload_len;
    }
    let mut write = first_boundary;
    let mut read = first_boundary;
    while write < payload_len {
        read += STAMP_SIZE_BYTES;
        let take = SECTOR_PAYLOAD_BYTES.min(payload_len - write);
        body.copy_within(read..read + take, write);
        write += take;
        read += take;
    }
    payload_len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_at(offset: usize, lsn: Lsn, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; offset];
        encode_frame(&mut out, lsn, &[payload]);
        out
    }

    // Goal: frames round-trip at every alignment within a sector, with the
    // stamps where the layout says, and every single-bit flip in a header is
    // detected.
    #[test]
    fn frame_round_trip_and_header_bit_flips() {
        for offset in (0..SECTOR_BYTES).step_by(RECORD_ALIGN_BYTES) {
            for len in [0usize, 1, 11, 479, 480, 481, 503, 504, 505, 1500, 5000] {
                let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                let out = encode_at(offset, 42, &payload);
                let frame = &out[offset..];
                assert_eq!(frame.len(), frame_size_at(offset as u64, len));
                assert!(frame.len() <= frame_size_max(len), "{offset} {len}");
                let HeaderSlot::Valid(header) = decode_header(&frame[..32]) else {
                    panic!("header should be valid");
                };
                assert_eq!((header.lsn, header.payload_len as usize), (42, len));
                verify_body(frame, offset as u64, &header).unwrap();
                // Every sector the frame reaches beyond its header's starts
                // with the stamp.
                let mut at = (sector_align_up(offset as u64 + 1) - offset as u64) as usize;
                while at < 32 + body_len(offset as u64, len) {
                    assert_eq!(frame[at..at + 8], stamp(42), "{offset} {len} {at}");
                    at += SECTOR_BYTES;
                }
                let mut body = frame[32..].to_vec();
                let n = strip_stamps(&mut body, offset as u64 + 32, len);
                assert_eq!(&body[..n], &payload[..], "{offset} {len}");
            }
        }
        let out = encode_at(0, 42, b"hello world");
        for bit in 0..32 * 8 {
            let mut copy = out.clone();
            copy[bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(decode_header(&copy[..32]), HeaderSlot::Invalid { .. }),
                "flip of bit {bit} not detected"
            );
        }
        assert_eq!(decode_header(&[0u8; 32]), HeaderSlot::Zero);
    }

    // Goal: an all-zero payload still leaves every sector of its frame
    // non-zero, so zeroing any sector beyond the header's is recognisable
    // as an unwritten sector, and a flipped bit anywhere in the body fails
    // verification.
    #[test]
    fn zero_payload_sectors_are_stamped_and_rot_is_detected() {
        let offset = 448usize;
        let out = encode_at(offset, 7, &[0u8; 2000]);
        let frame = out[offset..].to_vec();
        let HeaderSlot::Valid(header) = decode_header(&frame[..32]) else {
            panic!("valid header expected");
        };
        assert_eq!(
            first_unwritten_sector(&frame, offset as u64, frame.len()),
            None
        );
        let mut torn = frame.clone();
        let boundary = (sector_align_up(offset as u64 + 1) - offset as u64) as usize;
        let end = (boundary + SECTOR_BYTES).min(torn.len());
        torn[boundary..end].fill(0);
        assert!(verify_body(&torn, offset as u64, &header).is_err());
        assert_eq!(
            first_unwritten_sector(&torn, offset as u64, torn.len()),
            Some(boundary)
        );
        for bit in (32 * 8..frame.len() * 8).step_by(13) {
            let mut copy = frame.clone();
            copy[bit / 8] ^= 1 << (bit % 8);
            assert!(verify_body(&copy, offset as u64, &header).is_err(), "{bit}");
        }
    }

    #[test]
    fn frame_sizes() {
        assert_eq!(frame_size_at(0, 0), 32);
        assert_eq!(frame_size_at(0, 1), 64);
        assert_eq!(frame_size_at(0, 32), 64);
        assert_eq!(frame_size_at(0, 480), 512);
        // 481 bytes cross the first boundary: one stamp.
        assert_eq!(frame_size_at(0, 481), 544);
        // A header ending on a boundary is followed by a stamp.
        assert_eq!(body_len(480, 1), 9);
        assert_eq!(body_len(480, 0), 0);
    }
}
