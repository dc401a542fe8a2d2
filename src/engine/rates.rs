//! Per-second rates of the namespace's TcpExt counters between two samples.

use std::collections::BTreeMap;

use crate::model::rates::{rate, CounterWidth};
use crate::model::Counters;

/// The rate of every counter in `cur`; `None` without a previous sample, on a counter reset,
/// or for a counter the previous sample did not have.
pub fn counter_rates(
    prev: Option<&Counters>,
    cur: &Counters,
    dt: Option<f64>,
) -> BTreeMap<String, Option<f64>> {
    cur.tcp_ext
        .iter()
        .map(|(name, &now)| {
            let r = match (prev, dt) {
                (Some(p), Some(dt)) => p
                    .tcp_ext(name)
                    .and_then(|before| rate(before, now, dt, CounterWidth::Bits64)),
                _ => None,
            };
            (name.clone(), r)
        })
        .collect()
}

/// True when counter `name` rose in this tick.
pub fn moved(rates: &BTreeMap<String, Option<f64>>, name: &str) -> bool {
    rates.get(name).copied().flatten().is_some_and(|r| r > 0.0)
}

/// True when ListenOverflows or ListenDrops moved in this tick.
pub fn overflow_moved(rates: &BTreeMap<String, Option<f64>>) -> bool {
    moved(rates, "ListenOverflows") || moved(rates, "ListenDrops")
}
