//! Live (root): `--all-netns` through the commands, on 30 namespaces this test makes.
//!
//! 15 namespaces made with `ip netns add` and 15 held only by an `unshare -n sleep` child; each
//! gets a listener on 127.0.0.1 with its own backlog and queue; one of the named ones has
//! `net.core.somaxconn=128` and a listener asked for listen(511) (backlog 128) whose accept
//! queue is full (129) with more SYNs dropped. Then:
//!
//! 1. `sockq snapshot --all-netns --json` lists every one of them with exactly the listeners
//!    `ip netns exec NAME ss -ltnH` / `nsenter -t PID -n ss -ltnH` show, named as a person knows
//!    them (the `ip netns` name, `sleep[PID]`), the overflowing one with somaxconn 128 and its
//!    ListenOverflows;
//! 2. `sockq watch --all-netns --json` announces each and its ticks carry it (a critical
//!    finding in the overflowing one);
//! 3. `sockq serve --all-netns` exposes each with a `netns` label (its listener count, the full
//!    queue of the overflowing one with a critical finding), and `promtool check metrics`
//!    passes; a namespace made while it runs appears, one deleted drops out.
//!
//! Everything made here is removed on every path (drop guards; the children also get SIGKILL
//! when the test process ends, `setpriv --pdeathsig`); names are `sockq-allcmd-<pid>-…`, and
//! leftovers of a test process that no longer exists are removed first.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use common::netns_lab::{
    inode_of, ss_listeners_held, ss_listeners_named, with_lab, NetnsLab, SsListeners,
};
use socket2::Socket;
use sockq::collect::netns::NetnsTarget;
use sockq::model::fleet::FleetSnapshot;

const PREFIX: &str = "sockq-allcmd-";
const DEADLINE: Duration = Duration::from_secs(180);

/// How a namespace of the test is entered.
#[derive(Debug, Clone)]
enum Way {
    Named(String),
    Held(u32),
}

impl Way {
    fn target(&self) -> NetnsTarget {
        match self {
            Way::Named(n) => NetnsTarget::Named(n.clone()),
            Way::Held(p) => NetnsTarget::Pid(*p),
        }
    }

    /// The label sockq gives it.
    fn label(&self) -> String {
        match self {
            Way::Named(n) => n.clone(),
            Way::Held(p) => format!("sleep[{p}]"),
        }
    }

    /// `ss -ltnH` in it: (local address, Recv-Q, Send-Q).
    fn ss(&self) -> anyhow::Result<SsListeners> {
        match self {
            Way::Named(n) => ss_listeners_named(n),
            Way::Held(p) => ss_listeners_held(*p),
        }
    }

    /// A new named namespace of `lab`.
    fn named(lab: &mut NetnsLab, tag: &str) -> anyhow::Result<Way> {
        Ok(Way::Named(lab.add_named(tag)?.0))
    }

    /// A new namespace of `lab` held by a child.
    fn held(lab: &mut NetnsLab) -> anyhow::Result<Way> {
        Ok(Way::Held(lab.add_held()?.0))
    }
}

/// A namespace of the test with its sockets (kept open until the end).
struct Ns {
    way: Way,
    inode: u64,
    _sockets: (Socket, Vec<TcpStream>, Vec<Socket>),
}

