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
