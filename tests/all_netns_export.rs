//! `--all-netns` without a kernel: the node-wide exposition (labels, bounds, promtool), the
//! command line (conflicts, on/off values, commands that refuse it), the checked-in schemas,
//! and `replay` refusing a recording of every namespace.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::sync::Arc;

use common::{exposition, promtool};
use sockq::export::prometheus::{self as prom, FleetExport, FleetNs};
use sockq::model::fleet::{FleetSampling, NetnsSampling};
use sockq::model::netns::{Container, MainProcess, Pod, Runtime};
use sockq::model::{EnterBy, NetnsName, NetnsRef, Tick};

fn ns(inode: u64, name: NetnsName, tick: &Tick) -> FleetNs {
    let r = NetnsRef {
        inode,
        name,
        enter: EnterBy::Pid(100 + inode as u32),
        processes: 1,
    };
    let mut tick = tick.clone();
    tick.snapshot.netns.label = r.label();
    FleetNs {
        r,
        tick: Arc::new(tick),
        sampling: NetnsSampling {
            interval_ms: 10_000,
            interval_asked_ms: 1000,
            quiet: true,
            throttled: true,
            last_sample_age_ms: Some(2500),
        },
    }
}

fn calm(tick: &Tick) -> Tick {
    let mut t = tick.clone();
    t.findings.clear();
    t.counter_rates.values_mut().for_each(|v| *v = Some(0.0));
    for l in &mut t.listeners {
        (l.depth, l.depth_high, l.overflowed, l.drops_per_s) = (0, 0, false, Some(0.0));
    }
    for l in &mut t.snapshot.tcp_listeners {
        l.accept_queue = 0;
    }
    t
}

fn fleet() -> FleetExport {
    let busy = exposition::rich_tick();
    let quiet = calm(&busy);
    let pod = NetnsName {
        container: Some(Container {
            runtime: Runtime::Containerd,
            id: "a1b2c3d4e5f60718293a4b5c6d7e8f90".into(),
            name: Some("nginx".into()),
        }),
        pod: Some(Pod {
            uid: "5f0c1f5e-3b1c-4c2a-9d7e-0a1b2c3d4e5f".into(),
            namespace: Some("shop".into()),
            name: Some("web-0".into()),
            containers: vec!["nginx".into()],
        }),
        ..NetnsName::default()
    };
    let docker = NetnsName {
        container: Some(Container {
            runtime: Runtime::Docker,
            id: "0123456789abcdef0123456789abcdef".into(),
            name: None,
        }),
        ..NetnsName::default()
    };
    let sleeper = |pid| NetnsName {
        main: Some(MainProcess {
            pid,
            comm: "sleep".into(),
        }),
        ..NetnsName::default()
    };
    FleetExport {
        namespaces: vec![
            ns(
                1,
                NetnsName {
                    host: true,
                    ..NetnsName::default()
                },
                &quiet,
            ),
            ns(2, pod, &busy),
            ns(3, docker, &quiet),
            ns(4, sleeper(40), &quiet),
            ns(5, sleeper(50), &quiet),
        ],
        unreadable: 1,
        sampling: FleetSampling {
            namespaces: 6,
            sampled: 5,
            budget_percent: 2.0,
            estimated_percent: 1.5,
            slowed: 4,
            quiet_interval_ms: 10_000,
            over_budget: false,
        },
        max_netns: 250,
        max_listeners_per_netns: 2,
    }
}

