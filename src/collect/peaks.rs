//! Depth ranges between ticks: the highest and lowest accept-queue depth the fast poll saw of
//! each listener it read, and how many readings (shared by the sampler and the fleet's workers).

use crate::model::{DepthRange, FastMap, ListenerKey};

/// Tracks depth ranges between ticks.
#[derive(Debug, Default)]
pub(super) struct Peaks {
    ranges: FastMap<ListenerKey, (u32, u32, u32)>,
}

impl Peaks {
    /// One reading of a listener's depth.
    pub(super) fn see(&mut self, key: ListenerKey, depth: u32) {
        let e = self.ranges.entry(key).or_insert((depth, depth, 0));
        e.0 = e.0.max(depth);
        e.1 = e.1.min(depth);
        e.2 += 1;
    }

    /// Whether the listener was read since the last [`Self::take`].
    pub(super) fn has(&self, key: &ListenerKey) -> bool {
        self.ranges.contains_key(key)
    }

    /// The most readings any listener got since the last [`Self::take`].
    pub(super) fn most_readings(&self) -> u32 {
        self.ranges.values().map(|p| p.2).max().unwrap_or(0)
    }

    /// The ranges since the last call, by key; starts over.
    pub(super) fn take(&mut self) -> Vec<DepthRange> {
        let mut v: Vec<DepthRange> = self
            .ranges
            .drain()
            .map(|(key, (high, low, readings))| DepthRange {
                key,
                high,
                low,
                readings,
            })
            .collect();
        v.sort_by_key(|r| r.key);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_keep_high_and_low_between_ticks() {
        let mut p = Peaks::default();
        let k = ListenerKey {
            inode: 1,
            cookie: 2,
        };
        for d in [0, 3, 5, 1, 2] {
            p.see(k, d);
        }
        let r = p.take();
        assert_eq!(
            r,
            vec![DepthRange {
                key: k,
                high: 5,
                low: 0,
                readings: 5
            }]
        );
        assert!(p.take().is_empty());
    }

    #[test]
    fn most_readings_is_the_busiest_listeners_count() {
        let mut p = Peaks::default();
        assert_eq!(p.most_readings(), 0);
        let k = |inode| ListenerKey { inode, cookie: 0 };
        p.see(k(1), 4);
        p.see(k(2), 4);
        p.see(k(2), 9);
        assert!(p.has(&k(2)) && !p.has(&k(3)));
        assert_eq!(p.most_readings(), 2);
    }
}
