//! The exact idempotency index: a keyed hash for client-chosen `u128` ids
//! ([`IdBuildHasher`]), an exact open-addressing map from ids to small values
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
//! Complexity: `get`, `insert`, `remove`, `contains` are expected O(1). A large index is
//! 256 partitions chosen by the hash's top bits, each its own table; growth doubles one
//! partition and rehashes its entries (amortized O(1) per insert; a pause of O(n / 256)).
//! Below 65,536 entries the index is one table, and it splits once when it reaches that.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use crate::ledger::chunked::ChunkedVec;

/// The full 128-bit product of `a` and `b`, folded to 64 bits by XOR of its halves.
const fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = (a as u128) * (b as u128);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Four random per-process keys, and the keyed hash of a `u128` id under them.
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

    /// Hashes one id.
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

/// A value an [`IdIndex`] can hold: at most four bytes, stored little-endian
/// in the bucket.
pub trait IndexValue: Copy + Default {
    /// Writes the value into four bytes.
    fn encode(self) -> [u8; 4];
    /// Reads a value written by `encode`.
    fn decode(bytes: [u8; 4]) -> Self;
}

impl IndexValue for u32 {
    fn encode(self) -> [u8; 4] {
        self.to_le_bytes()
    }
    fn decode(bytes: [u8; 4]) -> Self {
        u32::from_le_bytes(bytes)
    }
}

impl IndexValue for () {
    fn encode(self) -> [u8; 4] {
        [0; 4]
    }
    fn decode(_: [u8; 4]) -> Self {}
}

/// One table bucket: the key as four little-endian `u32` words (all zero
/// when empty) and the value's word: 20 bytes, no padding.
type Bucket = [u32; BUCKET_WORDS];
const BUCKET_WORDS: usize = 5;
const BUCKET_BYTES: usize = BUCKET_WORDS * 4;
const KEY_WORDS: usize = 4;

const EMPTY_KEY: [u32; KEY_WORDS] = [0; KEY_WORDS];

#[inline]
fn key_words(id: u128) -> [u32; KEY_WORDS] {
    [
        id as u32,
        (id >> 32) as u32,
        (id >> 64) as u32,
        (id >> 96) as u32,
    ]
}

#[inline]
fn id_of(bucket: &Bucket) -> u128 {
    u128::from(bucket[0])
        | u128::from(bucket[1]) << 32
        | u128::from(bucket[2]) << 64
        | u128::from(bucket[3]) << 96
}

#[inline]
fn is_empty_bucket(bucket: &Bucket) -> bool {
    bucket[..KEY_WORDS] == EMPTY_KEY
}

#[inline]
fn value_of<V: IndexValue>(bucket: &Bucket) -> V {
    V::decode(bucket[KEY_WORDS].to_le_bytes())
}

#[inline]
fn bucket_for<V: IndexValue>(id: u128, value: V) -> Bucket {
    let [a, b, c, d] = key_words(id);
    [a, b, c, d, u32::from_le_bytes(value.encode())]
}

/// A table of `len` empty buckets.
fn empty_table(len: usize) -> Table {
    Table::zeroed(len)
}

/// Bucket storage. Small tables live on the heap. Large ones are anonymous memory,
/// zero-filled by the operating system on first touch, with a request for transparent huge
/// pages: large tables are probed at random positions, so with 4 KiB pages nearly every
/// insert into a freshly grown table takes a page fault (a few microseconds each here);
/// 2 MiB pages make that 512 times rarer, and spare most TLB misses of lookups too. Where
/// huge pages are unavailable this is ordinary memory.
enum Table {
    Heap(Vec<Bucket>),
    Map(memmap2::MmapMut),
}

/// Tables of at least this many bytes are mapped rather than allocated.
const MAPPED_TABLE_BYTES_MIN: usize = 1 << 20;

