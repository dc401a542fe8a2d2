//! Rules over a tick → findings: what is wrong, in plain words, with the numbers that show it
//! and where to look next. Pure.

use std::collections::BTreeMap;

use crate::model::{fast_map, fast_set, FastMap, FastSet, Finding, ListenerKey, TcpListener, Tick};

mod caps;
mod fds;
mod holders;
mod listener;
mod namespace;
mod service;

use caps::application_cap;
use fds::fd_rule;
use listener::listener_rules;
use namespace::namespace_rules;
use service::{service_rules, tcp_memory_pressure};

pub use caps::{round_cap, CAP_FLAT_PER_S, CAP_MIN};
pub use service::{
    ACCEPT_WAIT_MS, CLOSE_WAIT_MIN, CLOSE_WAIT_RISING_S, FDS_HORIZON_S, NOT_READING_MS,
    SLOW_READER_MS,
};

/// Fill that counts as "high" for the sustained rule.
pub const HIGH_FILL: f64 = 0.8;
/// Seconds of high fill before it is reported.
pub const SUSTAINED_HIGH_S: f64 = 3.0;
/// Seconds a queue may stay non-empty without draining before "not accepting" is reported.
pub const UNDRAINED_S: f64 = 5.0;
/// Fraction of RLIMIT_NOFILE that counts as "near the fd limit".
pub const FD_NEAR: f64 = 0.9;
/// Share of one core (percent) at which a holder of a listener counts as busy.
pub const BUSY_CPU_PERCENT: f64 = 90.0;

fn who(l: &TcpListener) -> String {
    match l.owners.processes() {
        [] => "the owning process".to_string(),
        [p] => format!("{}[{}]", p.comm, p.pid),
        // "(with N more)" keeps the verbs that follow singular ("… calls accept()").
        [p, rest @ ..] => format!("{}[{}] (with {} more)", p.comm, p.pid, rest.len()),
    }
}

fn ev<const N: usize>(pairs: [(&str, Option<f64>); N]) -> BTreeMap<String, f64> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect()
}

fn rate(t: &Tick, name: &str) -> f64 {
    t.counter_rates.get(name).copied().flatten().unwrap_or(0.0)
}

/// Evaluates every rule on a tick. Findings come most severe first.
pub fn evaluate(t: &Tick) -> Vec<Finding> {
    let mut out = Vec::new();
    // Hashed, not ordered: built for every listener on every tick (only looked up here), and
    // an ordered set of endpoints compared strings 14 times per listener.
    let mut by_key: FastMap<ListenerKey, &TcpListener> = fast_map(t.snapshot.tcp_listeners.len());
    by_key.extend(
        t.snapshot
            .tcp_listeners
            .iter()
            .map(|l| (ListenerKey::from(l), l)),
    );
    let mut fd_reported: Vec<u32> = Vec::new();
    // An SO_REUSEPORT group shares its children's numbers: its service findings once.
    let mut service_reported: FastSet<_> = fast_set(t.listeners.len());
    for lt in t.listeners.iter().filter(|lt| !lt.gone) {
        let Some(l) = by_key.get(&lt.key) else {
            continue;
        };
        listener_rules(t, lt, l, &mut out);
        // Both need the listener's service numbers: a listener without any is not hashed.
        if l.service.is_some() && service_reported.insert(l.endpoint_id()) {
            service_rules(t, lt, l, &mut out);
            out.extend(application_cap(t, lt, l));
        }
        for p in l.owners.processes() {
            if !fd_reported.contains(&p.pid) {
                if let Some(f) = fd_rule(lt, l, p) {
                    fd_reported.push(p.pid);
                    out.push(f);
                }
            }
        }
    }
    namespace_rules(t, &mut out);
    out.extend(tcp_memory_pressure(t));
    drop_explained_by_stopped_holders(&mut out);
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| cause_first(&a.rule).cmp(&cause_first(&b.rule)))
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.listener.cmp(&b.listener))
            .then_with(|| a.key.cmp(&b.key))
    });
    out
}

/// Findings that name a cause come before the symptoms they explain, within a severity.
fn cause_first(rule: &str) -> u8 {
    match rule {
        "holders_stopped" | "near_fd_limit" | "holder_busy" | "application_cap" => 0,
        _ => 1,
    }
}

/// When every holder of a listener is stopped, "accepts too slowly" and "is not calling
/// accept()" say less than holders_stopped and would contradict it: they go.
fn drop_explained_by_stopped_holders(out: &mut Vec<Finding>) {
    let stopped: Vec<ListenerKey> = out
        .iter()
        .filter(|f| f.rule == "holders_stopped")
        .filter_map(|f| f.key)
        .collect();
    out.retain(|f| {
        let explained = matches!(f.rule.as_str(), "not_accepting" | "accept_queue_high");
        !(explained && f.key.is_some_and(|k| stopped.contains(&k)))
    });
}
