//! Secondary indexes for `query_transfers` and `query_accounts`: for each filter field
//! (`user_data_128`, `user_data_64`, `user_data_32`, `ledger`, `code`), the positions of
//! the objects with each value, so a selective filter reads its matches instead of
//! scanning the store.
//!
//! Layout, per field (a [`FieldIndex`]):
//! * `prev[p - base]` is the position of the previous object with the same value as the
//!   object at position `p` (or [`NONE`]): one `u32` per object from the first one with a
//!   non-zero value on. A field nobody sets costs nothing; value 0 means "no filter" in
//!   TigerBeetle's `QueryFilter`, so it is never looked up and never indexed.
//! * `heads` maps a value to its entry: the newest position with it and how many objects
//!   have it.
//! * For a value with more than [`BLOCK_LEN`] objects, `checkpoints` lists the position of
//!   every `BLOCK_LEN`-th one, oldest first. The objects of a value are thereby cut into
//!   blocks of `BLOCK_LEN`, each walked by `prev` from its last object back to its
//!   checkpoint, so reading the `limit` oldest (or newest) matches from any position costs
//!   O(log(count / BLOCK_LEN) + limit + BLOCK_LEN), in either direction.
//!
//! Objects are indexed only between batches, after linked chains are settled
//! ([`QueryIndex::catch_up`]), so the index never needs undoing; a query never runs
//! inside a batch. The index is derived state: it is rebuilt when a snapshot is restored,
//! never written to one. Nothing in it depends on the id hash keys' iteration order.
//!
//! Invariant: for every field, `prev` chains partition the indexed positions with a
//! non-zero value by value, each chain strictly decreasing, its head and count in `heads`,
//! and every `BLOCK_LEN`-th position of a chain (oldest first) in its checkpoints.
//! `check` verifies it.

use std::ops::Range;

use crate::ledger::chunked::ChunkedVec;
use crate::ledger::dedup::IdIndex;

/// No position: the end of a chain.
const NONE: u32 = u32::MAX;

/// Objects per block of a value's chain: the most a query walks past the range it wants.
const BLOCK_LEN: u32 = 32;

/// The fields a query filter can select on, in this order.
pub(super) const FIELDS: usize = 5;

/// A value's entry.
#[derive(Clone, Copy, Debug)]
struct Head {
    /// The newest position with the value.
    newest: u32,
    /// Objects with the value.
    count: u32,
    /// Index into `checkpoints`, or [`NONE`] while the value has one block.
    checkpoints: u32,
}

/// The index of one field.
#[derive(Clone, Debug, Default)]
pub(super) struct FieldIndex {
    /// The first position `prev` covers (the first with a non-zero value).
    base: Option<u32>,
    prev: ChunkedVec<u32>,
    heads: IdIndex<u32>,
    /// Chunked, so that growing it never copies it (a field of unique values has an
    /// entry per object).
    entries: ChunkedVec<Head>,
    checkpoints: Vec<Vec<u32>>,
    /// The last value pushed and its entry: fields like `ledger` and `code` repeat their
    /// value from one object to the next, which then costs no hash lookup.
    last: Option<(u128, u32)>,
}

impl FieldIndex {
    /// Indexes position `position` (the next one) with `value`.
    fn push(&mut self, position: u32, value: u128) {
        let base = match self.base {
            Some(base) => base,
            None if value == 0 => return,
            None => *self.base.insert(position),
        };
        debug_assert_eq!((position - base) as usize, self.prev.len());
        if value == 0 {
            self.prev.push(NONE);
            return;
        }
        let cached = self
            .last
            .filter(|(last, _)| *last == value)
            .map(|(_, entry)| entry);
        let Some(entry) = cached.or_else(|| self.heads.get(value)) else {
            self.last = Some((value, self.entries.len() as u32));
            self.heads.insert(value, self.entries.len() as u32);
            self.entries.push(Head {
                newest: position,
                count: 1,
                checkpoints: NONE,
            });
            self.prev.push(NONE);
            return;
        };
        self.last = Some((value, entry));
        let head = self
            .entries
            .get_mut(entry as usize)
            .expect("heads only hold entries that exist");
        self.prev.push(head.newest);
        head.newest = position;
        head.count += 1;
        if (head.count - 1).is_multiple_of(BLOCK_LEN) {
            // The first object of a new block: its checkpoint.
            if head.checkpoints == NONE {
                head.checkpoints = self.checkpoints.len() as u32;
                let first = self.oldest_of_first_block(entry);
                self.checkpoints.push(vec![first]);
            }
            let list = self.head(entry).checkpoints as usize;
            self.checkpoints[list].push(position);
        }
    }

