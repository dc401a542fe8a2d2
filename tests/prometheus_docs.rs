//! What docs/prometheus ships — alert rules, their unit tests, the scrape configuration and the
//! Grafana dashboard — against what sockq exports and against promtool: every metric name they
//! use (`sockq_*`, `process_*`) is in the output of a scrape (the families of a synthetic tick
//! in which every metric has samples; sockq exports no histograms or summaries, so no
//! `_bucket`/`_count`/`_sum` names apply), every alert has a unit test, and `promtool check
//! config`, `check rules` and `test rules` pass, the dashboard's PromQL included.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{exposition, promtool, TempDir};
use sockq::export::prometheus as prom;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/prometheus")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every metric name of sockq's (`sockq_…`, `process_…`) mentioned in `text`.
fn metric_names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for prefix in ["sockq_", "process_"] {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let preceded = rest[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            if !preceded {
                out.insert(tail[..end].to_string());
            }
            rest = &tail[end..];
        }
    }
    out
}

/// The dashboard's PromQL: every panel target's `expr`, and the variables' queries.
fn dashboard_queries() -> (Vec<String>, Vec<String>) {
    let dash: serde_json::Value =
        serde_json::from_str(&read("grafana-dashboard.json")).expect("the dashboard is JSON");
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    let variables: Vec<String> = dash["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .filter_map(|v| v["definition"].as_str().map(str::to_string))
        .collect();
    (exprs, variables)
}

/// The metric names a scrape of sockq exposes (0.0.4 text: the `_total`/`_info` names).
fn exported() -> BTreeSet<String> {
    prom::encode_text(&exposition::rich_families())
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(['{', ' ']).next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn the_dashboard_and_alerts_use_only_metrics_sockq_exports() {
    let exported = exported();
    let (exprs, variables) = dashboard_queries();
    assert!(exprs.len() >= 20, "{exprs:?}");
    for (what, text) in [
        ("alerts.yml", read("alerts.yml")),
        ("alerts.test.yml", read("alerts.test.yml")),
        ("prometheus.yml", read("prometheus.yml")),
        ("the dashboard's panels", exprs.join("\n")),
        ("the dashboard's variables", variables.join("\n")),
    ] {
        let used = metric_names_in(&text);
        assert!(!used.is_empty() || what == "prometheus.yml", "{what}");
        let unknown: Vec<&String> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{what} uses metrics sockq does not export: {unknown:?}\nexported: {exported:?}"
        );
    }
    // The ones this test exists for, so a broken name scan cannot pass it.
    let panels = metric_names_in(&exprs.join("\n"));
    for name in [
        "sockq_sample_errors_total",
        "sockq_blind_spots",
        "sockq_collector_throttled",
        "sockq_syn_recv_age_seconds",
        "sockq_last_sample_timestamp_seconds",
        "process_resident_memory_bytes",
    ] {
        assert!(panels.contains(name), "no panel shows {name}");
    }
    assert!(
        metric_names_in("x{a=\"1\"} + other_sockq_x + sockq_a_total[5m]")
            .into_iter()
            .eq(["sockq_a_total".to_string()])
    );
}

#[test]
fn every_alert_has_a_unit_test() {
    let alerts = read("alerts.yml");
    let tests = read("alerts.test.yml");
    let names: Vec<&str> = alerts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(names.len() >= 11, "{names:?}");
    for name in ["SockqDown", "SockqAbsent", "SockqStale"] {
        assert!(names.contains(&name), "{name} is not in alerts.yml");
    }
    let untested: Vec<&&str> = names
        .iter()
        .filter(|n| !tests.contains(&format!("alertname: {n}\n")))
        .collect();
    assert!(untested.is_empty(), "not in alerts.test.yml: {untested:?}");
}

#[test]
fn promtool_accepts_the_config_rules_and_dashboard() {
    let dir = dir();
    promtool::run_in(&dir, &["check", "config", "prometheus.yml"]).unwrap();
    promtool::run_in(&dir, &["check", "rules", "alerts.yml"]).unwrap();
    promtool::run_in(&dir, &["test", "rules", "alerts.test.yml"]).unwrap();
    // The dashboard's PromQL, with Grafana's variables filled in, as recording rules.
    let (exprs, _) = dashboard_queries();
    let tmp = TempDir::new("dashboard-rules").unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        let e = e
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".*")
            .replace("$pod_namespace", ".*")
            .replace("$pod", ".*")
            .replace("$netns", ".*")
            .replace("$port", ".*");
        assert!(
            !e.contains('$'),
            "a variable this test does not fill in: {e}"
        );
        rules.push_str(&format!(
            "      - record: dashboard:expr_{i}\n        expr: '{}'\n",
            e.replace('\'', "''")
        ));
    }
    std::fs::write(tmp.path().join("dashboard.rules.yml"), rules).unwrap();
    promtool::run_in(tmp.path(), &["check", "rules", "dashboard.rules.yml"]).unwrap();
}

