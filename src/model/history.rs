//! Fixed-size ring buffers aligned on display ticks. Gaps are stored as gaps.

use std::collections::VecDeque;

/// A ring buffer of at most `cap` items; the oldest is dropped when full.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    buf: VecDeque<T>,
    cap: usize,
}

impl<T> Ring<T> {
    /// An empty ring holding at most `cap` items (at least 1). Memory grows as items arrive,
    /// never past the bound: a listener seen for a minute costs a minute of history, whatever
    /// the window.
    pub fn new(cap: usize) -> Self {
        Self {
            buf: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// Appends an item, dropping the oldest when full.
    pub fn push(&mut self, v: T) {
        if self.buf.len() >= self.cap {
            self.buf.pop_front();
        } else if self.buf.len() == self.buf.capacity() {
            // Grow by doubling, but never reserve past the bound.
            let want = (self.buf.len() * 2).max(4).min(self.cap);
            self.buf.reserve_exact(want - self.buf.len());
        }
        self.buf.push_back(v);
    }

    /// Items, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.buf.iter()
    }

    /// The newest item.
    pub fn last(&self) -> Option<&T> {
        self.buf.back()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bound.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Heap bytes reserved by the ring.
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity() * std::mem::size_of::<T>()
    }
}

/// Items a [`RunRing`] can store as runs: `same` is equality for that purpose (bitwise for
/// floats, so that two unknown (NaN) readings make one run).
pub trait RunItem: Copy {
    /// True when `other` may extend a run of `self`.
    fn same(&self, other: &Self) -> bool;
}

impl RunItem for Option<f64> {
    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Some(a), Some(b)) => a.to_bits() == b.to_bits(),
            (None, None) => true,
            _ => false,
        }
    }
}

impl RunItem for ListenerPoint {
    fn same(&self, other: &Self) -> bool {
        self.depth == other.depth
            && self.high == other.high
            && self.syn_recv == other.syn_recv
            && self.drops_per_s.to_bits() == other.drops_per_s.to_bits()
    }
}

impl RunItem for ServicePoint {
    fn same(&self, other: &Self) -> bool {
        self == other
    }
}

/// A ring of at most `cap` items stored as runs of equal items, with the same reading API as
/// [`Ring`]: a series that did not change costs one run (a few bytes) whatever the window, so
/// the history of 10,000 quiet listeners is small; a series that changes every tick costs a
/// little more than a [`Ring`] (a count per item).
#[derive(Debug, Clone)]
pub struct RunRing<T: RunItem> {
    runs: VecDeque<(T, u32)>,
    len: usize,
    cap: usize,
}

impl<T: RunItem> RunRing<T> {
    /// An empty ring holding at most `cap` items (at least 1); nothing reserved up front.
    pub fn new(cap: usize) -> Self {
        Self {
            runs: VecDeque::new(),
            len: 0,
            cap: cap.max(1),
        }
    }

    /// Appends an item, dropping the oldest when full. The oldest goes first, so the runs
    /// never need room for more than `cap` items.
    pub fn push(&mut self, v: T) {
        if self.len >= self.cap {
            self.drop_oldest();
        }
        match self.runs.back_mut() {
            Some((last, n)) if last.same(&v) && *n < u32::MAX => *n += 1,
            _ => {
                if self.runs.len() == self.runs.capacity() {
                    let want = (self.runs.len() * 2).max(4).min(self.cap);
                    self.runs
                        .reserve_exact(want.saturating_sub(self.runs.len()).max(1));
                }
                self.runs.push_back((v, 1));
            }
        }
        self.len += 1;
    }

    /// Drops the oldest item.
    fn drop_oldest(&mut self) {
        let Some(front) = self.runs.front_mut() else {
            return;
        };
        front.1 -= 1;
        if front.1 == 0 {
            self.runs.pop_front();
            // A busy series that went quiet gives its room back.
            if self.runs.capacity() > 16 && self.runs.len() * 4 < self.runs.capacity() {
                self.runs.shrink_to(self.runs.len() * 2);
            }
        }
        self.len -= 1;
    }

    /// Items, oldest first.
    pub fn iter(&self) -> RunIter<'_, T> {
        RunIter {
            runs: self.runs.iter(),
            front: None,
            back: None,
            len: self.len,
        }
    }

    /// The newest item.
    pub fn last(&self) -> Option<&T> {
        self.runs.back().map(|(v, _)| v)
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bound.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Number of runs stored.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Heap bytes reserved by the ring.
    pub fn heap_bytes(&self) -> usize {
        self.runs.capacity() * std::mem::size_of::<(T, u32)>()
    }
}

