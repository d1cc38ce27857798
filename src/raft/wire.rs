//! The one bincode configuration every Raft message and log record uses:
//! fixed-width little-endian integers, and a decode limit of the input's
//! own length, so that a length prefix in bad bytes can never make the
//! decoder allocate more than the bytes it was given.

use bincode::Options;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
}

/// Appends the encoding of `value`.
pub(crate) fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    options()
        .serialize_into(out, value)
        .expect("serializing into a Vec fails only for types serde cannot encode");
}

/// The encoding of `value`.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Decodes `bytes`, all of them. Never panics.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, bincode::Error> {
    options().with_limit(bytes.len() as u64).deserialize(bytes)
}