    /// The oldest position of a value that has exactly one full block plus one object:
    /// walked once, when its checkpoint list is made.
    fn oldest_of_first_block(&self, entry: u32) -> u32 {
        let mut position = self.head(entry).newest;
        loop {
            let previous = self.prev_of(position);
            if previous == NONE {
                return position;
            }
            position = previous;
        }
    }

    fn prev_of(&self, position: u32) -> u32 {
        let Some(base) = self.base else {
            return NONE;
        };
        position
            .checked_sub(base)
            .and_then(|offset| self.prev.get(offset as usize))
            .copied()
            .unwrap_or(NONE)
    }

    /// The entry `entry` (which `heads` handed out).
    fn head(&self, entry: u32) -> Head {
        *self
            .entries
            .get(entry as usize)
            .expect("heads only hold entries that exist")
    }

    /// How many indexed objects have `value`.
    fn count_of(&self, value: u128) -> u32 {
        self.heads
            .get(value)
            .map_or(0, |entry| self.head(entry).count)
    }

    /// Positions with `value` within `range`, oldest first (newest first if `reversed`),
    /// passed to `visit` until it returns false.
    fn visit(
        &self,
        value: u128,
        range: Range<u32>,
        reversed: bool,
        visit: &mut dyn FnMut(u32) -> bool,
    ) {
        let Some(entry) = self.heads.get(value) else {
            return;
        };
        let head = self.head(entry);
        let checkpoints: &[u32] = match head.checkpoints {
            NONE => &[],
            list => &self.checkpoints[list as usize],
        };
        // Block b runs from checkpoints[b] (its oldest) to just before checkpoints[b + 1];
        // with no checkpoints there is one block ending at `newest`.
        let blocks = checkpoints.len().max(1);
        let block_end = |block: usize| match checkpoints.get(block + 1) {
            Some(next) => self.prev_of(*next),
            None => head.newest,
        };
        let block_start = |block: usize| checkpoints.get(block).copied();
        // Walks block `block` newest first, giving the positions within `range`; returns
        // false once `visit` stops or the walk left the range on the far side.
        let walk_block = |block: usize, out: &mut Vec<u32>| {
            out.clear();
            let stop = block_start(block);
            let mut position = block_end(block);
            while position != NONE {
                out.push(position);
                if Some(position) == stop {
                    break;
                }
                position = self.prev_of(position);
            }
        };
        let mut positions = Vec::with_capacity(BLOCK_LEN as usize + 1);
        if reversed {
            // The block holding the newest position below `range.end`.
            let first = checkpoints.partition_point(|p| *p < range.end);
            let mut block = first.saturating_sub(1).min(blocks - 1);
            loop {
                walk_block(block, &mut positions);
                for &position in &positions {
                    if position < range.start {
                        return;
                    }
                    if position < range.end && !visit(position) {
                        return;
                    }
                }
                if block == 0 {
                    return;
                }
                block -= 1;
            }
        } else {
            // The block holding the oldest position at or after `range.start`.
            let first = checkpoints.partition_point(|p| *p <= range.start);
            let mut block = first.saturating_sub(1).min(blocks - 1);
            while block < blocks {
                walk_block(block, &mut positions);
                for &position in positions.iter().rev() {
                    if position >= range.end {
                        return;
                    }
                    if position >= range.start && !visit(position) {
                        return;
                    }
                }
                block += 1;
            }
        }
    }

    fn memory_bytes(&self) -> usize {
        self.prev.memory_bytes()
            + self.heads.memory_bytes()
            + self.entries.memory_bytes()
            + self
                .checkpoints
                .iter()
                .map(|list| list.capacity() * size_of::<u32>() + size_of::<Vec<u32>>())
                .sum::<usize>()
    }

