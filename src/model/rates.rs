//! Per-second rates from cumulative counters, safe across resets and wraps.

/// How wide the kernel's counter is, which decides what a decrease means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterWidth {
    /// A 32-bit counter (a listener's `sk_drops`): a decrease from high values is a wrap.
    Bits32,
    /// A 64-bit counter (/proc/net/netstat): a decrease is a reset (e.g. the namespace was
    /// recreated); no rate can be told for that interval.
    Bits64,
}

/// Events counted between two readings of a cumulative counter; `None` when it cannot be told
/// (a reset). A 32-bit counter that went down is taken as one wrap when the fall is more than
/// half its range (a plausible wrap); otherwise as a reset.
pub fn counter_delta(prev: u64, cur: u64, width: CounterWidth) -> Option<u64> {
    if cur >= prev {
        return Some(cur - prev);
    }
    match width {
        CounterWidth::Bits32 => {
            let modulus = 1u64 << 32;
            let (p, c) = (prev % modulus, cur % modulus);
            let wrapped = modulus - p + c;
            (prev < modulus && prev - cur > modulus / 2).then_some(wrapped)
        }
        CounterWidth::Bits64 => None,
    }
}

/// Per-second rate between two readings `dt_s` seconds apart; `None` for a reset or a
/// non-positive interval.
pub fn rate(prev: u64, cur: u64, dt_s: f64, width: CounterWidth) -> Option<f64> {
    if dt_s <= 0.0 || !dt_s.is_finite() {
        return None;
    }
    counter_delta(prev, cur, width).map(|d| d as f64 / dt_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_increase() {
        assert_eq!(rate(10, 40, 2.0, CounterWidth::Bits64), Some(15.0));
        assert_eq!(rate(7, 7, 1.0, CounterWidth::Bits64), Some(0.0));
    }

    #[test]
    fn reset_of_a_64_bit_counter_has_no_rate() {
        assert_eq!(rate(1000, 3, 1.0, CounterWidth::Bits64), None);
    }

    #[test]
    fn wrap_of_a_32_bit_counter_counts_across_the_wrap() {
        let prev = u64::from(u32::MAX) - 4;
        assert_eq!(counter_delta(prev, 5, CounterWidth::Bits32), Some(10));
        // A small fall is a reset (new socket reusing the key), not a wrap.
        assert_eq!(counter_delta(100, 5, CounterWidth::Bits32), None);
    }

    #[test]
    fn zero_or_bad_interval_has_no_rate() {
        assert_eq!(rate(1, 2, 0.0, CounterWidth::Bits64), None);
        assert_eq!(rate(1, 2, f64::NAN, CounterWidth::Bits64), None);
    }
}