/// The items of a [`RunRing`], oldest first (double-ended, exact size).
#[derive(Debug, Clone)]
pub struct RunIter<'a, T> {
    runs: std::collections::vec_deque::Iter<'a, (T, u32)>,
    /// The run being walked from the front, and how many of its items are left.
    front: Option<(&'a T, u32)>,
    back: Option<(&'a T, u32)>,
    len: usize,
}

impl<'a, T> Iterator for RunIter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        if self.len == 0 {
            return None;
        }
        if self.front.is_none_or(|(_, n)| n == 0) {
            self.front = match self.runs.next() {
                Some((v, n)) => Some((v, *n)),
                None => self.back.take(),
            };
        }
        let (v, n) = self.front.as_mut()?;
        *n -= 1;
        self.len -= 1;
        Some(*v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }
}

impl<T> DoubleEndedIterator for RunIter<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.len == 0 {
            return None;
        }
        if self.back.is_none_or(|(_, n)| n == 0) {
            self.back = match self.runs.next_back() {
                Some((v, n)) => Some((v, *n)),
                None => self.front.take(),
            };
        }
        let (v, n) = self.back.as_mut()?;
        *n -= 1;
        self.len -= 1;
        Some(*v)
    }
}

impl<T> ExactSizeIterator for RunIter<'_, T> {}

/// One tick of one listener, compact (16 bytes) so that 1,000 listeners × 15 minutes stay small.
/// A gap (no sample, or the listener absent) has `depth == GAP`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListenerPoint {
    /// Accept-queue depth at the tick.
    pub depth: u32,
    /// Highest depth seen since the previous tick (fast sampler).
    pub high: u32,
    /// SYN-RECV requests matched to the listener (saturated at u32::MAX).
    pub syn_recv: u32,
    /// Drops per second from the listener's own counter; NaN when unknown.
    pub drops_per_s: f32,
}

/// Marker of a gap in [`ListenerPoint::depth`].
pub const GAP: u32 = u32::MAX;

impl ListenerPoint {
    /// A gap.
    pub const fn gap() -> Self {
        Self {
            depth: GAP,
            high: GAP,
            syn_recv: 0,
            drops_per_s: f32::NAN,
        }
    }

    /// True for a gap.
    pub fn is_gap(&self) -> bool {
        self.depth == GAP
    }
}

/// One tick of one listener's children, compact (12 bytes): what the detail view charts.
/// Kept in its own ring, made only once the listener has service numbers; a gap (no service
/// numbers at that tick) has `in_service == GAP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServicePoint {
    /// Accepted connections (ESTABLISHED with an inode), saturated below `GAP`.
    pub in_service: u32,
    /// Accepted connections with unread bytes.
    pub unread_conns: u32,
    /// CLOSE-WAIT children the process holds (those still in the accept queue left out).
    pub close_wait: u32,
}

impl ServicePoint {
    /// A gap.
    pub const fn gap() -> Self {
        Self {
            in_service: GAP,
            unread_conns: 0,
            close_wait: 0,
        }
    }

    /// The point of one listener's service numbers.
    pub fn of(s: &super::ServiceStats) -> Self {
        let c = |v: u64| u32::try_from(v).unwrap_or(GAP - 1).min(GAP - 1);
        Self {
            in_service: c(s.in_service),
            unread_conns: c(s.unread_conns),
            close_wait: c(s.close_wait.saturating_sub(s.close_wait_unaccepted)),
        }
    }

    /// True for a gap.
    pub fn is_gap(&self) -> bool {
        self.in_service == GAP
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A RunRing reads exactly as a Ring fed the same items, both ways and by length.
    fn same_as_ring<T: RunItem + std::fmt::Debug>(items: &[T], cap: usize, eq: fn(&T, &T) -> bool) {
        let mut plain = Ring::new(cap);
        let mut runs = RunRing::new(cap);
        for (i, &v) in items.iter().enumerate() {
            plain.push(v);
            runs.push(v);
            assert_eq!(runs.len(), plain.len(), "after {i}");
            assert!(eq(runs.last().unwrap(), plain.last().unwrap()));
            let a: Vec<&T> = runs.iter().collect();
            let b: Vec<&T> = plain.iter().collect();
            assert!(a.iter().zip(&b).all(|(x, y)| eq(x, y)) && a.len() == b.len());
            let a: Vec<&T> = runs.iter().rev().collect();
            let b: Vec<&T> = plain.iter().rev().collect();
            assert!(a.iter().zip(&b).all(|(x, y)| eq(x, y)) && a.len() == b.len());
            assert_eq!(runs.iter().len(), plain.len());
            // Mixed ends meet without loss or repeat.
            let mut it = runs.iter();
            let mut seen = 0;
            while it.next().is_some() {
                seen += 1;
                if it.next_back().is_some() {
                    seen += 1;
                }
            }
            assert_eq!(seen, plain.len());
        }
    }

    #[test]
    fn run_ring_reads_like_a_ring() {
        let mut x: u32 = 7;
        let mut items = Vec::new();
        for i in 0..400u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            // Runs of 1 to 8 equal values, NaN and None among them.
            let v = if (x >> 20) % 5 == 0 {
                None
            } else {
                Some(f64::from((x >> 24) % 3))
            };
            for _ in 0..=(x >> 28) % 8 {
                items.push(v);
            }
            if i % 50 == 0 {
                items.push(Some(f64::NAN));
                items.push(Some(f64::NAN));
            }
        }
        let bits = |a: &Option<f64>, b: &Option<f64>| a.map(f64::to_bits) == b.map(f64::to_bits);
        for cap in [1, 2, 7, 100, 5000] {
            same_as_ring(&items, cap, bits);
        }
        let points: Vec<ListenerPoint> = items
            .iter()
            .map(|v| ListenerPoint {
                depth: v.map_or(GAP, |d| d as u32),
                high: 3,
                syn_recv: 0,
                drops_per_s: v.map_or(f32::NAN, |d| d as f32),
            })
            .collect();
        let same = |a: &ListenerPoint, b: &ListenerPoint| a.same(b);
        same_as_ring(&points, 60, same);
    }

