//! The record frame: how one payload is laid out in a segment.
//!
//! ```text
//! offset  size  field
//!      0     4  header_crc   CRC32 of bytes 4..32 of this header
//!      4     4  payload_crc  CRC32 of the payload
//!      8     8  lsn          log sequence number
//!     16     4  payload_len  bytes of payload that follow the header
//!     20    12  reserved     zero
//!     32     n  payload
//!   32+n     p  zero padding to a multiple of 32 bytes
//! ```
//!
//! Frames start at multiples of 32 bytes, so a 32-byte header never
//! straddles a 512-byte sector boundary: a torn write either persisted a
//! whole header or none of it. The header has its own checksum so that a
//! header that is present can be trusted to tell where its frame ends, which
//! is what lets recovery tell a torn tail (frame cut at a sector boundary)
//! from bit rot inside a complete frame.

use super::Lsn;

/// Size of a record header.
pub const RECORD_HEADER_SIZE_BYTES: usize = 32;
/// Frames start and end at multiples of this.
pub const RECORD_ALIGN_BYTES: usize = 32;

const _: () = assert!(RECORD_HEADER_SIZE_BYTES.is_multiple_of(RECORD_ALIGN_BYTES));
const _: () = assert!((crate::io::SECTOR_SIZE_BYTES as usize).is_multiple_of(RECORD_ALIGN_BYTES));

/// A decoded, checksum-verified record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// The record's log sequence number.
    pub lsn: Lsn,
    /// Length of the payload in bytes.
    pub payload_len: u32,
    /// CRC32 of the payload.
    pub payload_crc: u32,
}

impl RecordHeader {
    /// Total bytes the frame occupies, padding included.
    pub fn frame_size(&self) -> usize {
        frame_size(self.payload_len as usize)
    }
}

/// What a 32-byte header slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderSlot {
    /// Every byte is zero: never written (the end of the log).
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

/// Rounds `len` up to the frame alignment.
pub const fn align_up(len: usize) -> usize {
    len.div_ceil(RECORD_ALIGN_BYTES) * RECORD_ALIGN_BYTES
}

/// Bytes a frame with a payload of `payload_len` bytes occupies.
pub const fn frame_size(payload_len: usize) -> usize {
    align_up(RECORD_HEADER_SIZE_BYTES + payload_len)
}

/// Appends a frame for `lsn` holding the concatenation of `parts` to `out`.
/// `out.len()` must be a multiple of the frame alignment.
pub fn encode_frame(out: &mut Vec<u8>, lsn: Lsn, parts: &[&[u8]]) {
    assert!(
        out.len().is_multiple_of(RECORD_ALIGN_BYTES),
        "frames must stay aligned"
    );
    let start = out.len();
    out.resize(start + RECORD_HEADER_SIZE_BYTES, 0);
    let mut hasher = crc32fast::Hasher::new();
    let mut payload_len = 0usize;
    for part in parts {
        hasher.update(part);
        out.extend_from_slice(part);
        payload_len += part.len();
    }
    let payload_len = u32::try_from(payload_len).expect("payload length checked by the caller");
    out.resize(start + frame_size(payload_len as usize), 0);
    let header = &mut out[start..start + RECORD_HEADER_SIZE_BYTES];
    header[4..8].copy_from_slice(&hasher.finalize().to_le_bytes());
    header[8..16].copy_from_slice(&lsn.to_le_bytes());
    header[16..20].copy_from_slice(&payload_len.to_le_bytes());
    let header_crc = crc32fast::hash(&header[4..]);
    header[0..4].copy_from_slice(&header_crc.to_le_bytes());
    // Pair assertion: what we wrote must decode to what we meant.
    debug_assert_eq!(
        decode_header(header),
        HeaderSlot::Valid(RecordHeader {
            lsn,
            payload_len,
            payload_crc: u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")),
        })
    );
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("8 bytes"))
}

/// Classifies the 32 bytes of a header slot. `bytes` must be 32 bytes long.
pub fn decode_header(bytes: &[u8]) -> HeaderSlot {
    assert_eq!(bytes.len(), RECORD_HEADER_SIZE_BYTES);
    if bytes.iter().all(|&b| b == 0) {
        return HeaderSlot::Zero;
    }
    let expected_crc = u32_at(bytes, 0);
    let actual_crc = crc32fast::hash(&bytes[4..]);
    if expected_crc != actual_crc || bytes[20..32].iter().any(|&b| b != 0) {
        return HeaderSlot::Invalid {
            expected_crc,
            actual_crc,
        };
    }
    HeaderSlot::Valid(RecordHeader {
        lsn: u64_at(bytes, 8),
        payload_len: u32_at(bytes, 16),
        payload_crc: u32_at(bytes, 4),
    })
}

/// True if the padding after a payload of `payload_len` bytes in `frame`
/// (a whole frame) is all zeros, as the encoder wrote it.
pub fn padding_is_zero(frame: &[u8], payload_len: usize) -> bool {
    frame[RECORD_HEADER_SIZE_BYTES + payload_len..]
        .iter()
        .all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a frame round-trips, is aligned, and every single-bit flip in its
    // header is detected.
    #[test]
    fn frame_round_trip_and_header_bit_flips() {
        let mut out = Vec::new();
        encode_frame(&mut out, 42, &[b"hello ", b"world"]);
        assert_eq!(out.len(), 64);
        let HeaderSlot::Valid(header) = decode_header(&out[..32]) else {
            panic!("header should be valid");
        };
        assert_eq!(header.lsn, 42);
        assert_eq!(header.payload_len, 11);
        assert_eq!(&out[32..43], b"hello world");
        assert_eq!(header.payload_crc, crc32fast::hash(b"hello world"));
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

    #[test]
    fn frame_sizes() {
        assert_eq!(frame_size(0), 32);
        assert_eq!(frame_size(1), 64);
        assert_eq!(frame_size(32), 64);
        assert_eq!(frame_size(128), 160);
    }
}
