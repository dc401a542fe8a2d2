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