    /// Checks the invariant (module documentation) for `values`, the field's value of every
    /// indexed position in order.
    fn check(&self, values: impl Iterator<Item = u128>) -> Result<(), String> {
        /// What one pass over the objects finds for one value: its newest position, its
        /// count, and every `BLOCK_LEN`-th position, oldest first.
        struct Seen {
            value: u128,
            first: u32,
            newest: u32,
            count: u32,
            /// Empty while the value has one block.
            checkpoints: Vec<u32>,
        }
        let mut index: IdIndex<u32> = IdIndex::new();
        let mut seen: Vec<Seen> = Vec::new();
        for (position, value) in values.enumerate() {
            let position = position as u32;
            if value == 0 {
                if self.base.is_some_and(|base| position >= base) && self.prev_of(position) != NONE
                {
                    return Err(format!("position {position} without a value is chained"));
                }
                continue;
            }
            // Every link must name the previous object with the same value, so the chains
            // are right by induction and need no walk.
            let expected_prev = match index.get(value) {
                Some(entry) => {
                    let found = &mut seen[entry as usize];
                    let previous = found.newest;
                    found.newest = position;
                    if found.count.is_multiple_of(BLOCK_LEN) {
                        if found.checkpoints.is_empty() {
                            found.checkpoints.push(found.first);
                        }
                        found.checkpoints.push(position);
                    }
                    found.count += 1;
                    previous
                }
                None => {
                    index.insert(value, seen.len() as u32);
                    seen.push(Seen {
                        value,
                        first: position,
                        newest: position,
                        count: 1,
                        checkpoints: Vec::new(),
                    });
                    NONE
                }
            };
            if self.prev_of(position) != expected_prev {
                return Err(format!("position {position} has a wrong predecessor"));
            }
        }
        if seen.len() != self.heads.len() || seen.len() != self.entries.len() {
            return Err("the distinct values disagree with the indexed objects".to_string());
        }
        for found in seen {
            let entry = self.heads.get(found.value).ok_or("a value has no entry")?;
            let head = self.head(entry);
            if (head.newest, head.count) != (found.newest, found.count) {
                return Err("a value's newest position or count is wrong".to_string());
            }
            let listed: &[u32] = match head.checkpoints {
                NONE => &[],
                list => &self.checkpoints[list as usize],
            };
            if listed != found.checkpoints.as_slice() {
                return Err("a value's checkpoints are wrong".to_string());
            }
        }
        Ok(())
    }
}

/// The five field indexes of one store (transfers or accounts) and how far they reach.
#[derive(Clone, Debug, Default)]
pub(super) struct QueryIndex {
    fields: [FieldIndex; FIELDS],
    /// Positions indexed so far.
    indexed_len: usize,
}

/// A filter's field values, in [`FIELDS`] order (0: not filtered).
pub(super) type FieldValues = [u128; FIELDS];

/// How a query should read its candidates.
pub(super) enum Plan {
    /// Scan the range of the store.
    Scan,
    /// Walk field `field`'s chain of `value`.
    Field { field: usize, value: u128 },
    /// Some filtered value occurs nowhere: nothing matches.
    Empty,
}

impl QueryIndex {
    /// Indexes every position from `indexed_len` to `len`, reading each object's field
    /// values with `values`. Call between batches only.
    pub(super) fn catch_up(&mut self, len: usize, values: impl Fn(usize) -> FieldValues) {
        for position in self.indexed_len..len {
            let object = values(position);
            for (field, value) in self.fields.iter_mut().zip(object) {
                field.push(position as u32, value);
            }
        }
        self.indexed_len = self.indexed_len.max(len);
    }

