//! The exact idempotency index: a keyed hasher for client-chosen `u128` ids
//! ([`IdHasher`], [`IdBuildHasher`]), an exact open-addressing map from ids to small values
//! ([`IdIndex`]), and the exact set of ids burnt by transient failures ([`FailedIds`],
//! TigerBeetle's `id_already_failed`).
//!
//! Ids are chosen by clients, possibly adversarially, so the hash is keyed with per-process
//! random keys taken from `std::collections::hash_map::RandomState`: without the keys an
//! attacker cannot construct ids that collide in the table. The mixer is a folded multiply
//! (the full 128-bit product of two 64-bit words, high half XOR low half), the same
//! construction as foldhash. The keys influence only where entries sit in memory; nothing in
//! this module exposes an iteration order of the hash table, so no result and no snapshot
//! depends on them. [`FailedIds`] keeps its ids in insertion order for that reason.
//!
//! [`IdIndex`] stores every key in full and compares keys exactly, so it never confuses two
//! ids. It uses linear probing with backward-shift deletion (no tombstones) and keeps the load
//! at most 3/4, so a lookup touches on average about two buckets and a miss about eight, which
//! are mostly adjacent in memory. A bucket is the 16 key bytes plus the value, with no padding
//! (20 bytes for a `u32` value). The key 0 marks an empty bucket, so the entry for id 0, if
//! any, is kept beside the table.
//!
//! A table much larger than the caches costs one cache miss (and often a TLB miss) per
//! lookup. [`IdIndex::warm`] lets a caller read the buckets of many ids in a tight loop first,
//! so that their misses overlap, before it looks them up one at a time.
//!
//! There is no probabilistic filter: a miss in the exact table is already a single probe run,
//! and a filter in front of it would only add memory.
//!
//! Complexity: `get`, `insert`, `remove`, `contains` are expected O(1); growth doubles the
//! table and rehashes every entry (amortized O(1) per insert).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use crate::chunked::ChunkedVec;

/// The full 128-bit product of `a` and `b`, folded to 64 bits by XOR of its halves.
const fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = (a as u128) * (b as u128);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Builds [`IdHasher`]s sharing four random per-process keys; also hashes a `u128` directly.
#[derive(Clone, Copy, Debug)]
pub struct IdBuildHasher {
    keys: [u64; 4],
}

impl IdBuildHasher {
    /// Returns a builder with fresh random keys derived from `RandomState`.
    pub fn new() -> Self {
        let state = RandomState::new();
        // SipHash outputs under a random key are unpredictable, so hashing four distinct
        // constants yields four independent-looking keys.
        let mut keys = [0u64; 4];
        for (index, key) in keys.iter_mut().enumerate() {
            *key = state.hash_one(0x243F_6A88_85A3_08D3_u64 ^ index as u64);
        }
        // An odd final multiplier keeps the last round from discarding low bits.
        keys[3] |= 1;
        Self { keys }
    }

    /// Hashes one id; equal to hashing it with an [`IdHasher`] from this builder.
    #[inline]
    pub fn hash_id(&self, id: u128) -> u64 {
        let mixed = folded_multiply(id as u64 ^ self.keys[0], (id >> 64) as u64 ^ self.keys[1]);
        folded_multiply(mixed ^ self.keys[2], self.keys[3])
    }
}

impl Default for IdBuildHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl BuildHasher for IdBuildHasher {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            keys: self.keys,
            accumulator: self.keys[0],
        }
    }
}

/// A keyed folded-multiply hasher, fast for `u128` and `u64` keys.
#[derive(Clone, Copy, Debug)]
pub struct IdHasher {
    keys: [u64; 4],
    accumulator: u64,
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(16) {
            let mut buffer = [0u8; 16];
            buffer[..chunk.len()].copy_from_slice(chunk);
            self.write_u128(u128::from_le_bytes(buffer));
        }
        // The length keeps inputs that differ only in trailing zero bytes apart.
        self.write_u64(bytes.len() as u64);
    }

    fn write_u128(&mut self, value: u128) {
        self.accumulator = folded_multiply(
            value as u64 ^ self.accumulator,
            (value >> 64) as u64 ^ self.keys[1],
        );
    }

    fn write_u64(&mut self, value: u64) {
        self.write_u128(u128::from(value));
    }

    fn finish(&self) -> u64 {
        folded_multiply(self.accumulator ^ self.keys[2], self.keys[3])
    }
}

