//! Every network namespace at once (`--all-netns`): how each namespace is being sampled, how
//! much trouble it is in (the order every view lists namespaces in), the labels a Prometheus
//! series carries for it, and the JSON documents of `snapshot --all-netns --json` and
//! `watch --all-netns --json` (docs/json.md, docs/schema/all-netns*.schema.json).

use std::cmp::Ordering;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::netns::SHORT_ID;
use super::{NetnsRef, Severity, Snapshot, Tick};

/// Version of the `--all-netns` JSON documents (`docs/schema/all-netns.schema.json` and
/// `docs/schema/all-netns-line.schema.json`).
pub const FLEET_SCHEMA_VERSION: u32 = 1;

/// How one namespace is being sampled: quiet namespaces are sampled less often so that the
/// whole stays under one CPU budget.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NetnsSampling {
    /// Interval of its full samples now in force, in milliseconds.
    pub interval_ms: u64,
    /// The interval asked for (--interval), in milliseconds.
    pub interval_asked_ms: u64,
    /// Nothing happens in it (no queued connection, no drop, no SYN-RECV request): it is
    /// sampled every `interval_ms`, which may be longer than asked.
    pub quiet: bool,
    /// Sampled less often than asked (`interval_ms` > `interval_asked_ms`), or its sampler
    /// spaced out its dumps for the budget.
    pub throttled: bool,
    /// Age of its latest sample, in milliseconds; absent before the first.
    pub last_sample_age_ms: Option<u64>,
}

/// The whole fleet's sampling: one CPU budget over every namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FleetSampling {
    /// Namespaces found by the latest discovery.
    pub namespaces: usize,
    /// Namespaces being sampled (the others could not be entered: see `blind_spot`).
    pub sampled: usize,
    /// The CPU budget of all samplers together, in percent of one core.
    pub budget_percent: f64,
    /// What the samplers cost at their current intervals (estimate from their last ticks), in
    /// percent of one core.
    pub estimated_percent: f64,
    /// Namespaces sampled less often than asked because they are quiet.
    pub slowed: usize,
    /// Interval of the quiet namespaces, in milliseconds.
    pub quiet_interval_ms: u64,
    /// Even at the longest quiet interval the estimate is above the budget.
    pub over_budget: bool,
}

/// One namespace in `snapshot --all-netns --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NetnsSnapshot {
    /// Which namespace: its inode, names (ip netns, container, pod, main process) and how it
    /// was entered.
    pub netns: NetnsRef,
    /// The one line a person knows it by (`host`, the ip netns name, `pod NS/NAME`, …).
    pub label: String,
    /// Its sample; absent when it could not be read (`error` says why).
    pub snapshot: Option<Snapshot>,
    /// Why it could not be read.
    pub error: Option<String>,
}

/// `sockq snapshot --all-netns --json`: every network namespace of the host, each with its
/// exact listeners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FleetSnapshot {
    /// Version of this document (docs/schema/all-netns.schema.json).
    pub schema_version: u32,
    /// When discovery ran (RFC 3339, UTC).
    pub time: String,
    /// Namespaces found.
    pub namespaces_found: usize,
    /// What discovery could not see, in one line (absent: it saw everything it looks at).
    pub blind_spot: Option<String>,
    /// Every namespace found: the host first, then by inode.
    pub namespaces: Vec<NetnsSnapshot>,
}

/// One line of `sockq watch --all-netns --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum FleetLine {
    /// A namespace's tick.
    Tick {
        /// Version of this document (docs/schema/all-netns-line.schema.json).
        schema_version: u32,
        /// Which namespace.
        netns: NetnsRef,
        /// Its label.
        label: String,
        /// How it is being sampled.
        sampling: NetnsSampling,
        /// The tick, as `watch --json` prints it for one namespace.
        tick: Box<Tick>,
    },
    /// A namespace appeared.
    Added {
        /// Version of this document.
        schema_version: u32,
        /// Which namespace.
        netns: NetnsRef,
        /// Its label.
        label: String,
    },
    /// A namespace disappeared (its last sample stays the last).
    Removed {
        /// Version of this document.
        schema_version: u32,
        /// Which namespace, as last seen.
        netns: NetnsRef,
        /// Its label.
        label: String,
    },
}

/// How much trouble a namespace is in: compared field by field, most first.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Trouble {
    /// Active critical findings.
    pub critical: usize,
    /// Active warnings.
    pub warning: usize,
    /// Listeners whose accept queue is or was full (depth > backlog).
    pub full: usize,
    /// ListenOverflows per second (or, for one snapshot, 1 when the counter is not zero).
    pub overflows: f64,
    /// Drops per second over its listeners.
    pub drops: f64,
    /// Highest fill (depth / backlog) of its listeners.
    pub worst_fill: f64,
}

