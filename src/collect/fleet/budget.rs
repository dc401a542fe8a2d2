//! One CPU budget over every namespace (pure): busy namespaces are sampled at the interval
//! asked for, quiet ones less often — as often as what the busy ones leave of the budget
//! allows, between the interval asked for and [`super::FleetConfig::max_quiet_interval`].

use std::time::Duration;

/// What one namespace's sampler costs and whether it is busy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemberCost {
    /// CPU seconds its sampler thread spends per full sample (the sample, its fast polls and
    /// its wake-ups since the previous one), as measured at its last tick.
    pub cpu_per_sample_s: f64,
    /// Something happens in it: sampled at the interval asked for.
    pub busy: bool,
}

/// The interval of the quiet namespaces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuietPlan {
    /// Interval of quiet namespaces' full samples.
    pub interval: Duration,
    /// Estimated CPU of all samplers at this plan, in percent of one core.
    pub estimated_percent: f64,
    /// Even at the longest quiet interval the estimate exceeds the budget.
    pub over_budget: bool,
}

/// Steps the quiet interval is rounded up to (fewer changes sent to the samplers).
const STEP: Duration = Duration::from_millis(500);

/// Chooses the quiet interval: the busy namespaces at `base`, the quiet ones at the shortest
/// interval (a multiple of 500 ms, within `base..=max_quiet`) that keeps the estimate within
/// `budget_percent`.
pub fn plan_quiet(
    base: Duration,
    max_quiet: Duration,
    budget_percent: f64,
    members: &[MemberCost],
) -> QuietPlan {
    let base_s = base.as_secs_f64().max(1e-3);
    let max_quiet = max_quiet.max(base);
    let cost = |m: &MemberCost| m.cpu_per_sample_s.max(0.0);
    let busy: f64 = members
        .iter()
        .filter(|m| m.busy)
        .map(|m| cost(m) / base_s)
        .sum();
    let quiet: f64 = members.iter().filter(|m| !m.busy).map(cost).sum();
    let left = budget_percent.max(0.0) / 100.0 - busy;
    let wanted = if quiet <= 0.0 {
        base_s
    } else if left <= 0.0 {
        f64::INFINITY
    } else {
        quiet / left
    };
    let interval = if wanted >= max_quiet.as_secs_f64() {
        max_quiet
    } else {
        let steps = (wanted / STEP.as_secs_f64()).ceil().max(1.0);
        Duration::from_secs_f64(steps * STEP.as_secs_f64()).clamp(base, max_quiet)
    };
    let estimated = busy + quiet / interval.as_secs_f64().max(1e-3);
    QuietPlan {
        interval,
        estimated_percent: estimated * 100.0,
        over_budget: estimated * 100.0 > budget_percent + 1e-9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn quiet(c: f64) -> MemberCost {
        MemberCost {
            cpu_per_sample_s: c,
            busy: false,
        }
    }

    #[test]
    fn cheap_namespaces_all_run_at_the_interval_asked_for() {
        let p = plan_quiet(S(1), S(10), 2.0, &[quiet(0.0001); 30]);
        assert_eq!(p.interval, S(1));
        assert!(!p.over_budget);
        assert!((p.estimated_percent - 0.3).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn quiet_namespaces_slow_down_to_what_the_busy_ones_leave() {
        // 200 quiet namespaces at 1 ms per sample = 0.2 s per round; one busy namespace at
        // 5 ms per second = 0.5 %: the quiet ones share 1.5 %: every 13.3 s → capped at 10 s.
        let mut m = vec![quiet(0.001); 200];
        m.push(MemberCost {
            cpu_per_sample_s: 0.005,
            busy: true,
        });
        let p = plan_quiet(S(1), S(10), 2.0, &m);
        assert_eq!(p.interval, S(10));
        assert!(p.over_budget, "{p:?}");
        // With a 5 % budget: 0.2 / 0.045 = 4.44 s → 4.5 s.
        let p = plan_quiet(S(1), S(10), 5.0, &m);
        assert_eq!(p.interval, Duration::from_millis(4500));
        assert!(!p.over_budget, "{p:?}");
        assert!(p.estimated_percent <= 5.0);
    }

    #[test]
    fn busy_namespaces_over_the_budget_push_the_quiet_ones_to_the_longest_interval() {
        let m = [
            MemberCost {
                cpu_per_sample_s: 0.05,
                busy: true,
            },
            quiet(0.001),
        ];
        let p = plan_quiet(S(1), S(10), 2.0, &m);
        assert_eq!(p.interval, S(10));
        assert!(p.over_budget);
    }
}