/// One table bucket: the key's little-endian bytes (all zero when empty) and the value.
/// Byte arrays have alignment 1, so a bucket has no padding.
#[derive(Clone, Copy, Debug, Default)]
struct Bucket<V> {
    key: [u8; 16],
    value: V,
}

const EMPTY_KEY: [u8; 16] = [0; 16];

/// The smallest non-empty table.
const BUCKETS_MIN: usize = 16;

/// An exact map from `u128` ids to small `Copy` values, keyed-hashed and open-addressed.
#[derive(Clone, Debug)]
pub struct IdIndex<V> {
    /// A power-of-two number of buckets, or none before the first insert.
    buckets: Vec<Bucket<V>>,
    /// The number of occupied buckets (the entry for id 0 is not counted here).
    occupied: usize,
    /// The value of id 0, which cannot live in the table because 0 marks empty buckets.
    zero_value: Option<V>,
    hasher: IdBuildHasher,
}

impl<V: Copy + Default> Default for IdIndex<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Copy + Default> IdIndex<V> {
    /// Returns an empty index with fresh hash keys.
    pub fn new() -> Self {
        Self {
            buckets: Vec::new(),
            occupied: 0,
            zero_value: None,
            hasher: IdBuildHasher::new(),
        }
    }

    /// Returns an empty index that holds `entries` entries without growing.
    pub fn with_capacity(entries: usize) -> Self {
        let mut index = Self::new();
        let buckets = Self::buckets_for(entries);
        if entries > 0 {
            index.buckets = vec![Bucket::default(); buckets];
        }
        index
    }

    /// The power-of-two table size that keeps `entries` at a load of at most 3/4.
    fn buckets_for(entries: usize) -> usize {
        entries
            .saturating_mul(4)
            .div_ceil(3)
            .max(BUCKETS_MIN)
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX / 2 + 1)
    }

    /// Returns the number of entries.
    pub fn len(&self) -> usize {
        self.occupied + usize::from(self.zero_value.is_some())
    }

    /// Returns true when the index holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The home bucket of a key (the table must be non-empty).
    #[inline]
    fn home(&self, id: u128) -> usize {
        (self.hasher.hash_id(id) as usize) & (self.buckets.len() - 1)
    }

    /// Returns the bucket holding `id` (non-zero), or `Err` with the empty bucket that ends
    /// its probe sequence, where it would be inserted.
    #[inline]
    fn find(&self, id: u128) -> Result<usize, usize> {
        let key = id.to_le_bytes();
        let mask = self.buckets.len().wrapping_sub(1);
        let mut position = self.home(id);
        // The load stays below 1, so the probe meets an empty bucket within one lap.
        for _ in 0..self.buckets.len() {
            match self.buckets.get(position) {
                Some(bucket) if bucket.key == key => return Ok(position),
                Some(bucket) if bucket.key == EMPTY_KEY => return Err(position),
                _ => position = (position + 1) & mask,
            }
        }
        Err(usize::MAX)
    }

    /// Returns the value stored for `id`, if any.
    #[inline]
    pub fn get(&self, id: u128) -> Option<V> {
        if id == 0 {
            return self.zero_value;
        }
        if self.buckets.is_empty() {
            return None;
        }
        let position = self.find(id).ok()?;
        self.buckets.get(position).map(|bucket| bucket.value)
    }

    /// Reads the first bucket `id` probes and returns a value derived from it, so that a
    /// lookup of `id` soon after hits the cache. Callers issue several of these back to back
    /// (passing the results to `std::hint::black_box`) so that the cache misses overlap
    /// instead of stalling one lookup at a time. The result means nothing and must not
    /// influence any decision.
    #[inline]
    pub fn warm(&self, id: u128) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let position = self.home(id);
        self.buckets.get(position).map_or(0, |bucket| {
            u64::from(bucket.key[0]) ^ u64::from(bucket.key[15])
        })
    }

    /// Returns true when `id` has an entry.
    pub fn contains(&self, id: u128) -> bool {
        self.get(id).is_some()
    }

    /// Stores `value` for `id` and returns the value it replaced, if any.
    pub fn insert(&mut self, id: u128, value: V) -> Option<V> {
        if id == 0 {
            return self.zero_value.replace(value);
        }
        if (self.occupied + 1) * 4 > self.buckets.len() * 3 {
            self.grow();
        }
        match self.find(id) {
            Ok(position) => {
                let bucket = self.buckets.get_mut(position)?;
                Some(std::mem::replace(&mut bucket.value, value))
            }
            Err(position) => {
                if let Some(bucket) = self.buckets.get_mut(position) {
                    *bucket = Bucket {
                        key: id.to_le_bytes(),
                        value,
                    };
                    self.occupied += 1;
                }
                None
            }
        }
    }

    /// Removes the entry for `id` and returns its value, if there was one.
    pub fn remove(&mut self, id: u128) -> Option<V> {
        if id == 0 {
            return self.zero_value.take();
        }
        if self.buckets.is_empty() {
            return None;
        }
        let hole = self.find(id).ok()?;
        let value = self.buckets.get(hole)?.value;
        self.close_hole(hole);
        self.occupied -= 1;
        Some(value)
    }

    /// Backward-shift deletion: moves later entries of the probe run into the hole whenever
    /// that keeps them reachable from their home bucket, then empties the final hole. This
    /// keeps every probe sequence free of gaps without tombstones.
    fn close_hole(&mut self, mut hole: usize) {
        let mask = self.buckets.len() - 1;
        let mut position = (hole + 1) & mask;
        while let Some(bucket) = self.buckets.get(position).copied() {
            if bucket.key == EMPTY_KEY {
                break;
            }
            let home = self.home(u128::from_le_bytes(bucket.key));
            // The entry may move back to the hole when its home is not strictly between the
            // hole and its current position (cyclically).
            if (position.wrapping_sub(home) & mask) >= (position.wrapping_sub(hole) & mask) {
                self.buckets[hole] = bucket;
                hole = position;
            }
            position = (position + 1) & mask;
        }
        self.buckets[hole] = Bucket::default();
    }

    /// Doubles the table (or creates the first one) and reinserts every entry.
    fn grow(&mut self) {
        let new_len = (self.buckets.len() * 2).max(BUCKETS_MIN);
        let old = std::mem::replace(&mut self.buckets, vec![Bucket::default(); new_len]);
        let mask = new_len - 1;
        for bucket in old.into_iter().filter(|bucket| bucket.key != EMPTY_KEY) {
            let mut position = self.home(u128::from_le_bytes(bucket.key));
            while self.buckets[position].key != EMPTY_KEY {
                position = (position + 1) & mask;
            }
            self.buckets[position] = bucket;
        }
    }

    /// Returns the estimated heap bytes held by the table.
    pub fn memory_bytes(&self) -> usize {
        self.buckets.capacity() * size_of::<Bucket<V>>()
    }
}

