//! Missed ticks: how many samples a time step skipped, so history keeps gaps as gaps.

/// Ticks missed between two samples `dt` seconds apart at an `expected` interval: more than
/// 1.5 intervals since the previous sample means one was missed, 2.5 two, and so on.
pub fn missed_ticks(dt: Option<f64>, expected_s: f64) -> u64 {
    let expected = expected_s.max(1e-3);
    dt.map_or(0, |d| {
        let m = ((d / expected) - 0.5).floor();
        if m.is_finite() && m > 0.0 {
            // A float beyond u64 saturates; NaN and negatives are 0.
            m as u64
        } else {
            0
        }
    })
}

#[cfg(test)]
mod tests {
    use super::missed_ticks;

    #[test]
    fn missed_ticks_counts_whole_intervals_past_one_and_a_half() {
        assert_eq!(missed_ticks(None, 1.0), 0);
        assert_eq!(missed_ticks(Some(1.0), 1.0), 0);
        assert_eq!(missed_ticks(Some(1.49), 1.0), 0);
        assert_eq!(missed_ticks(Some(1.5), 1.0), 1);
        assert_eq!(missed_ticks(Some(3.6), 1.0), 3);
        assert_eq!(missed_ticks(Some(f64::NAN), 1.0), 0);
        assert_eq!(missed_ticks(Some(-5.0), 1.0), 0);
        assert_eq!(missed_ticks(Some(f64::INFINITY), 1.0), 0);
        assert_eq!(missed_ticks(Some(1e30), 1.0), u64::MAX);
    }
}