    #[test]
    fn a_full_run_ring_of_distinct_items_holds_no_more_than_its_capacity() {
        // Found by tests/engine_props.rs: a new run was reserved before the oldest went, one
        // run over the capacity.
        for cap in 1..8usize {
            let mut r = RunRing::new(cap);
            for i in 0..100u64 {
                r.push(Some(i as f64));
                assert!(r.len() <= cap);
                assert!(
                    r.heap_bytes() <= cap * std::mem::size_of::<(Option<f64>, u32)>(),
                    "cap {cap}: {} bytes after {i}",
                    r.heap_bytes()
                );
            }
            let items: Vec<Option<f64>> = r.iter().copied().collect();
            let want: Vec<Option<f64>> = (100 - cap as u64..100).map(|i| Some(i as f64)).collect();
            assert_eq!(items, want);
        }
    }

    #[test]
    fn a_series_that_does_not_change_costs_one_run() {
        let mut r = RunRing::new(900);
        for _ in 0..10_000 {
            r.push(ListenerPoint {
                depth: 0,
                high: 0,
                syn_recv: 0,
                drops_per_s: f32::NAN,
            });
        }
        assert_eq!((r.len(), r.runs()), (900, 1));
        assert!(r.heap_bytes() <= 4 * 20, "{}", r.heap_bytes());
        // Busy for a while, then quiet for the whole window: the room goes back.
        for i in 0..900 {
            r.push(ListenerPoint {
                depth: i,
                ..ListenerPoint::gap()
            });
        }
        assert_eq!(r.runs(), 900);
        for _ in 0..900 {
            r.push(ListenerPoint::gap());
        }
        assert_eq!(r.runs(), 1);
        assert!(r.heap_bytes() <= 64 * 20, "{}", r.heap_bytes());
    }

    /// A listener's children that did not change (the service sparklines of a quiet listener)
    /// cost one run, not 12 bytes a tick; a change and a gap each start a run.
    #[test]
    fn quiet_service_points_cost_one_run() {
        let p = ServicePoint {
            in_service: 3,
            unread_conns: 1,
            close_wait: 0,
        };
        let mut r = RunRing::new(900);
        for _ in 0..2_000 {
            r.push(p);
        }
        assert_eq!((r.len(), r.runs()), (900, 1));
        r.push(ServicePoint { close_wait: 1, ..p });
        r.push(ServicePoint::gap());
        assert_eq!(r.runs(), 3);
        assert!(r.last().is_some_and(ServicePoint::is_gap));
    }

    #[test]
    fn ring_keeps_the_newest_and_never_grows_past_its_bound() {
        let mut r = Ring::new(3);
        assert_eq!(r.heap_bytes(), 0, "nothing reserved up front");
        for i in 0..10 {
            r.push(i);
        }
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![7, 8, 9]);
        assert_eq!(r.last(), Some(&9));
        assert!(
            r.heap_bytes() <= 4 * std::mem::size_of::<i32>(),
            "{}",
            r.heap_bytes()
        );
        let mut big = Ring::new(1_000_000);
        for i in 0..10u64 {
            big.push(i);
        }
        assert!(
            big.heap_bytes() <= 16 * 8,
            "grows with the items: {}",
            big.heap_bytes()
        );
        assert_eq!(std::mem::size_of::<ListenerPoint>(), 16);
        assert_eq!(std::mem::size_of::<ServicePoint>(), 12);
    }

    #[test]
    fn a_service_point_saturates_below_the_gap_marker() {
        let s = crate::model::ServiceStats {
            in_service: u64::MAX,
            unread_conns: 7,
            close_wait: 9,
            close_wait_unaccepted: 2,
            ..crate::model::ServiceStats::default()
        };
        let p = ServicePoint::of(&s);
        assert!(!p.is_gap());
        assert_eq!(
            (p.in_service, p.unread_conns, p.close_wait),
            (GAP - 1, 7, 7)
        );
        assert!(ServicePoint::gap().is_gap());
    }
}