/// The exact set of transfer ids that failed with a transient status and can never be used
/// again (TigerBeetle's `id_already_failed`).
///
/// The ids are also kept in insertion order in a [`ChunkedVec`], which makes the set cheap to
/// snapshot (see [`FailedIds::log`]) and independent of hash keys when written out, and lets
/// [`FailedIds::rollback`] undo the latest insertions. `LedgerState` records a burnt id only
/// after a broken linked chain was rolled back (the burnt id must survive the rollback), so
/// the ledger itself never rolls this set back; the support is there for callers that stage
/// ids speculatively, such as a replicated session table.
#[derive(Clone, Debug, Default)]
pub struct FailedIds {
    index: IdIndex<()>,
    log: ChunkedVec<u128>,
}

/// A position in the insertion log of [`FailedIds`], to roll back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailedIdsMark(usize);

impl FailedIds {
    /// Returns an empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the set from ids in insertion order; returns the first duplicate as `Err`.
    pub fn from_log(log: ChunkedVec<u128>) -> Result<Self, u128> {
        let mut index = IdIndex::with_capacity(log.len());
        for id in log.iter() {
            if index.insert(*id, ()).is_some() {
                return Err(*id);
            }
        }
        Ok(Self { index, log })
    }

    /// Adds `id`; returns false when it was already present.
    pub fn insert(&mut self, id: u128) -> bool {
        if self.index.insert(id, ()).is_some() {
            return false;
        }
        self.log.push(id);
        true
    }

    /// Returns true when `id` failed earlier.
    #[inline]
    pub fn contains(&self, id: u128) -> bool {
        !self.index.is_empty() && self.index.contains(id)
    }

    /// Returns the number of ids.
    pub fn len(&self) -> usize {
        self.log.len()
    }

