//! The fixed-header layout every syncpay file header shares (segment
//! headers, manifest slots, snapshot headers), and the little-endian field
//! readers and writers all on-disk structures use.
//!
//! ```text
//! 0..8    magic (which structure)
//! 8..12   format version, u32
//! 12..16  header CRC: CRC32 of bytes 0..12 and 16..len
//! 16..len the structure's fields, then zeros
//! ```
//!
//! Readers take a slice at least as long as the field; callers bound their
//! slices first (`get(..SIZE)`), so the readers never see short input.

/// Reads the little-endian `u32` at `offset`.
pub(crate) fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(array_at(bytes, offset))
}

/// Reads the little-endian `u64` at `offset`.
pub(crate) fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(array_at(bytes, offset))
}

fn array_at<const N: usize>(bytes: &[u8], offset: usize) -> [u8; N] {
    let mut array = [0u8; N];
    array.copy_from_slice(&bytes[offset..offset + N]);
    array
}

/// Writes `value` little-endian at `offset`.
pub(crate) fn put_u32(bytes: &mut [u8], offset: usize, value: u32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

/// Writes `value` little-endian at `offset`.
pub(crate) fn put_u64(bytes: &mut [u8], offset: usize, value: u64) {
    bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
}

/// The header CRC of `bytes` (the whole header): bytes 0..12 and 16.. .
fn header_crc(bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[0..12]);
    hasher.update(&bytes[16..]);
    hasher.finalize()
}

/// Writes magic and version into `bytes` (whose fields from 16 on are
/// already written), then the CRC over everything.
pub(crate) fn seal(bytes: &mut [u8], magic: &[u8; 8], version: u32) {
    bytes[0..8].copy_from_slice(magic);
    put_u32(bytes, 8, version);
    let crc = header_crc(bytes);
    put_u32(bytes, 12, crc);
}

/// The format version of an intact header with `magic` (magic and CRC
/// check out), whatever the version; `None` for anything else. A caller
/// treats an intact header of another version as a foreign format, and
/// anything else as damage: a flipped version bit fails the CRC.
pub(crate) fn intact_version(bytes: &[u8], magic: &[u8; 8]) -> Option<u32> {
    (bytes.len() >= 16 && bytes[0..8] == *magic && u32_at(bytes, 12) == header_crc(bytes))
        .then(|| u32_at(bytes, 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a sealed header verifies; any flipped bit, including in the
    // version or the CRC itself, makes it not intact.
    #[test]
    fn sealed_headers_verify_and_every_bit_matters() {
        let mut bytes = [0u8; 64];
        put_u64(&mut bytes, 16, 0x0102_0304_0506_0708);
        seal(&mut bytes, b"SYNCTEST", 3);
        assert_eq!(intact_version(&bytes, b"SYNCTEST"), Some(3));
        assert_eq!(intact_version(&bytes, b"SYNCOTHR"), None);
        assert_eq!(u64_at(&bytes, 16), 0x0102_0304_0506_0708);
        for bit in 0..64 * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(intact_version(&flipped, b"SYNCTEST"), None, "bit {bit}");
        }
        assert_eq!(intact_version(&bytes[..8], b"SYNCTEST"), None);
    }
}