#[test]
fn every_series_carries_its_namespace_and_known_identity_and_passes_promtool() {
    let f = fleet();
    let fams = prom::fleet_families(&f, &Default::default());
    let text = prom::encode_text(&fams);
    promtool::check_metrics(&text).unwrap();
    let v = |name: &str, labels: &[(&str, &str)]| common::metric_value(&text, name, labels);
    // the pod's namespace: netns, container, pod, pod_namespace
    let pod = [
        ("netns", "pod shop/web-0"),
        ("container", "nginx"),
        ("pod", "web-0"),
        ("pod_namespace", "shop"),
    ];
    assert_eq!(v("sockq_listeners", &pod), Some(4.0), "{text}");
    assert_eq!(v("sockq_listeners_exported", &pod), Some(2.0));
    assert!(v("sockq_listener_accept_queue_depth", &pod).is_some());
    assert_eq!(
        v(
            "sockq_netns_info",
            &[("netns", "pod shop/web-0"), ("inode", "2")]
        ),
        Some(1.0)
    );
    // docker without a name: the short id; no pod labels
    let docker = [
        ("netns", "docker 0123456789ab"),
        ("container", "0123456789ab"),
    ];
    assert_eq!(v("sockq_listeners", &docker), Some(4.0));
    assert!(!text.contains("netns=\"docker 0123456789ab\",container=\"0123456789ab\",pod="));
    assert_eq!(v("sockq_listeners", &[("netns", "host")]), Some(4.0));
    assert_eq!(v("sockq_listeners", &[("netns", "sleep[40]")]), Some(4.0));
    // how each is sampled, and the whole
    assert_eq!(
        v("sockq_netns_sample_interval_seconds", &[("netns", "host")]),
        Some(10.0)
    );
    assert_eq!(
        v("sockq_netns_sample_age_seconds", &[("netns", "host")]),
        Some(2.5)
    );
    assert_eq!(v("sockq_netns_throttled", &[("netns", "host")]), Some(1.0));
    assert_eq!(v("sockq_netns_found", &[]), Some(6.0));
    assert_eq!(v("sockq_netns_exported", &[]), Some(5.0));
    assert_eq!(v("sockq_netns_unreadable", &[]), Some(1.0));
    // once for the process, without a netns label
    assert_eq!(text.matches("\nsockq_build_info{").count(), 1, "{text}");
    assert_eq!(text.matches("\nsockq_sample_errors_total ").count(), 1);
    // every other series names its namespace
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let once = [
            "sockq_build_info",
            "sockq_http_",
            "sockq_sample_errors_total",
            "sockq_netns_found",
            "sockq_netns_exported",
            "sockq_netns_unreadable",
            "sockq_netns_cpu_",
        ];
        if !once.iter().any(|p| line.starts_with(p)) {
            assert!(line.contains("{netns=\""), "no netns label first: {line}");
        }
    }
    let om = prom::encode_openmetrics(&fams);
    assert!(promtool::parse_openmetrics(&om).is_ok());
}

#[test]
fn the_namespace_cap_keeps_those_in_trouble_and_says_so() {
    let mut f = fleet();
    f.max_netns = 2;
    let text = prom::encode_text(&prom::fleet_families(&f, &Default::default()));
    promtool::check_metrics(&text).unwrap();
    assert_eq!(
        common::metric_value(&text, "sockq_netns_exported", &[]),
        Some(2.0)
    );
    assert_eq!(
        common::metric_value(&text, "sockq_netns_found", &[]),
        Some(6.0)
    );
    // the busy pod first, then the host among the calm ones; the others drop out
    assert!(text.contains("netns=\"pod shop/web-0\""));
    assert!(text.contains("netns=\"host\""));
    assert!(!text.contains("netns=\"sleep[40]\""), "{text}");
    assert!(!text.contains("netns=\"docker"));
}

#[test]
fn namespaces_a_person_would_name_alike_stay_distinct_series() {
    let mut f = fleet();
    let twin = f.namespaces[3].clone();
    f.namespaces.push(FleetNs {
        r: NetnsRef {
            inode: 9,
            ..twin.r.clone()
        },
        ..twin
    });
    let text = prom::encode_text(&prom::fleet_families(&f, &Default::default()));
    promtool::check_metrics(&text).unwrap();
    assert!(text.contains("netns=\"sleep[40] net:[9]\""), "{text}");
}

#[test]
fn vanished_namespaces_have_no_series() {
    let mut f = fleet();
    f.namespaces.retain(|n| n.r.inode != 4);
    let text = prom::encode_text(&prom::fleet_families(&f, &Default::default()));
    assert!(!text.contains("sleep[40]"));
    assert!(text.contains("sleep[50]"));
}