    /// Chooses how to answer a filter with `wanted` values over a range of `range_len`
    /// positions: the rarest filtered value's chain, unless scanning the range is cheaper.
    pub(super) fn plan(&self, wanted: &FieldValues, range_len: usize) -> Plan {
        let mut best: Option<(usize, u128, u32)> = None;
        for (field, (&value, index)) in wanted.iter().zip(&self.fields).enumerate() {
            if value == 0 {
                continue;
            }
            let count = index.count_of(value);
            if count == 0 {
                return Plan::Empty;
            }
            if best.is_none_or(|(_, _, best_count)| count < best_count) {
                best = Some((field, value, count));
            }
        }
        match best {
            // Walking a chain reads scattered objects; scanning reads adjacent ones, so
            // a chain must be much shorter to win.
            Some((field, value, count)) if (count as usize).saturating_mul(4) < range_len => {
                Plan::Field { field, value }
            }
            _ => Plan::Scan,
        }
    }

    /// Positions of field `field`'s `value` within `range`, in order, until `visit` stops.
    pub(super) fn visit(
        &self,
        field: usize,
        value: u128,
        range: Range<usize>,
        reversed: bool,
        visit: &mut dyn FnMut(u32) -> bool,
    ) {
        let clamp = |p: usize| u32::try_from(p.min(self.indexed_len)).unwrap_or(u32::MAX);
        if let Some(index) = self.fields.get(field) {
            index.visit(value, clamp(range.start)..clamp(range.end), reversed, visit);
        }
    }

    /// Estimated heap bytes.
    pub(super) fn memory_bytes(&self) -> usize {
        self.fields.iter().map(FieldIndex::memory_bytes).sum()
    }

    /// Checks every field index against the objects' values (`values` of every position,
    /// in order) and that every position is indexed.
    pub(super) fn check(
        &self,
        len: usize,
        values: impl Fn(usize) -> FieldValues,
    ) -> Result<(), String> {
        if self.indexed_len != len {
            return Err(format!(
                "query index covers {} of {len} objects",
                self.indexed_len
            ));
        }
        for (field, index) in self.fields.iter().enumerate() {
            index
                .check((0..len).map(|position| values(position)[field]))
                .map_err(|reason| format!("query index of field {field}: {reason}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: for random values and ranges, visiting a value's positions in either direction
    // gives exactly the positions a scan gives, in order, and `limit` stops it; the index
    // passes its own check.
    #[test]
    fn visits_match_a_scan() {
        let mut random = crate::testing::ledger_gen::Random::new(7);
        for distinct in [1u64, 3, 40, 1000] {
            let values: Vec<FieldValues> = (0..3000)
                .map(|_| {
                    let v = u128::from(random.below(distinct + 1));
                    [v, 0, v % 7, 1, u128::from(random.below(2))]
                })
                .collect();
            let mut index = QueryIndex::default();
            for step in [0, 1, 500, 1999, 3000] {
                index.catch_up(step, |p| values[p]);
            }
            index.check(values.len(), |p| values[p]).unwrap();
            // The check sees a wrong link, count or checkpoint.
            let mut broken = index.clone();
            let field = &mut broken.fields[3];
            if let Some(list) = field.checkpoints.first_mut() {
                list[1] += 1;
                assert!(broken.check(values.len(), |p| values[p]).is_err());
            }
            let mut broken = index.clone();
            if let Some(link) = broken.fields[3].prev.get_mut(2999) {
                *link = NONE;
                assert!(broken.check(values.len(), |p| values[p]).is_err());
            }
            for _ in 0..200 {
                let field = random.below(FIELDS as u64) as usize;
                let value = values[random.below(3000) as usize][field];
                let a = random.below(3001) as usize;
                let b = random.below(3001) as usize;
                let range = a.min(b)..a.max(b);
                let reversed = random.chance(50);
                let limit = random.below(80) as usize + 1;
                let mut expected: Vec<u32> = range
                    .clone()
                    .filter(|p| value != 0 && values[*p][field] == value)
                    .map(|p| p as u32)
                    .collect();
                if reversed {
                    expected.reverse();
                }
                expected.truncate(limit);
                let mut got = Vec::new();
                index.visit(field, value, range.clone(), reversed, &mut |p| {
                    got.push(p);
                    got.len() < limit
                });
                assert_eq!(
                    got, expected,
                    "field {field} value {value} {range:?} rev {reversed}"
                );
            }
        }
    }
}
