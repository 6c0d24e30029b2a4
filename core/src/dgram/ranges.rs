//! A set of `u64` values stored as disjoint, merged half-open ranges: received packet numbers,
//! acknowledged or lost stream byte ranges.
#![allow(dead_code)]

use alloc::collections::BTreeMap;
use core::ops::Range;

/// Disjoint, non-adjacent half-open ranges (`start -> end`, end exclusive). `u64::MAX` itself
/// cannot be a member (ranges end at most at `u64::MAX`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    map: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// The empty set.
    pub(crate) fn new() -> Self {
        RangeSet {
            map: BTreeMap::new(),
        }
    }

    /// Adds `r`; true if any value of it was not in the set yet. Empty ranges add nothing.
    pub(crate) fn insert(&mut self, r: Range<u64>) -> bool {
        if r.start >= r.end {
            return false;
        }
        let (mut start, mut end) = (r.start, r.end);
        if let Some((&s, &e)) = self.map.range(..=start).next_back() {
            if e >= end {
                return false;
            }
            if e >= start {
                start = s;
            }
        }
        // Every range starting inside [start, end] overlaps or touches: absorb it.
        while let Some((&s, &e)) = self.map.range(start..=end).next() {
            self.map.remove(&s);
            end = end.max(e);
        }
        self.map.insert(start, end);
        true
    }

    /// Adds one value; true if it was new. `u64::MAX` is not representable: false.
    pub(crate) fn insert_one(&mut self, v: u64) -> bool {
        match v.checked_add(1) {
            Some(end) => self.insert(v..end),
            None => false,
        }
    }

    /// Whether `v` is in the set.
    pub(crate) fn contains(&self, v: u64) -> bool {
        self.map
            .range(..=v)
            .next_back()
            .is_some_and(|(_, &e)| e > v)
    }

    /// Removes every value of `r`.
    pub(crate) fn remove(&mut self, r: Range<u64>) {
        if r.start >= r.end {
            return;
        }
        if let Some((&s, &e)) = self.map.range(..r.start).next_back()
            && e > r.start
        {
            self.map.insert(s, r.start);
            if e > r.end {
                self.map.insert(r.end, e);
                return;
            }
        }
        while let Some((&s, &e)) = self.map.range(r.start..r.end).next() {
            self.map.remove(&s);
            if e > r.end {
                self.map.insert(r.end, e);
                break;
            }
        }
    }

    /// Whether the set is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of ranges (not values).
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Smallest value.
    pub(crate) fn min(&self) -> Option<u64> {
        self.map.first_key_value().map(|(&s, _)| s)
    }

    /// Largest value.
    pub(crate) fn max(&self) -> Option<u64> {
        self.map.last_key_value().map(|(_, &e)| e - 1)
    }

    /// The ranges, ascending.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = Range<u64>> + '_ {
        self.map.iter().map(|(&s, &e)| s..e)
    }

    /// The ranges, descending.
    pub(crate) fn iter_rev(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.iter().rev()
    }

    /// Removes and returns the lowest range.
    pub(crate) fn pop_min(&mut self) -> Option<Range<u64>> {
        self.map.pop_first().map(|(s, e)| s..e)
    }

    /// Removes every value below `x`.
    pub(crate) fn remove_below(&mut self, x: u64) {
        let mut high = self.map.split_off(&x);
        if let Some((_, &e)) = self.map.last_key_value()
            && e > x
        {
            high.insert(x, e);
        }
        self.map = high;
    }

    /// The parts of `r` not in the set, ascending.
    pub(crate) fn subtract_from(&self, r: Range<u64>) -> impl Iterator<Item = Range<u64>> + '_ {
        let end = r.end;
        let mut cursor = r.start;
        if let Some((_, &e)) = self.map.range(..r.start).next_back() {
            cursor = cursor.max(e);
        }
        let mut inner = self.map.range(r.start..r.end.max(r.start));
        let mut done = cursor >= end;
        core::iter::from_fn(move || {
            while !done {
                match inner.next() {
                    Some((&s, &e)) => {
                        let gap = (s > cursor).then_some(cursor..s);
                        cursor = cursor.max(e);
                        done = cursor >= end;
                        if gap.is_some() {
                            return gap;
                        }
                    }
                    None => {
                        done = true;
                        return Some(cursor..end);
                    }
                }
            }
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn set(ranges: &[Range<u64>]) -> RangeSet {
        let mut s = RangeSet::new();
        for r in ranges {
            s.insert(r.clone());
        }
        s
    }

    #[test]
    fn merges_overlapping_and_adjacent() {
        let mut s = set(&[0..2, 4..6]);
        assert_eq!(s.len(), 2);
        assert!(s.insert(2..4));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0..6]);
        assert!(!s.insert(1..5));
        assert!(!s.insert(3..3));
        assert!(s.insert(8..9));
        assert!(s.insert(5..20));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0..20]);
        assert_eq!((s.min(), s.max()), (Some(0), Some(19)));
    }

    #[test]
    fn remove_splits_and_subtract_gives_gaps() {
        let mut s = set(&[0..10, 20..30]);
        s.remove(3..5);
        s.remove(25..40);
        assert_eq!(s.iter_rev().collect::<Vec<_>>(), [20..25, 5..10, 0..3]);
        let gaps: Vec<_> = s.subtract_from(1..22).collect();
        assert_eq!(gaps, [3..5, 10..20]);
        assert_eq!(s.subtract_from(40..50).collect::<Vec<_>>(), vec![40..50]);
        assert_eq!(s.subtract_from(5..10).count(), 0);
        assert_eq!(s.subtract_from(7..7).count(), 0);
        s.remove_below(7);
        assert_eq!(s.iter().collect::<Vec<_>>(), [7..10, 20..25]);
        assert_eq!(s.pop_min(), Some(7..10));
        assert!(!s.insert_one(u64::MAX));
        assert!(s.insert_one(u64::MAX - 1));
        assert_eq!(s.max(), Some(u64::MAX - 1));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64, u64),
        Remove(u64, u64),
        RemoveBelow(u64),
        PopMin,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..200, 0u64..20).prop_map(|(s, l)| Op::Insert(s, s + l)),
            2 => (0u64..200, 0u64..30).prop_map(|(s, l)| Op::Remove(s, s + l)),
            1 => (0u64..200).prop_map(Op::RemoveBelow),
            1 => Just(Op::PopMin),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Every operation agrees with a BTreeSet of the values, and the ranges stay sorted,
        /// disjoint and non-adjacent.
        #[test]
        fn matches_model(ops in proptest::collection::vec(op(), 0..60), probe in 0u64..230, len in 0u64..40) {
            let mut s = RangeSet::new();
            let mut m = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Insert(a, b) => {
                        let new = (a..b).any(|v| !m.contains(&v));
                        m.extend(a..b);
                        prop_assert_eq!(s.insert(a..b), new);
                    }
                    Op::Remove(a, b) => {
                        s.remove(a..b);
                        m.retain(|v| !(a..b).contains(v));
                    }
                    Op::RemoveBelow(x) => {
                        s.remove_below(x);
                        m.retain(|&v| v >= x);
                    }
                    Op::PopMin => {
                        let r = s.pop_min();
                        if let Some(r) = r {
                            prop_assert_eq!(m.first().copied(), Some(r.start));
                            m.retain(|v| !r.contains(v));
                            prop_assert!(!m.contains(&r.end));
                        } else {
                            prop_assert!(m.is_empty());
                        }
                    }
                }
                let values: Vec<u64> = s.iter().flatten().collect();
                prop_assert_eq!(&values, &m.iter().copied().collect::<Vec<_>>());
                let ranges: Vec<_> = s.iter().collect();
                for w in ranges.windows(2) {
                    prop_assert!(w[0].start < w[0].end && w[0].end < w[1].start);
                }
                prop_assert_eq!(s.min(), m.first().copied());
                prop_assert_eq!(s.max(), m.last().copied());
                prop_assert_eq!(s.is_empty(), m.is_empty());
                prop_assert_eq!(s.contains(probe), m.contains(&probe));
                let gaps: Vec<u64> = s.subtract_from(probe..probe + len).flatten().collect();
                let want: Vec<u64> = (probe..probe + len).filter(|v| !m.contains(v)).collect();
                prop_assert_eq!(gaps, want);
                let rev: Vec<_> = s.iter_rev().collect();
                prop_assert!(rev.iter().rev().eq(ranges.iter()));
            }
        }
    }
}