fn sockq(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = common::sockq_command(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(std::process::Stdio::null()).output().unwrap()
}

#[test]
fn all_netns_conflicts_with_one_namespace_and_takes_on_off_values() {
    for args in [
        vec!["snapshot", "--all-netns", "--netns", "blue"],
        vec!["watch", "--all-netns", "--netns-pid", "1"],
    ] {
        let out = sockq(&args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("--all-netns") && err.contains("cannot be used with"),
            "{err}"
        );
    }
    let out = sockq(
        &["snapshot", "--netns", "blue"],
        &[("SOCKQ_ALL_NETNS", "1")],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sockq(&["snapshot"], &[("SOCKQ_ALL_NETNS", "maybe")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("maybe") && err.contains("1/0, true/false"),
        "{err}"
    );
    // off means off: one namespace, the usual document
    let out = sockq(
        &["snapshot", "--json", "--no-owners"],
        &[("SOCKQ_ALL_NETNS", "no")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc.get("tcp_listeners").is_some() && doc.get("namespaces").is_none());
}

#[test]
fn commands_without_it_say_which_have_it() {
    for args in [
        vec!["--all-netns", "replay", "x.gz"],
        vec!["--all-netns", "lab"],
    ] {
        let out = sockq(&args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("serve --all-netns"), "{err}");
    }
}

#[test]
fn the_all_netns_schemas_are_the_checked_in_files() {
    for (which, file) in [
        ("all-netns", "all-netns.schema.json"),
        ("all-netns-line", "all-netns-line.schema.json"),
    ] {
        let path = format!("{}/docs/schema/{file}", env!("CARGO_MANIFEST_DIR"));
        let regenerate =
            format!("regenerate it: cargo run -q -- schema {which} > docs/schema/{file}");
        let checked_in = common::checked_in_schema(&path, &regenerate);
        let out = sockq(&["schema", which], &[]);
        assert!(out.status.success());
        let now: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(now, checked_in, "{regenerate}");
    }
}

#[test]
fn replay_refuses_a_recording_of_every_namespace() {
    let dir = common::TempDir::new("allnetns-rec").unwrap();
    let file = dir.path().join("all.gz");
    let file = file.to_str().unwrap();
    // sockq's own namespace is read even without privilege: at least one sample comes
    let out = sockq(
        &[
            "record",
            "--all-netns",
            "--count",
            "1",
            "--interval",
            "200ms",
            "--no-owners",
            file,
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sockq(&["replay", "--json", file], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("every network namespace") && err.contains("zcat"),
        "{err}"
    );
}

#[test]
fn every_fleet_family_is_in_the_metrics_reference() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    let missing: Vec<String> = prom::fleet_families(&fleet(), &Default::default())
        .into_iter()
        .map(|f| f.name)
        // the families of one namespace are checked by the library's own test
        .filter(|n| n.starts_with("sockq_netns_"))
        .filter(|n| !doc.contains(&format!("`{n}`")) && !doc.contains(&format!("`{n}{{")))
        .collect();
    assert!(missing.is_empty(), "not in docs/metrics.md: {missing:?}");
    for label in [
        "`netns`",
        "`container`",
        "`pod`",
        "`pod_namespace`",
        "--max-netns",
        "--max-listeners-per-netns",
    ] {
        assert!(
            doc.contains(label),
            "docs/metrics.md does not mention {label}"
        );
    }
}

#[test]
fn without_privilege_one_line_says_what_is_missing_and_its_own_namespace_is_shown() {
    // run as nobody (needs root to switch; elsewhere the test already runs unprivileged)
    let mut c = if nix::unistd::geteuid().is_root() {
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(common::sockq_bin());
        c
    } else {
        std::process::Command::new(common::sockq_bin())
    };
    let out = c
        .args(["snapshot", "--all-netns", "--json", "--no-owners"])
        .env_remove("SOCKQ_ALL_NETNS")
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("sockq: --all-netns: missing CAP_SYS_PTRACE"),
        "{err}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let own = std::fs::metadata("/proc/self/ns/net").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.ino()
    });
    let read: Vec<&serde_json::Value> = doc["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| !n["snapshot"].is_null())
        .collect();
    assert_eq!(read.len(), 1, "{doc}");
    assert_eq!(read[0]["netns"]["inode"].as_u64(), own.ok(), "{doc}");
    assert!(doc["blind_spot"]
        .as_str()
        .is_some_and(|b| b.contains("CAP_SYS_PTRACE")));
}
