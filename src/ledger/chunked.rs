//! `ChunkedVec<T>`: a vector stored as fixed-size chunks, where every full chunk sits behind an
//! `Arc`, so that a snapshot costs one reference-count increment per full chunk plus a copy of
//! the last, partially filled chunk.
//!
//! The ledger keeps its stores in this type: transfers, accounts, pending statuses, balance
//! history and burnt ids. `clone` shares every full chunk and copies the partial `tail` (at
//! most one chunk's elements), so the clone is a frozen snapshot. Appends go to the
//! owned tail, so they cost no atomic operation. Writing an element of a full chunk first
//! copies that chunk if a snapshot still shares it (copy-on-write), which leaves the
//! snapshot untouched.
//!
//! Invariants: every chunk in `full` holds exactly `chunk_len()` elements (a parameter of
//! the vector, `1 << CHUNK_LEN_SHIFT` in production), and `tail` holds fewer. Element `i` therefore
//! lives in chunk `i / chunk_len()` at offset `i % chunk_len()`, and the chunk index
//! `full.len()` is the tail.
//!
//! Complexity: `get`, `get_mut`, `push` are O(1) (plus a one-off chunk copy when a shared
//! full chunk is written). `truncate` by a few elements is O(1) (plus one chunk copy when it
//! reopens a shared full chunk). `clone` is O(len / CHUNK_LEN + CHUNK_LEN).
//! `partition_point` is O(log len).

use std::sync::Arc;

/// Log2 of the number of elements per chunk in production. Random walks of the state
/// machine choose a smaller shift (see `Sizes::SMALL`), so that they cross chunk boundaries
/// all the time: appends that freeze a chunk, writes to shared full chunks, and rollbacks
/// that reopen a frozen chunk.
pub const CHUNK_LEN_SHIFT: u32 = 13;

// In production a chunk holds 8192 elements. For 128-byte records a chunk is 1 MiB: ten
// million records make about 1200 full chunks, which a snapshot clones in microseconds, and
// the tail that a snapshot copies is at most 1 MiB.

/// A chunked vector whose `clone` is a cheap, immutable snapshot.
#[derive(Clone, Debug)]
pub struct ChunkedVec<T> {
    /// Full chunks of exactly `chunk_len()` elements, shared with snapshots.
    full: Vec<Arc<Vec<T>>>,
    /// The last chunk, with fewer than `chunk_len()` elements; owned, so appends are plain.
    tail: Vec<T>,
    /// Log2 of the chunk length: a parameter, fixed for the vector's life.
    shift: u32,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        Self::with_chunk_shift(CHUNK_LEN_SHIFT)
    }
}

impl<T> ChunkedVec<T> {
    /// Returns an empty vector with chunks of `1 << shift` elements (`shift` at most 24).
    pub fn with_chunk_shift(shift: u32) -> Self {
        Self {
            full: Vec::new(),
            tail: Vec::new(),
            shift: shift.min(24),
        }
    }

    /// The number of elements per chunk.
    #[inline]
    pub fn chunk_len(&self) -> usize {
        1 << self.shift
    }

    #[inline]
    fn mask(&self) -> usize {
        self.chunk_len() - 1
    }
}

impl<T: Clone> ChunkedVec<T> {
    /// Returns an empty vector with production-sized chunks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the number of elements.
    pub fn len(&self) -> usize {
        (self.full.len() << self.shift) + self.tail.len()
    }

