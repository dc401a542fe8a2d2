//! Hash maps for the per-tick paths.
//!
//! Every tick looks up each listener by [`super::ListenerKey`] (or socket inode, or cookie) in
//! several maps: with std's SipHash that was ~8 % of `sockq watch`'s CPU at 10,000 listeners
//! (perf, docs/perf.md). foldhash is hashbrown's own default hasher; it is still seeded per
//! map, and the keys are the kernel's (inodes, cookies), not input.

use std::collections::{HashMap, HashSet};

/// The hasher of [`FastMap`] and [`FastSet`].
pub type FastState = foldhash::fast::RandomState;

/// A `HashMap` with [`FastState`].
pub type FastMap<K, V> = HashMap<K, V, FastState>;

/// A `HashSet` with [`FastState`].
pub type FastSet<K> = HashSet<K, FastState>;

/// An empty [`FastMap`] with room for `n` entries.
pub fn fast_map<K, V>(n: usize) -> FastMap<K, V> {
    FastMap::with_capacity_and_hasher(n, FastState::default())
}

/// An empty [`FastSet`] with room for `n` entries.
pub fn fast_set<K>(n: usize) -> FastSet<K> {
    FastSet::with_capacity_and_hasher(n, FastState::default())
}