/// On a thread that entered `way`: lo up, optionally somaxconn, a listener on
/// 127.0.0.1:`port` with `backlog` and `queued` completed connections, then `syn_only` clients
/// whose SYNs a full queue drops. Returns the namespace's inode and its sockets.
fn populate(
    way: &Way,
    port: u16,
    backlog: i32,
    queued: usize,
    syn_only: usize,
    somaxconn: Option<&'static str>,
) -> anyhow::Result<Ns> {
    let (target, w) = (way.target(), way.clone());
    std::thread::spawn(move || -> anyhow::Result<Ns> {
        target.enter_on_this_thread()?;
        common::run_ok("ip", &["link", "set", "lo", "up"])?;
        if let Some(v) = somaxconn {
            common::set_sysctl("net/core/somaxconn", v)?;
        }
        let inode = inode_of("/proc/thread-self/ns/net")?;
        let (s, addr) = common::listen(&format!("127.0.0.1:{port}"), backlog)?;
        let clients = common::connect_n(addr, queued)?;
        common::wait_for_accept_queue(port, queued as u32, Duration::from_secs(30))?;
        let syns = common::syn_only_clients(addr, syn_only)?;
        Ok(Ns {
            way: w,
            inode,
            _sockets: (s, clients, syns),
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("listener thread panicked"))?
}

/// A running `sockq serve --all-netns`, killed on drop; its stderr collected.
struct Serve {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Serve {
    fn start() -> anyhow::Result<Serve> {
        let mut child = common::sockq_command(&[
            "serve",
            "--all-netns",
            "--listen",
            "127.0.0.1:0",
            "--no-owners",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
        let mut err = child.stderr.take().context("stderr")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    stderr
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let mut serve = Serve {
            child,
            addr: "127.0.0.1:1".parse()?,
            stderr,
        };
        let start = Instant::now();
        loop {
            let text = serve.stderr.lock().unwrap().clone();
            if let Some(rest) = text.split("serving http://").nth(1) {
                if let Some(addr) = rest.split('/').next() {
                    serve.addr = addr.parse()?;
                    return Ok(serve);
                }
            }
            if let Some(status) = serve.child.try_wait()? {
                bail!("sockq serve exited ({status}): {text}");
            }
            ensure!(start.elapsed() < DEADLINE, "no `serving` line: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn metrics(&self) -> anyhow::Result<String> {
        let (status, body) = common::http_get(self.addr, "/metrics")?;
        ensure!(status == 200, "status {status}: {body}");
        Ok(body)
    }

    /// Scrapes until `pred` holds; fails with the last body after the deadline.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> anyhow::Result<String> {
        let start = Instant::now();
        loop {
            let body = self.metrics().unwrap_or_default();
            if pred(&body) {
                return Ok(body);
            }
            ensure!(
                start.elapsed() < DEADLINE,
                "{what}: not after {DEADLINE:?}; stderr: {}\n--- last body ---\n{body}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn every_namespace_through_snapshot_and_serve() {
    with_lab("every_namespace_through_snapshot_and_serve", PREFIX, run);
}

fn run(lab: &mut NetnsLab) -> anyhow::Result<()> {
    // 30 namespaces: 15 named (the first one overflowing), 15 held by a process
    let mut ns: Vec<Ns> = Vec::new();
    for i in 0..30u16 {
        let way = if i < 15 {
            Way::named(lab, &format!("n{i}"))?
        } else {
            Way::held(lab)?
        };
        let port = 7100 + i;
        ns.push(if i == 0 {
            populate(&way, port, 511, 129, 3, Some("128"))?
        } else {
            populate(
                &way,
                port,
                4 + i32::from(i % 8),
                usize::from(i % 4),
                0,
                None,
            )?
        });
    }
    let over = ns[0].way.label();

    // 1. snapshot --all-netns --json: every one, exact listeners
    let out = common::run_sockq(&["snapshot", "--all-netns", "--json", "--no-owners"])?;
    ensure!(
        out.status.success(),
        "snapshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let errors = common::schema_errors(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/schema/all-netns.schema.json"
        ),
        "regenerate it: cargo run -q -- schema all-netns > docs/schema/all-netns.schema.json",
        &doc,
    );
    ensure!(errors.is_empty(), "not valid against its schema: {errors}");
    let fleet: FleetSnapshot = serde_json::from_value(doc)?;
    ensure!(fleet.namespaces_found == fleet.namespaces.len());
    let by_inode: BTreeMap<u64, _> = fleet
        .namespaces
        .iter()
        .map(|n| (n.netns.inode, n))
        .collect();
    for n in &ns {
        let label = n.way.label();
        let entry = by_inode
            .get(&n.inode)
            .with_context(|| format!("{label} (net:[{}]) not listed", n.inode))?;
        ensure!(entry.label == label, "label {} for {label}", entry.label);
        let snap = entry
            .snapshot
            .as_ref()
            .with_context(|| format!("{label} not read: {:?}", entry.error))?;
        ensure!(snap.netns.inode == Some(n.inode) && snap.netns.label == label);
        let by_sockq: BTreeSet<(String, u32, u32)> = snap
            .tcp_listeners
            .iter()
            .map(|l| {
                let a = SocketAddr::new(l.address, l.port).to_string();
                (a, l.accept_queue, l.backlog)
            })
            .collect();
        let by_ss = n.way.ss()?;
        ensure!(
            by_sockq == by_ss,
            "{label}: sockq {by_sockq:?}, ss {by_ss:?}"
        );
    }
    let o = by_inode[&ns[0].inode].snapshot.as_ref().context("over")?;
    ensure!(o.tunables.somaxconn == Some(128), "{:?}", o.tunables);
    ensure!(o.tcp_listeners[0].accept_queue == 129 && o.tcp_listeners[0].backlog == 128);
    ensure!(
        o.counters.tcp_ext("ListenOverflows").unwrap_or(0) > 0,
        "{:?}",
        o.counters
    );

    // 2. watch --all-netns --json: every namespace announced, then its ticks carry it
    let out = common::run_sockq(&[
        "watch",
        "--all-netns",
        "--json",
        "--no-owners",
        "--count",
        "200",
    ])?;
    ensure!(
        out.status.success(),
        "watch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut added = BTreeSet::new();
    let mut ticked: BTreeMap<u64, u32> = BTreeMap::new();
    let mut crit = false;
    for line in String::from_utf8(out.stdout)?.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let inode = v["netns"]["inode"].as_u64().context("netns.inode")?;
        match v["event"].as_str() {
            Some("added") => {
                added.insert(inode);
            }
            Some("tick") => {
                ensure!(
                    added.contains(&inode),
                    "a tick before its namespace was added: {line}"
                );
                ensure!(v["tick"]["snapshot"]["netns"]["inode"].as_u64() == Some(inode));
                ensure!(v["tick"]["snapshot"]["netns"]["label"] == v["label"]);
                if inode == ns[0].inode {
                    let findings = v["tick"]["findings"].as_array().into_iter().flatten();
                    crit |= findings.into_iter().any(|f| f["severity"] == "critical");
                }
                *ticked.entry(inode).or_default() += 1;
            }
            // other engineers' namespaces may go meanwhile; none of ours does
            Some("removed") => {
                ensure!(ns.iter().all(|n| n.inode != inode), "ours removed: {line}");
            }
            other => bail!("unexpected event {other:?}: {line}"),
        }
    }
    ensure!(crit, "no critical finding in {over}");
    for n in &ns {
        ensure!(
            ticked.contains_key(&n.inode),
            "no tick of {}",
            n.way.label()
        );
    }

    // 3. serve --all-netns: a netns label per namespace, promtool, followed
    let serve = Serve::start()?;
    let all_there = |body: &str| {
        ns.iter().all(|n| {
            common::metric_value(body, "sockq_listeners", &[("netns", &n.way.label())]) == Some(1.0)
        }) && common::metric_value(
            body,
            "sockq_findings",
            &[("netns", &over), ("severity", "critical")],
        )
        .is_some_and(|v| v >= 1.0)
    };
    let body = serve.wait_for(
        "every namespace with a critical finding in the overflowing one",
        all_there,
    )?;
    common::promtool::check_metrics(&body)?;
    let depth = common::metric_value(
        &body,
        "sockq_listener_accept_queue_depth",
        &[("netns", &over), ("port", "7100")],
    );
    ensure!(depth == Some(129.0), "depth {depth:?}");
    let somaxconn = common::metric_value(
        &body,
        "sockq_sysctl_net_core_somaxconn",
        &[("netns", &over)],
    );
    ensure!(somaxconn == Some(128.0), "somaxconn {somaxconn:?}");
    // per-namespace /proc reads on the one sampling thread: ListenOverflows and somaxconn are
    // each namespace's own (the others keep a new namespace's values)
    let overflows = |label: &str| {
        common::metric_value(
            &body,
            "sockq_tcpext_listen_overflows_total",
            &[("netns", label)],
        )
    };
    ensure!(
        overflows(&over).is_some_and(|v| v > 0.0),
        "{:?}",
        overflows(&over)
    );
    for n in &ns[1..] {
        let label = n.way.label();
        ensure!(
            overflows(&label) == Some(0.0),
            "{label}: {:?}",
            overflows(&label)
        );
        let s = common::metric_value(
            &body,
            "sockq_sysctl_net_core_somaxconn",
            &[("netns", &label)],
        );
        ensure!(s == Some(4096.0), "{label}: somaxconn {s:?}");
    }
    for n in &ns {
        let inode = n.inode.to_string();
        let info = [("netns", n.way.label()), ("inode", inode)];
        let info: Vec<(&str, &str)> = info.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ensure!(
            common::metric_value(&body, "sockq_netns_info", &info) == Some(1.0),
            "no sockq_netns_info for {}",
            n.way.label()
        );
    }

    // one made, one deleted while it runs
    let late_way = Way::named(lab, "late")?;
    let late = populate(&late_way, 7199, 8, 2, 0, None)?;
    let gone = ns.remove(1);
    if let Way::Named(name) = &gone.way {
        lab.delete_named(name)?;
    }
    let (late_label, gone_label) = (late.way.label(), gone.way.label());
    let body = serve.wait_for("the new namespace in, the deleted one out", |body| {
        common::metric_value(body, "sockq_listeners", &[("netns", &late_label)]) == Some(1.0)
            && !body.contains(&format!("netns=\"{gone_label}\""))
    })?;
    common::promtool::check_metrics(&body)?;
    let depth = common::metric_value(
        &body,
        "sockq_listener_accept_queue_depth",
        &[("netns", &late_label), ("port", "7199")],
    );
    ensure!(depth == Some(2.0), "new namespace's depth {depth:?}");
    drop(gone); // its listener held it alive; now it goes
    drop(serve);
    drop(late);
    drop(ns);
    Ok(())
}

#[test]
fn the_dashboard_lists_the_overflowing_namespace_first_and_opens_it() {
    with_lab(
        "the_dashboard_lists_the_overflowing_namespace_first_and_opens_it",
        PREFIX,
        dashboard,
    );
}

fn dashboard(lab: &mut NetnsLab) -> anyhow::Result<()> {
    let over_way = Way::named(lab, "do")?;
    let over = populate(&over_way, 7300, 511, 129, 3, Some("128"))?;
    let mut calm = Vec::new();
    for i in 0..3u16 {
        let way = Way::named(lab, &format!("c{i}"))?;
        calm.push(populate(&way, 7301 + i, 16, usize::from(i), 0, None)?);
    }
    let tmux = common::tmux::Tmux::start(
        format!("sockq-test-{}-allnetns", std::process::id()),
        "allnetns",
        (110, 40),
        &format!(
            "'{}' --all-netns --no-owners; echo EXITED rc=$?; sleep 60",
            common::sockq_bin()
        ),
        &["RUST_BACKTRACE", "RUST_LIB_BACKTRACE"],
    )?;
    let over_label = over.way.label();
    let ours: Vec<String> = calm.iter().map(|n| n.way.label()).collect();
    // the overflowing namespace above every other of ours, with its critical finding; only
    // namespaces with critical findings of their own (other engineers' tests) may be above it
    let ranked = |s: &str| -> Option<usize> {
        let rows: Vec<&str> = s.lines().skip(2).collect();
        let at = rows
            .iter()
            .position(|l| l.contains(&format!(" {over_label} ")))?;
        let row = rows[at];
        let calm_below = ours.iter().all(|c| {
            rows.iter()
                .position(|l| l.contains(&format!(" {c} ")))
                .is_some_and(|i| i > at)
        });
        let only_crit_above = rows[..at].iter().all(|l| l.contains("CRIT"));
        (row.contains("CRIT") && row.contains(" 128 ") && calm_below && only_crit_above)
            .then_some(at)
    };
    let screen = tmux.wait_for("the overflowing namespace first with CRIT", DEADLINE, |s| {
        ranked(s).is_some()
    })?;
    let at = ranked(&screen).context("ranked")?;
    for _ in 0..at {
        tmux.keys(&["Down"])?;
    }
    tmux.keys(&["Enter"])?;
    tmux.wait_for("the namespace's own screens", DEADLINE, |s| {
        s.contains("127.0.0.1:7300")
            && s.contains(&over_label)
            && !s.contains("every network namespace")
    })?;
    tmux.keys(&["Escape"])?;
    tmux.wait_for("back to the namespaces view", DEADLINE, |s| {
        s.contains("every network namespace")
    })?;
    tmux.keys(&["q"])?;
    tmux.wait_for("sockq exited cleanly", DEADLINE, |s| {
        s.contains("EXITED rc=0")
    })?;
    drop(tmux);
    drop(calm);
    drop(over);
    Ok(())
}