impl Table {
    fn zeroed(len: usize) -> Table {
        if len * BUCKET_BYTES < MAPPED_TABLE_BYTES_MIN {
            return Table::Heap(vec![[0u32; BUCKET_WORDS]; len]);
        }
        // Failing to map memory is running out of memory, which a `Vec`
        // would abort on too.
        // Populated up front: every page of a table is touched soon anyway (its
        // buckets are hit at random), and the kernel zeroing them all in one call
        // costs a fraction of taking one fault per page.
        let map = memmap2::MmapOptions::new()
            .len(len * BUCKET_BYTES)
            .populate()
            .map_anon()
            .expect("out of memory for the id index");
        #[cfg(target_os = "linux")]
        {
            // Advice only: without huge pages the table still works.
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        Table::Map(map)
    }
}

impl std::ops::Deref for Table {
    type Target = [Bucket];
    fn deref(&self) -> &[Bucket] {
        match self {
            Table::Heap(buckets) => buckets,
            // The map is page-aligned and a whole number of buckets long,
            // which `cast_slice` checks.
            Table::Map(map) => bytemuck::cast_slice(&map[..]),
        }
    }
}

impl std::ops::DerefMut for Table {
    fn deref_mut(&mut self) -> &mut [Bucket] {
        match self {
            Table::Heap(buckets) => buckets,
            Table::Map(map) => bytemuck::cast_slice_mut(&mut map[..]),
        }
    }
}

impl Clone for Table {
    fn clone(&self) -> Table {
        let mut copy = Table::zeroed(self.len());
        copy.copy_from_slice(self);
        copy
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("buckets", &self.len())
            .finish()
    }
}

/// The smallest non-empty table.
const BUCKETS_MIN: usize = 16;

/// Finds `id` (with hash `hash`) in `buckets`: `Ok` with its position, or
/// `Err` with the empty bucket ending its probe run.
#[inline]
fn find_in(buckets: &[Bucket], hash: u64, id: u128) -> Result<usize, usize> {
    let key = key_words(id);
    let mask = buckets.len().wrapping_sub(1);
    let mut position = (hash as usize) & mask;
    // The load stays below 1, so the probe meets an empty bucket within one lap.
    for _ in 0..buckets.len() {
        match buckets.get(position) {
            Some(bucket) if bucket[..KEY_WORDS] == key => return Ok(position),
            Some(bucket) if is_empty_bucket(bucket) => return Err(position),
            _ => position = (position + 1) & mask,
        }
    }
    Err(usize::MAX)
}

/// Bits of the hash that choose a partition (its top bits) once an index is large.
const PART_BITS: u32 = 8;
/// Partitions of a large [`IdIndex`]: each grows on its own, so a doubling
/// rehashes 1/256 of the entries (about a millisecond at ten million ids)
/// instead of all of them at once (half a second, the worst batch latency
/// of the ledger before). Partitions fill at nearly the same rate, but the
/// random spread of their fill spreads their doublings over dozens of
/// batches.
const PARTS: usize = 1 << PART_BITS;
/// Entries at which a one-table index splits into [`PARTS`] partitions (a pause of a few
/// milliseconds, once). Below it one table is faster: no partition to find, and a small
/// index is hot in the cache anyway.
const SPLIT_ENTRIES: usize = 1 << 16;
/// A partition past 3/4 load grows only once the index has taken `len / this` inserts since
/// the last growth (see `IdIndex::growth_due`).
const GROWTH_SPACING_DIVISOR: usize = 4096;

/// One partition: a power-of-two table of buckets, or none before its
/// first insert.
#[derive(Clone, Debug)]
struct Part {
    buckets: Table,
    /// Occupied buckets.
    occupied: usize,
}

/// An exact map from `u128` ids to small values, keyed-hashed and open-addressed, in
/// [`PARTS`] partitions chosen by the hash's top bits.
#[derive(Clone, Debug)]
pub struct IdIndex<V> {
    /// The partitions: none before the first insert, then one, then [`PARTS`].
    parts: Vec<Part>,
    /// A hash's partition is `hash >> part_shift` (64: the only one).
    part_shift: u32,
    /// Inserts so far (wrapping), and their count when a partition last grew.
    inserts: usize,
    last_growth_at: usize,
    /// The number of occupied buckets (the entry for id 0 is not counted here).
    occupied: usize,
    /// The value of id 0, which cannot live in the table because 0 marks empty buckets.
    zero_value: Option<V>,
    hasher: IdBuildHasher,
}

impl<V: IndexValue> Default for IdIndex<V> {
    fn default() -> Self {
        Self::new()
    }
}

/// The partition of a hash when partitions are chosen by `hash >> shift`.
#[inline]
fn part_of(hash: u64, shift: u32) -> usize {
    hash.checked_shr(shift).unwrap_or(0) as usize
}

impl<V: IndexValue> IdIndex<V> {
    /// Returns an empty index with fresh hash keys.
    pub fn new() -> Self {
        Self {
            parts: Vec::new(),
            part_shift: 64,
            inserts: 0,
            last_growth_at: 0,
            occupied: 0,
            zero_value: None,
            hasher: IdBuildHasher::new(),
        }
    }