impl Trouble {
    /// Most trouble first.
    pub fn most_first(a: &Trouble, b: &Trouble) -> Ordering {
        b.critical
            .cmp(&a.critical)
            .then(b.full.cmp(&a.full))
            .then(b.warning.cmp(&a.warning))
            .then(b.overflows.total_cmp(&a.overflows))
            .then(b.drops.total_cmp(&a.drops))
            .then(b.worst_fill.total_cmp(&a.worst_fill))
    }

    /// True when nothing is wrong.
    pub fn is_calm(&self) -> bool {
        self.critical == 0
            && self.warning == 0
            && self.full == 0
            && self.overflows <= 0.0
            && self.drops <= 0.0
    }
}

/// The trouble of one tick.
pub fn tick_trouble(t: &Tick) -> Trouble {
    let active = |s: Severity| {
        t.findings
            .iter()
            .filter(|f| f.severity == s && f.is_active())
            .count()
    };
    let live = t.listeners.iter().filter(|l| !l.gone);
    let mut out = Trouble {
        critical: active(Severity::Critical),
        warning: active(Severity::Warning),
        overflows: rate(t, "ListenOverflows"),
        ..Trouble::default()
    };
    for l in live {
        out.full += usize::from(l.overflowed || l.depth_high > l.backlog);
        out.drops += l.drops_per_s.unwrap_or(0.0).max(0.0);
        out.worst_fill = out
            .worst_fill
            .max(fill(l.depth_high.max(l.depth), l.backlog));
    }
    out
}

/// The trouble of one sample (no rates, no findings: a one-shot `snapshot`).
pub fn snapshot_trouble(s: &Snapshot) -> Trouble {
    let mut out = Trouble {
        overflows: if s.counters.tcp_ext("ListenOverflows").unwrap_or(0) > 0 {
            1.0
        } else {
            0.0
        },
        ..Trouble::default()
    };
    for l in &s.tcp_listeners {
        out.full += usize::from(l.accept_queue > l.backlog);
        out.worst_fill = out.worst_fill.max(fill(l.accept_queue, l.backlog));
    }
    out
}

fn rate(t: &Tick, name: &str) -> f64 {
    t.counter_rates
        .get(name)
        .copied()
        .flatten()
        .unwrap_or(0.0)
        .max(0.0)
}

fn fill(depth: u32, backlog: u32) -> f64 {
    match (depth, backlog) {
        (0, _) => 0.0,
        (d, 0) => f64::from(d),
        (d, b) => f64::from(d) / f64::from(b),
    }
}

/// The `container`, `pod` and `pod_namespace` labels of a namespace's series, each only when
/// known: the container's name (or its id's first 12 characters, as `docker ps` shows it), the
/// pod's name (or its UID), the pod's Kubernetes namespace.
pub fn identity_labels(r: &NetnsRef) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(c) = &r.name.container {
        let id = c.id.get(..SHORT_ID).unwrap_or(&c.id);
        out.push((
            "container",
            c.name.clone().unwrap_or_else(|| id.to_string()),
        ));
    }
    if let Some(p) = &r.name.pod {
        out.push(("pod", p.name.clone().unwrap_or_else(|| p.uid.clone())));
        if let Some(ns) = &p.namespace {
            out.push(("pod_namespace", ns.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::netns::{Container, Pod, Runtime};
    use crate::model::{EnterBy, NetnsName};

    fn r(name: NetnsName) -> NetnsRef {
        NetnsRef {
            inode: 7,
            name,
            enter: EnterBy::Pid(9),
            processes: 1,
        }
    }

    #[test]
    fn identity_labels_only_when_known() {
        assert!(identity_labels(&r(NetnsName::default())).is_empty());
        let mut n = NetnsName {
            container: Some(Container {
                runtime: Runtime::Containerd,
                id: "0123456789abcdef0123".into(),
                name: None,
            }),
            ..NetnsName::default()
        };
        assert_eq!(
            identity_labels(&r(n.clone())),
            [("container", "0123456789ab".to_string())]
        );
        n.pod = Some(Pod {
            uid: "u-1".into(),
            namespace: Some("shop".into()),
            name: Some("web-0".into()),
            containers: vec![],
        });
        if let Some(c) = n.container.as_mut() {
            c.name = Some("nginx".into());
        }
        assert_eq!(
            identity_labels(&r(n)),
            [
                ("container", "nginx".to_string()),
                ("pod", "web-0".to_string()),
                ("pod_namespace", "shop".to_string())
            ]
        );
    }

    #[test]
    fn trouble_orders_critical_then_full_then_rates() {
        let calm = Trouble::default();
        let filling = Trouble {
            worst_fill: 0.9,
            ..calm
        };
        let full = Trouble {
            full: 1,
            worst_fill: 1.01,
            ..calm
        };
        let crit = Trouble {
            critical: 1,
            ..calm
        };
        let mut v = [calm, full, filling, crit];
        v.sort_by(Trouble::most_first);
        assert_eq!(v, [crit, full, filling, calm]);
        assert!(calm.is_calm() && filling.is_calm() && !full.is_calm());
    }
}