/// Label names a PromQL text uses: matchers (`name=~"…"`), `by (…)` / `without (…)` groupings,
/// `label_values(…, name)`, and legend templates (`{{name}}`).
fn label_names_in(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .then(|| s.to_string())
    };
    let mut out = BTreeSet::new();
    // matchers: inside `{…}` (not `{{…}}`), each comma-separated `name op "value"`
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        let tail = &rest[i + 1..];
        if let Some(inner) = tail.strip_prefix('{') {
            let end = inner.find("}}").unwrap_or(inner.len());
            out.extend(ident(&inner[..end]));
            rest = &inner[end..];
            continue;
        }
        let end = tail.find('}').unwrap_or(tail.len());
        for m in tail[..end].split(',') {
            if let Some(op) = m.find(['=', '!']) {
                out.extend(ident(&m[..op]));
            }
        }
        rest = &tail[end..];
    }
    for kw in ["by (", "without ("] {
        for part in text.split(kw).skip(1) {
            let end = part.find(')').unwrap_or(part.len());
            out.extend(part[..end].split(',').filter_map(ident));
        }
    }
    for part in text.split("label_values(").skip(1) {
        let end = part.find(')').unwrap_or(part.len());
        out.extend(part[..end].rsplit(',').next().and_then(ident));
    }
    out
}

/// The label names of a scrape of sockq.
fn exported_labels() -> BTreeSet<String> {
    let text = prom::encode_text(&exposition::rich_families());
    label_names_in(
        &text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// Issue 15: `serve --all-netns` labels each namespace's series with these where known. Not in
/// the synthetic scrape yet (no namespace there is a pod's); the dashboard may use them.
const ALL_NETNS_LABELS: [&str; 3] = ["container", "pod", "pod_namespace"];

#[test]
fn the_dashboard_uses_only_labels_sockq_or_prometheus_sets_and_groups_by_pod() {
    let exported = exported_labels();
    for name in ["netns", "address", "port", "process", "severity"] {
        assert!(
            exported.contains(name),
            "the label scan missed {name}: {exported:?}"
        );
    }
    let (exprs, variables) = dashboard_queries();
    let dash: serde_json::Value = serde_json::from_str(&read("grafana-dashboard.json")).unwrap();
    let legends: Vec<String> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["legendFormat"].as_str().map(str::to_string))
        .collect();
    let used =
        label_names_in(&[exprs.join("\n"), variables.join("\n"), legends.join("\n")].join("\n"));
    // `instance` and `job` are Prometheus's target labels (deploy/prometheus-*.yml keep them).
    let known: BTreeSet<String> = exported
        .iter()
        .cloned()
        .chain(ALL_NETNS_LABELS.map(String::from))
        .chain(["instance", "job"].map(String::from))
        .collect();
    let unknown: Vec<&String> = used.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "labels neither sockq nor Prometheus sets: {unknown:?}"
    );
    // Never `namespace`: Kubernetes service discovery's target label would take it.
    assert!(!used.contains("namespace"), "{used:?}");

    // The variables, and the per-pod panels of issue 15.
    let names: Vec<&str> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "datasource",
            "instance",
            "pod_namespace",
            "pod",
            "netns",
            "port"
        ]
    );
    let by_pod: Vec<&String> = exprs
        .iter()
        .filter(|e| e.contains("by (instance, pod_namespace, pod, netns)"))
        .collect();
    let by_pod_names = metric_names_in(
        &by_pod
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    );
    for name in [
        "sockq_listener_accept_queue_depth_peak",
        "sockq_listener_backlog",
        "sockq_tcpext_listen_overflows_total",
    ] {
        assert!(
            by_pod_names.contains(name),
            "no per-pod panel uses {name}: {by_pod:?}"
        );
    }
    // Every query that selects a namespace also follows the pod variables.
    for e in &exprs {
        if e.contains("netns=~") {
            assert!(
                e.contains("pod_namespace=~\"$pod_namespace\",pod=~\"$pod\",netns=~\"$netns\""),
                "{e}"
            );
        }
    }
    // The scan itself.
    assert_eq!(
        label_names_in("max by (a, b_c) (m{x=~\"1\",y!=\"2\"}) {{z}} label_values(m{q=\"1\"}, w)")
            .into_iter()
            .collect::<Vec<_>>(),
        ["a", "b_c", "q", "w", "x", "y", "z"]
    );
}