    /// Returns an empty index that holds `entries` entries without growing.
    pub fn with_capacity(entries: usize) -> Self {
        let mut index = Self::new();
        index.reserve(entries);
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

    /// Entries one of `parts` partitions should have room for when the index holds
    /// `entries`: its fair share plus a margin for the random spread.
    fn part_share(entries: usize, parts: usize) -> usize {
        if parts == 1 {
            return entries;
        }
        let share = entries.div_ceil(parts);
        share.saturating_add(share / 16).saturating_add(32)
    }

    /// Grows the tables, if needed, so that `additional` more entries fit
    /// without growing (for an even spread over the partitions, which the
    /// keyed hash gives; a partition that gets more grows on its own).
    pub fn reserve(&mut self, additional: usize) {
        if additional == 0 {
            return;
        }
        let entries = self.occupied.saturating_add(additional);
        self.ensure_parts();
        if entries >= SPLIT_ENTRIES {
            self.split();
        }
        let target = Self::buckets_for(Self::part_share(entries, self.parts.len()));
        for part in 0..self.parts.len() {
            if target > self.parts[part].buckets.len() {
                self.grow_part(part, target);
            }
        }
    }

    /// Makes the one partition (an empty table) on first use.
    fn ensure_parts(&mut self) {
        if self.parts.is_empty() {
            self.parts.push(Part {
                buckets: Table::zeroed(0),
                occupied: 0,
            });
        }
    }

    /// Splits a one-table index into [`PARTS`] partitions, each sized for its share.
    fn split(&mut self) {
        if self.parts.len() == PARTS {
            return;
        }
        let old = std::mem::take(&mut self.parts);
        let target = Self::buckets_for(Self::part_share(self.occupied, PARTS));
        self.parts = (0..PARTS)
            .map(|_| Part {
                buckets: empty_table(target),
                occupied: 0,
            })
            .collect();
        self.part_shift = 64 - PART_BITS;
        for part in &old {
            for bucket in part
                .buckets
                .iter()
                .filter(|bucket| !is_empty_bucket(bucket))
            {
                let hash = self.hasher.hash_id(id_of(bucket));
                let index = part_of(hash, self.part_shift);
                let len = self.parts[index].buckets.len();
                if (self.parts[index].occupied + 1) * 4 > len * 3 {
                    self.grow_part(index, len * 2);
                }
                let slot = &mut self.parts[index];
                let position =
                    find_in(&slot.buckets, hash, id_of(bucket)).expect_err("an id is stored once");
                slot.buckets[position] = *bucket;
                slot.occupied += 1;
            }
        }
    }

    /// Returns the number of entries.
    pub fn len(&self) -> usize {
        self.occupied + usize::from(self.zero_value.is_some())
    }

    /// Returns the partition of `id` and its bucket holding `id` (non-zero), or `Err` with
    /// the empty bucket that ends its probe sequence, where it would be inserted. `None`
    /// if the partition has no table yet.
    #[inline]
    fn find(&self, id: u128) -> Option<(usize, Result<usize, usize>)> {
        let hash = self.hasher.hash_id(id);
        let part = part_of(hash, self.part_shift);
        let buckets = &self.parts.get(part)?.buckets;
        if buckets.is_empty() {
            return None;
        }
        Some((part, find_in(buckets, hash, id)))
    }

    /// Returns the value stored for `id`, if any.
    #[inline]
    pub fn get(&self, id: u128) -> Option<V> {
        if id == 0 {
            return self.zero_value;
        }
        let (part, Ok(position)) = self.find(id)? else {
            return None;
        };
        self.parts[part].buckets.get(position).map(value_of)
    }

    /// Reads the first bucket `id` probes and returns a value derived from it, so that a
    /// lookup of `id` soon after hits the cache. Callers issue several of these back to back
    /// (passing the results to `std::hint::black_box`) so that the cache misses overlap
    /// instead of stalling one lookup at a time. The result means nothing and must not
    /// influence any decision.
    #[inline]
    pub fn warm(&self, id: u128) -> u64 {
        let hash = self.hasher.hash_id(id);
        let Some(part) = self.parts.get(part_of(hash, self.part_shift)) else {
            return 0;
        };
        let mask = part.buckets.len().wrapping_sub(1);
        part.buckets
            .get((hash as usize) & mask)
            .map_or(0, |bucket| u64::from(bucket[0]) ^ u64::from(bucket[3]))
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
        self.ensure_parts();
        if self.occupied + 1 >= SPLIT_ENTRIES && self.parts.len() == 1 {
            self.split();
        }
        let hash = self.hasher.hash_id(id);
        let part = part_of(hash, self.part_shift);
        if self.growth_due(part) {
            let len = self.parts[part].buckets.len();
            self.grow_part(part, (len * 2).max(BUCKETS_MIN));
            self.last_growth_at = self.inserts;
        }
        self.inserts = self.inserts.wrapping_add(1);
        let slot = &mut self.parts[part];
        match find_in(&slot.buckets, hash, id) {
            Ok(position) => {
                let bucket = slot.buckets.get_mut(position)?;
                let replaced = value_of(bucket);
                *bucket = bucket_for(id, value);
                Some(replaced)
            }
            Err(position) => {
                if let Some(bucket) = slot.buckets.get_mut(position) {
                    *bucket = bucket_for(id, value);
                    slot.occupied += 1;
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
        let (part, Ok(hole)) = self.find(id)? else {
            return None;
        };
        let value = value_of(self.parts[part].buckets.get(hole)?);
        self.close_hole(part, hole);
        self.parts[part].occupied -= 1;
        self.occupied -= 1;
        Some(value)
    }

    /// Backward-shift deletion: moves later entries of the probe run into the hole whenever
    /// that keeps them reachable from their home bucket, then empties the final hole. This
    /// keeps every probe sequence free of gaps without tombstones.
    fn close_hole(&mut self, part: usize, mut hole: usize) {
        let hasher = self.hasher;
        let buckets = &mut self.parts[part].buckets;
        let mask = buckets.len() - 1;
        let mut position = (hole + 1) & mask;
        while let Some(bucket) = buckets.get(position).copied() {
            if is_empty_bucket(&bucket) {
                break;
            }
            let home = (hasher.hash_id(id_of(&bucket)) as usize) & mask;
            // The entry may move back to the hole when its home is not strictly between the
            // hole and its current position (cyclically).
            if (position.wrapping_sub(home) & mask) >= (position.wrapping_sub(hole) & mask) {
                buckets[hole] = bucket;
                hole = position;
            }
            position = (position + 1) & mask;
        }
        buckets[hole] = [0u32; BUCKET_WORDS];
    }

    /// Whether partition `part` must grow before one more entry goes in. Past 3/4 load it
    /// may; past 13/16 it must. In between, a partition grows only if no other grew in the
    /// last `len / GROWTH_SPACING_DIVISOR` inserts. Partitions fill at the same rate, so
    /// without the spacing they all reached 3/4 within a few batches and grew together: up
    /// to 30 ms of rehashing in one batch at six million ids. The window from 3/4 to 13/16
    /// holds about `len / 12` inserts, room for over 300 spaced growths, more than there
    /// are partitions, so the hard limit is rarely what triggers a growth.
    fn growth_due(&self, part: usize) -> bool {
        let slot = &self.parts[part];
        let len = slot.buckets.len();
        let after = slot.occupied + 1;
        if after * 4 <= len * 3 {
            return false;
        }
        let spacing = (self.occupied / GROWTH_SPACING_DIVISOR).max(1);
        self.parts.len() == 1
            || after * 16 > len * 13
            || self.inserts.wrapping_sub(self.last_growth_at) >= spacing
    }

    /// Moves every entry of partition `part` into a new table of `new_len` buckets, a power
    /// of two larger than its current one.
    ///
    /// All at once within the partition: moving entries a few per insert
    /// instead (tried, over the whole index) made every lookup during the
    /// move probe two tables, which cost about a fifth of the throughput.
    /// A partition is 1/256 of the index, so its move is short.
    fn grow_part(&mut self, part: usize, new_len: usize) {
        let hasher = self.hasher;
        let slot = &mut self.parts[part];
        let old = std::mem::replace(&mut slot.buckets, empty_table(new_len));
        let mask = new_len - 1;
        for bucket in old.iter().filter(|bucket| !is_empty_bucket(bucket)) {
            let mut position = (hasher.hash_id(id_of(bucket)) as usize) & mask;
            while !is_empty_bucket(&slot.buckets[position]) {
                position = (position + 1) & mask;
            }
            slot.buckets[position] = *bucket;
        }
    }

    /// Returns the estimated bytes held by the tables.
    pub fn memory_bytes(&self) -> usize {
        self.parts
            .iter()
            .map(|part| part.buckets.len())
            .sum::<usize>()
            * BUCKET_BYTES
    }
}

/// The exact set of transfer ids that failed with a transient status and can never be used
/// again (TigerBeetle's `id_already_failed`).
///
/// The ids are also kept in insertion order in a [`ChunkedVec`], which makes the set cheap to
/// snapshot (see [`FailedIds::log`]) and independent of hash keys when written out.
/// `LedgerState` records a burnt id only after a broken linked chain was rolled back (the
/// burnt id must survive the rollback), so the set is never rolled back itself.
#[derive(Clone, Debug, Default)]
pub struct FailedIds {
    index: IdIndex<()>,
    log: ChunkedVec<u128>,
}

impl FailedIds {
    /// An empty set whose insertion log has chunks of `1 << shift` ids.
    #[cfg(any(test, feature = "internals"))]
    pub fn with_chunk_shift(shift: u32) -> Self {
        Self {
            index: IdIndex::default(),
            log: ChunkedVec::with_chunk_shift(shift),
        }
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
        self.index.contains(id)
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

    // Deterministic, well-spread test ids.
    use crate::rng::mix64 as mix;

    // Goal: IdIndex agrees with std's HashMap over random inserts, replacements and removals,
    // including the ids 0 and u128::MAX and ids differing in one half only.
    #[test]
    fn every_id_stays_visible_while_the_table_grows() {
        // Goal: across growths every id is found with its latest
        // value.
        let mut index = IdIndex::<u32>::new();
        for i in 1..=100_000u32 {
            let id = u128::from(mix(u64::from(i))) << 1 | 1;
            assert_eq!(index.insert(id, i), None);
            let earlier = u128::from(mix(u64::from(i / 2 + 1))) << 1 | 1;
            assert_eq!(index.get(earlier), Some(i / 2 + 1), "after {i} inserts");
            if i % 3 == 0 {
                // Update an id inserted before the latest growth.
                let updated = u128::from(mix(u64::from(i / 3))) << 1 | 1;
                assert_eq!(index.insert(updated, i / 3 + 1_000_000), Some(i / 3));
                assert_eq!(index.insert(updated, i / 3), Some(i / 3 + 1_000_000));
            }
        }
        for i in 1..=100_000u32 {
            assert_eq!(index.get(u128::from(mix(u64::from(i))) << 1 | 1), Some(i));
        }
        assert_eq!(index.len(), 100_000);
        // Past the split into partitions, removals keep every other id reachable.
        for i in (1..=100_000u32).step_by(2) {
            assert_eq!(
                index.remove(u128::from(mix(u64::from(i))) << 1 | 1),
                Some(i)
            );
        }
        for i in 1..=100_000u32 {
            let expected = (i % 2 == 0).then_some(i);
            assert_eq!(index.get(u128::from(mix(u64::from(i))) << 1 | 1), expected);
        }
        assert_eq!(index.len(), 50_000);
    }

    #[test]
    fn reserve_keeps_entries_and_prevents_growth() {
        // Goal: a reserved index keeps what it held and takes the reserved
        // entries without growing again.
        let mut index = IdIndex::<u32>::new();
        for i in 1..=1000u32 {
            index.insert(u128::from(mix(u64::from(i))), i);
        }
        index.reserve(99_000);
        let reserved = index.memory_bytes();
        assert!(reserved >= IdIndex::<u32>::with_capacity(100_000).memory_bytes());
        for i in 1..=1000u32 {
            assert_eq!(index.get(u128::from(mix(u64::from(i)))), Some(i));
        }
        for i in 1001..=100_000u32 {
            index.insert(u128::from(mix(u64::from(i))), i);
        }
        assert_eq!(index.memory_bytes(), reserved, "grew after reserving");
        assert_eq!(index.len(), 100_000);
        // Reserving less than the current room changes nothing.
        index.reserve(1);
        assert_eq!(index.memory_bytes(), reserved);
    }

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

    // Goal: the hash is deterministic under one set of keys and different keys give
    // different hashes.
    #[test]
    fn hash_is_consistent_and_keyed() {
        let builder = IdBuildHasher::new();
        assert_eq!(builder.hash_id(12345), builder.hash_id(12345));
        let other = IdBuildHasher::new();
        assert_ne!(builder.hash_id(1), other.hash_id(1));
    }

    // Goal: FailedIds is exact, keeps insertion order, and rejects duplicates when rebuilt
    // from a log.
    #[test]
    fn failed_ids_insert_contains_rebuild() {
        let mut failed = FailedIds::default();
        assert!(!failed.contains(3));
        assert!(failed.insert(3));
        assert!(!failed.insert(3));
        assert!(failed.insert(9));
        assert!(failed.contains(3) && failed.contains(9) && !failed.contains(4));
        assert_eq!(failed.log().len(), 2);
        let rebuilt = FailedIds::from_log(failed.log().clone()).unwrap();
        assert!(rebuilt.log().iter().copied().eq([3, 9]));
        let mut duplicate = failed.log().clone();
        duplicate.push(3);
        assert_eq!(FailedIds::from_log(duplicate).err(), Some(3));
    }
}