    /// Returns true when no id failed yet.
    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }

    /// Returns the current position, to which [`FailedIds::rollback`] can return.
    pub fn mark(&self) -> FailedIdsMark {
        FailedIdsMark(self.log.len())
    }

    /// Removes every id inserted after `mark` was taken.
    pub fn rollback(&mut self, mark: FailedIdsMark) {
        for position in mark.0..self.log.len() {
            if let Some(id) = self.log.get(position) {
                self.index.remove(*id);
            }
        }
        self.log.truncate(mark.0);
    }

    /// Returns the ids in insertion order; cloning it is a cheap snapshot.
    pub fn log(&self) -> &ChunkedVec<u128> {
        &self.log
    }

    /// Returns the estimated heap bytes held by the set.
    pub fn memory_bytes(&self) -> usize {
        self.index.memory_bytes() + self.log.memory_bytes()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// SplitMix64, for deterministic test ids.
    fn mix(seed: u64) -> u64 {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    // Goal: IdIndex agrees with std's HashMap over random inserts, replacements and removals,
    // including the ids 0 and u128::MAX and ids differing in one half only.
    #[test]
    fn id_index_matches_hash_map() {
        let mut index = IdIndex::<u32>::new();
        let mut reference = HashMap::new();
        for step in 0..200_000u64 {
            let random = mix(step);
            let id = match random % 7 {
                0 => 0,
                1 => u128::MAX,
                2 => u128::from(random % 512) << 64,
                _ => u128::from(random % 3000),
            };
            if random.is_multiple_of(5) {
                assert_eq!(index.remove(id), reference.remove(&id), "step {step}");
            } else {
                let value = (random >> 32) as u32;
                assert_eq!(index.insert(id, value), reference.insert(id, value));
            }
            assert_eq!(index.len(), reference.len());
        }
        for id in (0..3000u128).chain([u128::MAX, 5 << 64]) {
            assert_eq!(index.get(id), reference.get(&id).copied());
        }
        assert!(index.memory_bytes() >= index.len() * 20);
    }

    // Goal: sequential and adversarially structured ids (same low half) spread over the table
    // and stay retrievable; with_capacity pre-sizes without growth.
    #[test]
    fn structured_ids_are_retrievable() {
        let mut index = IdIndex::<u32>::with_capacity(100_000);
        let buckets = index.memory_bytes();
        for value in 0..100_000u32 {
            index.insert(u128::from(value) << 64 | 7, value);
        }
        assert_eq!(index.memory_bytes(), buckets);
        for value in 0..100_000u32 {
            assert_eq!(index.get(u128::from(value) << 64 | 7), Some(value));
        }
        assert_eq!(index.get(8), None);
    }

    // Goal: the Hasher path equals hash_id, different keys give different hashes, and the
    // byte path distinguishes trailing zeros.
    #[test]
    fn hasher_is_consistent_and_keyed() {
        let builder = IdBuildHasher::new();
        assert_eq!(builder.hash_one(12345u128), builder.hash_id(12345));
        let other = IdBuildHasher::new();
        assert_ne!(builder.hash_id(1), other.hash_id(1));
        assert_ne!(
            builder.hash_one([1u8].as_slice()),
            builder.hash_one([1u8, 0].as_slice())
        );
        let mut map: HashMap<u128, u8, IdBuildHasher> = HashMap::with_hasher(builder);
        map.insert(5, 1);
        assert_eq!(map.get(&5), Some(&1));
    }

    // Goal: FailedIds is exact, keeps insertion order, rolls back to a mark, and rejects
    // duplicates when rebuilt from a log.
    #[test]
    fn failed_ids_insert_contains_rollback() {
        let mut failed = FailedIds::new();
        assert!(!failed.contains(3));
        assert!(failed.insert(3));
        assert!(!failed.insert(3));
        let mark = failed.mark();
        assert!(failed.insert(4));
        assert!(failed.insert(u128::MAX));
        failed.rollback(mark);
        assert!(failed.contains(3));
        assert!(!failed.contains(4) && !failed.contains(u128::MAX));
        assert_eq!(failed.len(), 1);
        failed.insert(9);
        let rebuilt = FailedIds::from_log(failed.log().clone()).unwrap();
        assert!(rebuilt.log().iter().copied().eq([3, 9]));
        let mut duplicate = failed.log().clone();
        duplicate.push(3);
        assert_eq!(FailedIds::from_log(duplicate).err(), Some(3));
    }
}
