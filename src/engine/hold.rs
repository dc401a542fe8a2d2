//! Findings that hold: a critical finding stays for a short while after its cause stopped,
//! marked with how long ago it cleared, so the screen does not blink between CRIT and "all
//! quiet" every tick while a server hovers at its limit.

use std::collections::HashMap;

use crate::model::{Finding, ListenerKey, Severity};

/// How long a cleared critical finding stays.
pub const HOLD_NS: u64 = 10_000_000_000;

/// The critical findings seen lately, by cause (rule and listener), with when they were last
/// active. Holds at most the findings of the last [`HOLD_NS`].
#[derive(Debug, Clone, Default)]
pub struct Held {
    last: HashMap<(String, Option<ListenerKey>), (Finding, u64)>,
}

impl Held {
    /// Remembers this tick's active critical findings and appends the ones that cleared less
    /// than [`HOLD_NS`] ago, each with `cleared_s` set. A finding about a listener that is no
    /// longer `present` is not held (the listener is shown as gone instead).
    pub fn apply(
        &mut self,
        findings: &mut Vec<Finding>,
        now_ns: u64,
        present: impl Fn(&ListenerKey) -> bool,
    ) {
        for f in findings.iter().filter(|f| f.severity == Severity::Critical) {
            self.last
                .insert((f.rule.clone(), f.key), (f.clone(), now_ns));
        }
        self.last.retain(|(_, key), (_, at)| {
            now_ns.saturating_sub(*at) <= HOLD_NS && key.as_ref().is_none_or(&present)
        });
        let mut cleared: Vec<Finding> = self
            .last
            .iter()
            .filter(|(cause, (_, at))| {
                *at < now_ns
                    && !findings
                        .iter()
                        .any(|f| f.rule == cause.0 && f.key == cause.1)
            })
            .map(|(_, (f, at))| Finding {
                cleared_s: Some(now_ns.saturating_sub(*at) as f64 / 1e9),
                ..f.clone()
            })
            .collect();
        cleared.sort_by(|a, b| a.rule.cmp(&b.rule).then(a.key.cmp(&b.key)));
        findings.extend(cleared);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crit(rule: &str) -> Finding {
        Finding {
            severity: Severity::Critical,
            rule: rule.into(),
            listener: None,
            key: None,
            message: String::new(),
            evidence: Default::default(),
            next: String::new(),
            cleared_s: None,
        }
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_cleared_critical_finding_stays_for_the_hold_then_goes() {
        let mut held = Held::default();
        let mut now = vec![crit("a")];
        held.apply(&mut now, 100 * S, |_| true);
        assert_eq!(now.len(), 1);
        assert!(now[0].is_active());
        let mut next = vec![];
        held.apply(&mut next, 103 * S, |_| true);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].cleared_s, Some(3.0));
        let mut later = vec![];
        held.apply(&mut later, 111 * S, |_| true);
        assert!(later.is_empty(), "{later:?}");
    }

    #[test]
    fn an_active_finding_is_not_doubled_and_warnings_are_not_held() {
        let mut held = Held::default();
        let mut w = crit("w");
        w.severity = Severity::Warning;
        let mut now = vec![crit("a"), w];
        held.apply(&mut now, 100 * S, |_| true);
        let mut again = vec![crit("a")];
        held.apply(&mut again, 101 * S, |_| true);
        assert_eq!(again.len(), 1);
        assert!(again[0].is_active());
    }
}