    /// Returns the element at `index`, if any.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&T> {
        let chunk = index >> self.shift;
        match self.full.get(chunk) {
            Some(full) => full.get(index & self.mask()),
            None if chunk == self.full.len() => self.tail.get(index & self.mask()),
            None => None,
        }
    }

    /// Returns the last element, if any.
    pub fn last(&self) -> Option<&T> {
        self.tail
            .last()
            .or_else(|| self.full.last().and_then(|chunk| chunk.last()))
    }

    /// Returns the element at `index` for writing. An element of a full chunk that a snapshot
    /// shares is written into a private copy of the chunk.
    #[inline]
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        let chunk = index >> self.shift;
        let mask = self.mask();
        if chunk == self.full.len() {
            return self.tail.get_mut(index & mask);
        }
        Arc::make_mut(self.full.get_mut(chunk)?).get_mut(index & mask)
    }

    /// Appends `value`; a tail that becomes full is frozen into a shared chunk.
    #[inline]
    pub fn push(&mut self, value: T) {
        if self.tail.capacity() == 0 {
            self.tail.reserve_exact(self.chunk_len());
        }
        self.tail.push(value);
        if self.tail.len() == self.chunk_len() {
            let tail = std::mem::take(&mut self.tail);
            self.full.push(Arc::new(tail));
        }
    }

    /// Shortens the vector to `new_len` elements; does nothing when it is not longer.
    pub fn truncate(&mut self, new_len: usize) {
        if new_len >= self.len() {
            return;
        }
        let chunks_kept = new_len >> self.shift;
        if chunks_kept < self.full.len() {
            // The chunk holding the new end becomes the tail again; reuse it when no
            // snapshot shares it, otherwise copy it.
            self.full.truncate(chunks_kept + 1);
            if let Some(chunk) = self.full.pop() {
                self.tail = Arc::try_unwrap(chunk).unwrap_or_else(|shared| {
                    let mut copy = Vec::with_capacity(1 << self.shift);
                    copy.extend_from_slice(&shared);
                    copy
                });
            }
        }
        self.tail.truncate(new_len & self.mask());
    }

    /// Returns the chunks in order, as slices; their concatenation is the vector.
    pub fn chunks(&self) -> impl DoubleEndedIterator<Item = &[T]> {
        let tail = Some(self.tail.as_slice()).filter(|tail| !tail.is_empty());
        self.full.iter().map(|chunk| chunk.as_slice()).chain(tail)
    }

    /// Returns an iterator over the elements in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.chunks().flat_map(|chunk| chunk.iter())
    }

    /// Returns the first index whose element does not satisfy `predicate`, assuming the
    /// elements that satisfy it all come first (as `slice::partition_point`).
    pub fn partition_point(&self, mut predicate: impl FnMut(&T) -> bool) -> usize {
        // Find the first full chunk whose last element fails, then search inside it; if
        // every full chunk passes, the answer lies in the tail.
        let chunk_index = self
            .full
            .partition_point(|chunk| chunk.last().is_some_and(&mut predicate));
        let chunk = self
            .full
            .get(chunk_index)
            .map_or(self.tail.as_slice(), |chunk| chunk.as_slice());
        (chunk_index << self.shift) + chunk.partition_point(predicate)
    }

    /// Returns the estimated heap bytes held: the chunk table and every chunk's capacity.
    pub fn memory_bytes(&self) -> usize {
        let table_bytes = self.full.capacity() * size_of::<Arc<Vec<T>>>();
        let arc_header_bytes = 2 * size_of::<usize>() + size_of::<Vec<T>>();
        let full_bytes = self.full.len() * (self.chunk_len() * size_of::<T>() + arc_header_bytes);
        table_bytes + full_bytes + self.tail.capacity() * size_of::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small chunks, so that the tests cross chunk boundaries.
    const CHUNK_LEN: usize = 16;

    fn filled(len: usize) -> ChunkedVec<u64> {
        let mut vector = ChunkedVec::with_chunk_shift(4);
        for value in 0..len as u64 {
            vector.push(value);
        }
        vector
    }

    // Goal: push, get, last and iteration agree with a plain Vec across chunk boundaries.
    #[test]
    fn behaves_like_a_vec_across_chunks() {
        let vector = filled(2 * CHUNK_LEN + 3);
        assert_eq!(vector.len(), 2 * CHUNK_LEN + 3);
        assert_eq!(vector.get(CHUNK_LEN), Some(&(CHUNK_LEN as u64)));
        assert_eq!(vector.get(2 * CHUNK_LEN + 3), None);
        assert_eq!(vector.get(5 * CHUNK_LEN), None);
        assert_eq!(vector.last(), Some(&(2 * CHUNK_LEN as u64 + 2)));
        assert!(vector.iter().copied().eq(0..2 * CHUNK_LEN as u64 + 3));
        assert_eq!(vector.chunks().count(), 3);
        assert_eq!(vector.partition_point(|value| *value < 5), 5);
        assert_eq!(
            vector.partition_point(|value| *value < CHUNK_LEN as u64 + 7),
            CHUNK_LEN + 7
        );
        assert_eq!(
            vector.partition_point(|value| *value < 2 * CHUNK_LEN as u64 + 1),
            2 * CHUNK_LEN + 1
        );
        assert_eq!(vector.partition_point(|_| true), vector.len());
        assert_eq!(ChunkedVec::<u64>::new().partition_point(|_| true), 0);
        let exact = filled(CHUNK_LEN);
        assert_eq!(exact.chunks().count(), 1);
        assert_eq!(exact.last(), Some(&(CHUNK_LEN as u64 - 1)));
        assert_eq!(exact.partition_point(|_| true), CHUNK_LEN);
    }

    // Goal: a clone is a frozen snapshot; writes, pushes and truncations copy shared chunks.
    #[test]
    fn clone_is_a_copy_on_write_snapshot() {
        let mut vector = filled(CHUNK_LEN + 10);
        let snapshot = vector.clone();
        *vector.get_mut(3).unwrap() = 1_000_000;
        *vector.get_mut(CHUNK_LEN + 1).unwrap() = 2_000_000;
        vector.push(7);
        vector.truncate(CHUNK_LEN - 1);
        vector.push(8);
        assert_eq!(snapshot.len(), CHUNK_LEN + 10);
        assert!(snapshot.iter().copied().eq(0..CHUNK_LEN as u64 + 10));
        assert_eq!(vector.get(3), Some(&1_000_000));
        assert_eq!(vector.len(), CHUNK_LEN);
        assert_eq!(vector.last(), Some(&8));
        assert_eq!(vector.chunks().count(), 1);
    }

    // Goal: truncating back into a full chunk that a snapshot shares copies it intact, and
    // into an unshared one reuses it. (The ledger never reaches the copy: a chain's rollback
    // only reopens chunks frozen during that chain, which no snapshot can hold.)
    #[test]
    fn truncate_into_a_shared_full_chunk_copies_it() {
        let mut vector = filled(2 * CHUNK_LEN + 2);
        let snapshot = vector.clone();
        vector.truncate(CHUNK_LEN + 3);
        assert!(vector.iter().copied().eq(0..CHUNK_LEN as u64 + 3));
        vector.push(99);
        assert_eq!(vector.get(CHUNK_LEN + 3), Some(&99));
        assert!(snapshot.iter().copied().eq(0..2 * CHUNK_LEN as u64 + 2));
        drop(snapshot);
        vector.truncate(5);
        assert!(vector.iter().copied().eq(0..5));
    }

    // Goal: truncation to chunk boundaries and to zero keeps the chunk invariant.
    #[test]
    fn truncate_keeps_invariants() {
        let mut vector = filled(2 * CHUNK_LEN);
        vector.truncate(CHUNK_LEN);
        assert_eq!(vector.chunks().count(), 1);
        assert_eq!(vector.len(), CHUNK_LEN);
        vector.push(1);
        assert_eq!(vector.chunks().count(), 2);
        vector.truncate(0);
        assert_eq!(vector.len(), 0);
        assert_eq!(vector.chunks().count(), 0);
        vector.truncate(5);
        assert_eq!(vector.len(), 0);
        vector.push(4);
        assert_eq!(vector.get(0), Some(&4));
        assert!(vector.memory_bytes() >= CHUNK_LEN * 8);
    }
}
