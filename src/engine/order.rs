//! The order of a tick's listeners (current first, then by endpoint), kept from one tick to the
//! next: while the same listeners are listed with the same gone marks, in the same order of the
//! engine's map, the last sort's permutation is applied again instead of sorting 10,000
//! endpoints (string comparisons) every tick.

use std::cmp::Ordering;

use crate::model::{ListenerKey, ListenerTick};

/// The last tick's listed (key, gone) in the map's order, and where each went in the sorted
/// output.
#[derive(Debug, Clone, Default)]
pub struct TickOrder {
    listed: Vec<(ListenerKey, bool)>,
    dest: Vec<u32>,
}

/// Compares the listed entries of this tick, one by one in the map's order, with the last
/// tick's (no copy of them: when they differ, the tick's rows say what they are).
#[derive(Debug)]
pub struct OrderCheck {
    seen: usize,
    same: bool,
}

impl TickOrder {
    /// Starts this tick's comparison.
    pub fn check(&self) -> OrderCheck {
        OrderCheck {
            seen: 0,
            same: true,
        }
    }

    /// The next listed entry of this tick in the map's order.
    pub fn see(&self, check: &mut OrderCheck, key: ListenerKey, gone: bool) {
        check.same &= self.listed.get(check.seen) == Some(&(key, gone));
        check.seen += 1;
    }

    /// Puts `ticks` (listed in the map's order, as `check` saw them) in the tick's order.
    /// `self.listed` is set from them before they are moved.
    pub fn apply(&mut self, check: OrderCheck, ticks: &mut [ListenerTick]) {
        let same = check.same && check.seen == self.listed.len() && ticks.len() == check.seen;
        if !same {
            let mut by_rank: Vec<u32> = (0..ticks.len() as u32).collect();
            by_rank.sort_by(|&a, &b| tick_order(&ticks[a as usize], &ticks[b as usize]));
            let mut dest = vec![0u32; ticks.len()];
            for (rank, &i) in by_rank.iter().enumerate() {
                dest[i as usize] = rank as u32;
            }
            self.listed = ticks.iter().map(|t| (t.key, t.gone)).collect();
            self.dest = dest;
        }
        permute(ticks, &self.dest);
    }
}

/// Current listeners first, then by endpoint; the key breaks ties between the members of an
/// SO_REUSEPORT group (same endpoint), so the order never depends on the map's.
fn tick_order(a: &ListenerTick, b: &ListenerTick) -> Ordering {
    a.gone
        .cmp(&b.gone)
        .then(a.endpoint.cmp(&b.endpoint))
        .then(a.key.cmp(&b.key))
}

/// Moves element `i` of `v` to position `dest[i]` (a permutation of `0..v.len()`), in place.
fn permute<T>(v: &mut [T], dest: &[u32]) {
    let mut dest = dest.to_vec();
    for i in 0..v.len().min(dest.len()) {
        loop {
            let j = dest[i] as usize;
            // A malformed permutation (never built here) stops rather than loops or panics.
            if j == i || j >= v.len() || dest.get(j) == Some(&(j as u32)) {
                break;
            }
            v.swap(i, j);
            dest.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::permute;

    #[test]
    fn permute_moves_each_element_to_its_destination() {
        let mut v = vec!['a', 'b', 'c', 'd', 'e'];
        permute(&mut v, &[3, 0, 4, 1, 2]);
        assert_eq!(v, vec!['b', 'd', 'e', 'a', 'c']);
        let mut id = vec![1, 2, 3];
        permute(&mut id, &[0, 1, 2]);
        assert_eq!(id, vec![1, 2, 3]);
    }
}
