//! `serve --all-netns`: one endpoint for the whole node. Every namespace's families (as for one
//! namespace) merged into one exposition, each series labelled `netns` plus `container`, `pod`
//! and `pod_namespace` where known; sockq's own build and HTTP families once. Cardinality is
//! bounded twice: at most `max_netns` namespaces (those in most trouble first) and at most
//! `max_listeners_per_netns` listeners in each; `sockq_netns_found` / `sockq_netns_exported`
//! and each namespace's `sockq_listeners` / `sockq_listeners_exported` show the truncation.
//! A namespace that vanished is no longer in the published set, so its series drop out.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{families, ExportOptions, ExporterStats, Family, Kind, Value};
use crate::model::fleet::{identity_labels, tick_trouble, FleetSampling, NetnsSampling, Trouble};
use crate::model::{NetnsRef, Tick};

/// Default of `--max-netns`.
pub const DEFAULT_MAX_NETNS: usize = 250;
/// Default of `--max-listeners-per-netns`.
pub const DEFAULT_MAX_LISTENERS_PER_NETNS: usize = 20;

/// Families exported once for the whole process, not per namespace.
const ONCE: [&str; 4] = [
    "sockq_build_info",
    "sockq_http_connections_evicted_total",
    "sockq_http_connections_refused_total",
    "sockq_sample_errors_total",
];

/// One namespace's latest tick.
#[derive(Debug, Clone)]
pub struct FleetNs {
    /// Which namespace.
    pub r: NetnsRef,
    /// Its latest tick (its snapshot's `netns.label` is the namespace's label).
    pub tick: Arc<Tick>,
    /// How it is being sampled.
    pub sampling: NetnsSampling,
}

/// What `serve --all-netns` publishes for the scrapes.
#[derive(Debug, Clone, Default)]
pub struct FleetExport {
    /// The namespaces being sampled that have a tick.
    pub namespaces: Vec<FleetNs>,
    /// Namespaces found that could not be entered.
    pub unreadable: usize,
    /// The sampling of the whole.
    pub sampling: FleetSampling,
    /// At most this many namespaces get series.
    pub max_netns: usize,
    /// At most this many listeners per namespace get per-listener series.
    pub max_listeners_per_netns: usize,
}

/// Every family of the fleet. Pure.
pub fn fleet_families(f: &FleetExport, stats: &ExporterStats) -> Vec<Family> {
    let chosen = choose(f);
    let opts = ExportOptions {
        max_listeners: f.max_listeners_per_netns,
    };
    let mut out: Vec<Family> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut seen_labels: HashSet<String> = HashSet::new();
    for (n, ns) in chosen.iter().enumerate() {
        let mut label = ns.tick.snapshot.netns.label.clone();
        if !seen_labels.insert(label.clone()) {
            // two namespaces a person would name alike: the inode tells them apart
            label = format!("{label} net:[{}]", ns.r.inode);
            seen_labels.insert(label.clone());
        }
        let extra = identity_labels(&ns.r);
        for mut fam in families(&ns.tick, &opts, stats) {
            if ONCE.contains(&fam.name.as_str()) && n > 0 {
                continue;
            }
            if !ONCE.contains(&fam.name.as_str()) {
                for s in &mut fam.samples {
                    relabel(&mut s.labels, &label, &extra);
                }
            }
            merge(&mut out, &mut index, fam);
        }
        for fam in sampling_families(ns, &label, &extra) {
            merge(&mut out, &mut index, fam);
        }
    }
    for fam in totals(f, chosen.len()) {
        merge(&mut out, &mut index, fam);
    }
    out
}

/// The namespaces that get series: all, or the `max_netns` in most trouble (the host, then
/// by inode, among equals); in discovery order.
fn choose(f: &FleetExport) -> Vec<&FleetNs> {
    let mut v: Vec<(&FleetNs, Trouble)> = f
        .namespaces
        .iter()
        .map(|n| (n, tick_trouble(&n.tick)))
        .collect();
    if v.len() > f.max_netns {
        v.sort_by(|(a, ta), (b, tb)| {
            Trouble::most_first(ta, tb)
                .then(b.r.name.host.cmp(&a.r.name.host))
                .then(a.r.inode.cmp(&b.r.inode))
        });
        v.truncate(f.max_netns);
    }
    let mut chosen: Vec<&FleetNs> = v.into_iter().map(|(n, _)| n).collect();
    chosen.sort_by(|a, b| {
        b.r.name
            .host
            .cmp(&a.r.name.host)
            .then(a.r.inode.cmp(&b.r.inode))
    });
    chosen
}

