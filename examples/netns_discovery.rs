//! netns_discovery: every network namespace of this host as `collect::netns_all` finds and
//! names it, and what a discovery refresh costs (docs/perf.md, "Discovering every namespace").
//!
//!     cargo build --release --example netns_discovery
//!     target/release/examples/netns_discovery                  # list (root sees everything)
//!     sudo target/release/examples/netns_discovery --bench 30,200 --runs 21
//!
//! `--bench N,…` (root): for each N, makes N namespaces — half with `ip netns add
//! sockq-perf-PID-nI`, half held by `unshare -n sleep 600` children — and times, medians of
//! `--runs`: a cold refresh (a new `Discovery`: every namespace is new and named), a warm one
//! (the same `Discovery` again: nothing new), and `lsns -t net` (util-linux, the nearest tool:
//! it reads every process's namespaces) as a yardstick, as a whole process. Then removes them.
//! Cleanup runs on success, on error and on Ctrl-C; the children also die with this process
//! (`setpriv --pdeathsig KILL`). After a SIGKILL: `ip netns list | grep sockq-perf-`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sockq::collect::netns_all::{Discovery, DiscoveryOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match value("--bench") {
        None => list(),
        Some(sizes) => {
            let runs: usize = value("--runs").map_or(21, |r| r.parse().expect("--runs N"));
            let sizes: Vec<usize> = sizes
                .split(',')
                .map(|n| n.parse().expect("--bench N,M"))
                .collect();
            let stop = Arc::new(AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(sig, stop.clone()).expect("signal handler");
            }
            println!("| namespaces made | found | processes | cold refresh wall / CPU | warm refresh wall / CPU (min–max) | `lsns -t net` wall | warm / lsns |");
            println!("|---|---|---|---|---|---|---|");
            for n in sizes {
                if let Err(e) = bench(n, runs, &stop) {
                    eprintln!("netns_discovery: {e}");
                    std::process::exit(1);
                }
                if stop.load(Ordering::Relaxed) {
                    eprintln!("netns_discovery: interrupted (cleaned up)");
                    std::process::exit(130);
                }
            }
        }
    }
}

fn list() {
    let mut d = Discovery::new(DiscoveryOptions::default());
    if let Err(e) = d.refresh() {
        eprintln!("netns_discovery: {e}");
        std::process::exit(1);
    }
    for r in d.namespaces() {
        println!(
            "net:[{}]  {:<40} {:<30} {} process(es)",
            r.inode,
            r.label(),
            format!("{:?}", r.enter),
            r.processes
        );
    }
    if let Some(b) = d.blind_spot() {
        println!("not seen: {b}");
    }
    let c = d.cost();
    println!(
        "{} namespaces, {} processes, {:.2} ms wall, {:.2} ms CPU",
        c.namespaces,
        c.processes,
        ms(c.wall),
        ms(c.cpu)
    );
}

/// Namespaces made for a run; removed on drop.
struct Made {
    names: Vec<String>,
    children: Vec<Child>,
}

impl Drop for Made {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "delete", n]).status();
        }
    }
}

fn make(n: usize, stop: &AtomicBool) -> Result<Made, String> {
    let mut made = Made {
        names: Vec::new(),
        children: Vec::new(),
    };
    let host = std::fs::read_link("/proc/self/ns/net").map_err(|e| e.to_string())?;
    for i in 0..n {
        if stop.load(Ordering::Relaxed) {
            return Ok(made);
        }
        if i % 2 == 0 {
            let name = format!("sockq-perf-{}-n{i}", std::process::id());
            let ok = Command::new("ip")
                .args(["netns", "add", &name])
                .status()
                .map_err(|e| format!("ip netns add: {e}"))?
                .success();
            if !ok {
                return Err(format!("ip netns add {name} failed (root needed)"));
            }
            made.names.push(name);
        } else {
            let child = Command::new("setpriv")
                .args(["--pdeathsig", "KILL", "unshare", "-n", "sleep", "600"])
                .stdin(Stdio::null())
                .spawn()
                .map_err(|e| format!("unshare -n sleep: {e}"))?;
            made.children.push(child);
        }
    }
    // wait until every child has entered its own namespace (and exec'd sleep)
    let deadline = Instant::now() + Duration::from_secs(60);
    for c in &made.children {
        let pid = c.id();
        loop {
            let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if ns.is_some_and(|ns| ns != host) && comm.trim() == "sleep" {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "child {pid} did not enter its namespace within 60 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(made)
}

fn bench(n: usize, runs: usize, stop: &AtomicBool) -> Result<(), String> {
    let made = make(n, stop)?;
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut lsns = Vec::new();
    let mut found = 0;
    let mut processes = 0;
    let mut d = Discovery::new(DiscoveryOptions::default());
    d.refresh().map_err(|e| e.to_string())?;
    for _ in 0..runs {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // interleaved: cold, warm, lsns
        let mut fresh = Discovery::new(DiscoveryOptions::default());
        fresh.refresh().map_err(|e| e.to_string())?;
        cold.push(fresh.cost());
        d.refresh().map_err(|e| e.to_string())?;
        warm.push(d.cost());
        found = d.namespaces().len();
        processes = d.cost().processes;
        let t = Instant::now();
        let out = Command::new("lsns")
            .args(["-t", "net", "-n"])
            .output()
            .map_err(|e| format!("lsns: {e}"))?;
        lsns.push(t.elapsed());
        if !out.status.success() {
            return Err("lsns -t net failed".into());
        }
    }
    drop(made);
    if cold.is_empty() {
        return Ok(());
    }
    let med = |mut v: Vec<Duration>| {
        v.sort();
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let (cw, _, _) = med(cold.iter().map(|c| c.wall).collect());
    let (cc, _, _) = med(cold.iter().map(|c| c.cpu).collect());
    let (ww, wmin, wmax) = med(warm.iter().map(|c| c.wall).collect());
    let (wc, _, _) = med(warm.iter().map(|c| c.cpu).collect());
    let (lw, _, _) = med(lsns);
    println!(
        "| {n} | {found} | {processes} | {:.2} / {:.2} ms | {:.2} / {:.2} ms ({:.2}–{:.2}) | {:.2} ms | {:.2} |",
        ms(cw),
        ms(cc),
        ms(ww),
        ms(wc),
        ms(wmin),
        ms(wmax),
        ms(lw),
        ww.as_secs_f64() / lw.as_secs_f64()
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