/// Sets the `netns` label (first) and appends the identity labels.
fn relabel(
    labels: &mut Vec<(&'static str, String)>,
    netns: &str,
    extra: &[(&'static str, String)],
) {
    labels.retain(|(k, _)| *k != "netns");
    labels.insert(0, ("netns", netns.to_string()));
    labels.extend(extra.iter().cloned());
}

fn merge(out: &mut Vec<Family>, index: &mut HashMap<String, usize>, fam: Family) {
    match index.get(&fam.name) {
        Some(&i) => out[i].samples.extend(fam.samples),
        None => {
            index.insert(fam.name.clone(), out.len());
            out.push(fam);
        }
    }
}

/// Per namespace: who it is and how it is sampled.
fn sampling_families(ns: &FleetNs, netns: &str, extra: &[(&'static str, String)]) -> Vec<Family> {
    let labels = || {
        let mut l = vec![("netns", netns.to_string())];
        l.extend(extra.iter().cloned());
        l
    };
    let mut info = Family::new(
        "sockq_netns_info",
        "One per network namespace sockq samples (--all-netns): its inode, and the container, \
         pod and pod_namespace labels where known; the value is always 1.",
        Kind::Info,
    );
    let mut l = labels();
    l.insert(1, ("inode", ns.r.inode.to_string()));
    info.push(l, Value::Int(1));
    let mut age = Family::new(
        "sockq_netns_sample_age_seconds",
        "Age of the namespace's latest full sample: quiet namespaces are sampled less often \
         (sockq_netns_sample_interval_seconds).",
        Kind::Gauge,
    );
    if let Some(ms) = ns.sampling.last_sample_age_ms {
        age.push(labels(), Value::Float(ms as f64 / 1000.0));
    }
    let mut interval = Family::new(
        "sockq_netns_sample_interval_seconds",
        "Interval of the namespace's full samples now in force: --interval while something \
         happens in it, longer while it is quiet, so that every namespace together keeps \
         --cpu-budget.",
        Kind::Gauge,
    );
    interval.push(
        labels(),
        Value::Float(ns.sampling.interval_ms as f64 / 1000.0),
    );
    let mut throttled = Family::new(
        "sockq_netns_throttled",
        "1 when the namespace is sampled less often than --interval (quiet) or its sampler \
         spaced out its dumps for the CPU budget.",
        Kind::Gauge,
    );
    throttled.push(labels(), Value::Int(u64::from(ns.sampling.throttled)));
    vec![info, age, interval, throttled]
}

/// For the whole node: namespaces found, exported, unreadable; the fleet's budget.
fn totals(f: &FleetExport, exported: usize) -> Vec<Family> {
    let gauge = |name: &str, help: &str, v: Value| {
        let mut fam = Family::new(name, help, Kind::Gauge);
        fam.push(vec![], v);
        fam
    };
    vec![
        gauge(
            "sockq_netns_found",
            "Network namespaces sockq found on the host (--all-netns), readable or not.",
            Value::Int(f.sampling.namespaces as u64),
        ),
        gauge(
            "sockq_netns_exported",
            "Namespaces with series; fewer than those sampled when --max-netns truncated (those \
             in most trouble are kept).",
            Value::Int(exported as u64),
        ),
        gauge(
            "sockq_netns_unreadable",
            "Namespaces found that sockq could not enter (entering needs CAP_SYS_ADMIN).",
            Value::Int(f.unreadable as u64),
        ),
        gauge(
            "sockq_netns_cpu_estimate_ratio",
            "Estimated CPU of every namespace's sampler together at their current intervals, as \
             a fraction of one core (the budget is sockq_netns_cpu_budget_ratio).",
            Value::Float(f.sampling.estimated_percent / 100.0),
        ),
        gauge(
            "sockq_netns_cpu_budget_ratio",
            "CPU budget of every namespace's sampler together (--cpu-budget), as a fraction of \
             one core.",
            Value::Float(f.sampling.budget_percent / 100.0),
        ),
    ]
}
