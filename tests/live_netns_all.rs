//! Live (root): discovery of every network namespace on a real host.
//!
//! Builds 30 namespaces — 15 with `ip netns add`, 15 held only by an `unshare -n sleep` child —
//! and checks that `collect::netns_all::Discovery` finds exactly the host's namespaces (its own
//! and these, against an enumeration made with coreutils `readlink`/`stat`), names the `ip netns`
//! ones by name and the process-held ones by their main process, follows one deleted, one
//! killed and one made while it refreshes; and that a sock_diag collector on a thread that
//! entered a discovered namespace (`NetnsTarget::Named` / `NetnsTarget::Pid`) reads exactly that
//! namespace's listeners, as `ip netns exec NAME ss -ltn` / `nsenter -t PID -n ss -ltn` do.
//!
//! Everything made here is removed on every path (drop guard; the children also get SIGKILL
//! when the thread that made them ends, `setpriv --pdeathsig`); names are
//! `sockq-nsall-<pid>-…`, and leftovers of a test process that no longer exists are removed
//! first. Other engineers' namespaces may come and go during the run: the checks only claim
//! what they can (see `matches_an_independent_enumeration`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use common::netns_lab::{
    inode_of, ss_listeners_held, ss_listeners_named, with_lab, NetnsLab, SsListeners,
};
use socket2::Socket;
use sockq::collect::netns::NetnsTarget;
use sockq::collect::netns_all::{run_in_ref, target, Discovery, DiscoveryOptions};
use sockq::collect::{Collector, CollectorOptions};
use sockq::model::netns::MainProcess;
use sockq::model::{EnterBy, NetnsChanges, NetnsRef};

const PREFIX: &str = "sockq-nsall-";

/// The namespaces of the host as coreutils sees them: `readlink /proc/*/ns/net` and the nsfs
/// files under /run/netns and /var/run/docker/netns (`stat -f` says nsfs, `stat -L` the inode).
fn enumerate_with_coreutils() -> anyhow::Result<BTreeSet<u64>> {
    let script = r#"
        for f in /proc/[0-9]*/ns/net; do readlink "$f"; done 2>/dev/null
        for f in /run/netns/* /var/run/docker/netns/*; do
            [ -e "$f" ] && [ "$(stat -f -c %T "$f" 2>/dev/null)" = nsfs ] &&
                echo "net:[$(stat -L -c %i "$f")]"
        done 2>/dev/null
        true"#;
    let out = common::run_ok("sh", &["-c", script])?;
    Ok(out
        .lines()
        .filter_map(|l| l.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok())
        .collect())
}

/// Discovery finds exactly what an independent enumeration finds. Other engineers' namespaces
/// may appear or go between the reads, so: whatever was there both before and after discovery
/// must be found, and nothing that was in neither. Retried a few times for such churn.
fn matches_an_independent_enumeration(d: &mut Discovery) -> anyhow::Result<()> {
    let mut last = String::new();
    for _ in 0..5 {
        let before = enumerate_with_coreutils()?;
        d.refresh()?;
        let after = enumerate_with_coreutils()?;
        let found: BTreeSet<u64> = d.namespaces().iter().map(|r| r.inode).collect();
        let stable: BTreeSet<u64> = before.intersection(&after).copied().collect();
        let seen: BTreeSet<u64> = before.union(&after).copied().collect();
        let missing: Vec<&u64> = stable.difference(&found).collect();
        let extra: Vec<&u64> = found.difference(&seen).collect();
        if missing.is_empty() && extra.is_empty() {
            return Ok(());
        }
        last = format!("missing {missing:?}, not seen by coreutils {extra:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("discovery differs from readlink/stat: {last}")
}

/// The host namespace as the kernel threads see it (pid 1's when readable).
fn host_inode() -> anyhow::Result<u64> {
    inode_of("/proc/1/ns/net").or_else(|_| inode_of("/proc/2/ns/net"))
}

/// A listener on 127.0.0.1:`port` with `backlog`, and `queued` connections waiting in its
/// accept queue, made on a thread that entered `r`; the sockets stay in that namespace.
fn listen_in(
    r: &NetnsRef,
    port: u16,
    backlog: i32,
    queued: usize,
) -> anyhow::Result<(Socket, Vec<TcpStream>)> {
    let (t, inode) = (target(r), r.inode);
    std::thread::spawn(move || -> anyhow::Result<(Socket, Vec<TcpStream>)> {
        t.enter_on_this_thread_expecting(inode)?;
        // a new namespace's lo is down; `ip` run from this thread runs in its namespace
        common::run_ok("ip", &["link", "set", "lo", "up"])?;
        let (s, addr) = common::listen(&format!("127.0.0.1:{port}"), backlog)?;
        let clients = common::connect_n(addr, queued)?;
        common::wait_for_accept_queue(port, queued as u32, Duration::from_secs(10))?;
        Ok((s, clients))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("listener thread panicked"))?
}

/// (local address, Recv-Q, Send-Q) of every TCP listener, as sockq reads them from a collector
/// made on a thread that entered `r` (checked to be `r`).
fn listeners_by_sockq(r: &NetnsRef) -> anyhow::Result<BTreeSet<(String, u32, u32)>> {
    let label = target(r).label();
    let listeners = run_in_ref(r, move || {
        let opts = CollectorOptions {
            unix: false,
            owners: false,
            ..CollectorOptions::default()
        };
        Ok(Collector::new(label, opts)?.listeners()?.listeners)
    })?;
    Ok(listeners
        .iter()
        .map(|l| {
            (
                std::net::SocketAddr::new(l.address, l.port).to_string(),
                l.accept_queue,
                l.backlog,
            )
        })
        .collect())
}

/// The same from `ss -ltnH`, run with `ip netns exec NAME` or `nsenter -t PID -n`.
fn listeners_by_ss(r: &NetnsRef) -> anyhow::Result<SsListeners> {
    match &r.enter {
        EnterBy::Named(name) => ss_listeners_named(name),
        EnterBy::Pid(pid) => ss_listeners_held(*pid),
        EnterBy::Path(p) => bail!("not made by this test: {}", p.display()),
    }
}

#[test]
fn thirty_namespaces_found_named_entered_and_followed() {
    with_lab(
        "thirty_namespaces_found_named_entered_and_followed",
        PREFIX,
        run,
    );
}

fn run(lab: &mut NetnsLab) -> anyhow::Result<()> {
    let named: Vec<(String, u64)> = (0..15)
        .map(|i| lab.add_named(&format!("n{i}")))
        .collect::<anyhow::Result<_>>()?;
    let held: Vec<(u32, u64)> = (0..15)
        .map(|_| lab.add_held())
        .collect::<anyhow::Result<_>>()?;

    // 1. found and named
    let mut d = Discovery::new(DiscoveryOptions::default());
    let first = d.refresh()?;
    let all = d.namespaces();
    let inodes: BTreeSet<u64> = all.iter().map(|r| r.inode).collect();
    ensure!(inodes.len() == all.len(), "an inode listed twice");
    let host = &all[0];
    ensure!(
        host.name.host && host.inode == host_inode()? && host.label() == "host",
        "the host first: {host:?}"
    );
    ensure!(
        all.iter().filter(|r| r.name.host).count() == 1,
        "one host namespace"
    );
    for (name, inode) in &named {
        let r = d.get(*inode).with_context(|| format!("{name} not found"))?;
        ensure!(r.label() == *name, "{name}: label {}", r.label());
        ensure!(r.name.ip_netns == [name.clone()], "{r:?}");
        ensure!(r.enter == EnterBy::Named(name.clone()), "{r:?}");
        ensure!(r.processes == 0 && r.name.main.is_none(), "{r:?}");
        ensure!(matches!(target(r), NetnsTarget::Named(_)));
        ensure!(first.added.iter().any(|a| a.inode == *inode));
    }
    for (pid, inode) in &held {
        let r = d
            .get(*inode)
            .with_context(|| format!("sleep {pid} not found"))?;
        let main = MainProcess {
            pid: *pid,
            comm: "sleep".into(),
        };
        ensure!(r.name.main.as_ref() == Some(&main), "{r:?}");
        ensure!(r.label() == format!("sleep[{pid}]"), "{r:?}");
        ensure!(r.enter == EnterBy::Pid(*pid), "{r:?}");
        ensure!(r.processes == 1 && r.name.ip_netns.is_empty(), "{r:?}");
        ensure!(matches!(target(r), NetnsTarget::Pid(_)));
        ensure!(first.added.iter().any(|a| a.inode == *inode));
    }
    ensure!(first.removed.is_empty() && first.changed.is_empty());
    // 2. exactly the host's namespaces: ours, the host's own, and whatever else is there
    matches_an_independent_enumeration(&mut d)?;

    // 3. a collector on a thread that entered each namespace reads its listeners exactly:
    // three named and three process-held namespaces listen (each its own port, backlog and
    // queue), four others have no listener
    let refs: Vec<NetnsRef> = named[..5]
        .iter()
        .map(|(_, i)| *i)
        .chain(held[..5].iter().map(|(_, i)| *i))
        .map(|i| d.get(i).cloned().context("gone"))
        .collect::<anyhow::Result<_>>()?;
    let listening = [0usize, 1, 2, 5, 6, 7];
    let mut keep = Vec::new();
    for (j, &k) in listening.iter().enumerate() {
        let port = 20_000 + j as u16;
        keep.push(listen_in(&refs[k], port, 8 + j as i32, j + 1)?);
    }
    for (k, r) in refs.iter().enumerate() {
        let by_sockq = listeners_by_sockq(r)?;
        let by_ss = listeners_by_ss(r)?;
        let expected: BTreeSet<(String, u32, u32)> = listening
            .iter()
            .position(|&l| l == k)
            .map(|j| {
                (
                    format!("127.0.0.1:{}", 20_000 + j),
                    j as u32 + 1,
                    8 + j as u32,
                )
            })
            .into_iter()
            .collect();
        ensure!(
            by_sockq == by_ss && by_ss == expected,
            "{}: sockq {by_sockq:?}, ss {by_ss:?}, made {expected:?}",
            r.label()
        );
    }
    drop(keep);

    // 4. followed while refreshing: one named namespace deleted, one holder killed, one named
    // namespace made, while another thread refreshes as fast as it can
    let stop = Arc::new(AtomicBool::new(false));
    let refresher = {
        let stop = stop.clone();
        std::thread::spawn(move || -> anyhow::Result<(Discovery, Vec<NetnsChanges>)> {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                seen.push(d.refresh()?);
                std::thread::sleep(Duration::from_millis(5));
            }
            seen.push(d.refresh()?);
            Ok((d, seen))
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let (gone_name, gone_named) = named[14].clone();
    let (gone_pid, gone_held) = held[14];
    lab.delete_named(&gone_name)?;
    lab.kill_held(gone_pid)?;
    let (late_name, late) = lab.add_named("late")?;
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let (d, seen) = refresher
        .join()
        .map_err(|_| anyhow::anyhow!("refresher panicked"))??;
    ensure!(seen.len() >= 3, "only {} refreshes", seen.len());
    eprintln!(
        "{} refreshes while following: deleted net:[{gone_named}], killed net:[{gone_held}], made net:[{late}]",
        seen.len()
    );

    let removed: Vec<&NetnsRef> = seen.iter().flat_map(|c| &c.removed).collect();
    let added: Vec<&NetnsRef> = seen.iter().flat_map(|c| &c.added).collect();
    let changed: Vec<&NetnsRef> = seen.iter().flat_map(|c| &c.changed).collect();
    let was = |r: &&NetnsRef, name: &str| r.name.ip_netns == [name.to_string()];
    let main_is = |r: &&NetnsRef, pid: u32| r.name.main.as_ref().is_some_and(|m| m.pid == pid);
    ensure!(
        removed
            .iter()
            .filter(|r| was(r, &gone_name) && r.inode == gone_named)
            .count()
            == 1,
        "{gone_name} removed once: {removed:?}"
    );
    ensure!(
        removed
            .iter()
            .filter(|r| main_is(r, gone_pid) && r.inode == gone_held)
            .count()
            == 1,
        "sleep[{gone_pid}] removed once: {removed:?}"
    );
    // the new one is added once under its name. While `ip netns add` runs, its own process
    // holds the namespace before the mount does: a refresh may see it as `ip[PID]` first (then
    // `changed` to its name while ip is still there, or removed and added again if ip exited
    // between two refreshes).
    let late_events: Vec<&&NetnsRef> = added.iter().filter(|r| r.inode == late).collect();
    ensure!(
        late_events.last().is_some_and(|r| r.label() == late_name)
            || changed
                .iter()
                .any(|r| r.inode == late && r.label() == late_name),
        "{late_name} added: {late_events:?}"
    );
    // A namespace of another test on this host may have had `late`'s inode before it was freed
    // (named `sockq-nsall-<its pid>-…`, or held by its own `sleep`): that one is not ours.
    let own = format!("{PREFIX}{}-", std::process::id());
    let foreign = |r: &&NetnsRef| {
        let foreign_name =
            !r.name.ip_netns.is_empty() && r.name.ip_netns.iter().all(|n| !n.starts_with(&own));
        let foreign_holder = r
            .name
            .main
            .as_ref()
            .is_some_and(|m| m.comm == "sleep" && !held.iter().any(|&(pid, _)| pid == m.pid));
        foreign_name || foreign_holder
    };
    let late_seen: Vec<&NetnsRef> = added
        .iter()
        .chain(&removed)
        .filter(|r| r.inode == late && !was(r, &gone_name) && !main_is(r, gone_pid))
        .filter(|r| !foreign(r))
        .copied()
        .collect();
    for r in late_seen {
        ensure!(
            r.label() == late_name || r.name.main.as_ref().is_some_and(|m| m.comm == "ip"),
            "{late_name} seen as {r:?}"
        );
    }
    // none of the 28 others moved
    let stayed: BTreeSet<u64> = named[..14]
        .iter()
        .map(|(_, i)| *i)
        .chain(held[..14].iter().map(|(_, i)| *i))
        .collect();
    for r in added.iter().chain(&removed).chain(&changed) {
        ensure!(!stayed.contains(&r.inode), "{} reported: {r:?}", r.label());
    }
    // and the list now. A freed namespace inode can be given to a namespace made since (ours,
    // `late`, or another test's on this host: discovery sees every namespace), so an entry with
    // a gone inode is wrong if nothing holds that inode now (`ls -L /proc/*/ns/net`,
    // /run/netns) or it still says what it was: the name it had, the holder that was killed.
    let alive_now = enumerate_with_coreutils()?;
    let listed_again: Vec<&NetnsRef> = d
        .namespaces()
        .iter()
        .filter(|r| {
            (r.inode == gone_named || r.inode == gone_held)
                && (!alive_now.contains(&r.inode) || was(r, &gone_name) || main_is(r, gone_pid))
        })
        .collect();
    ensure!(
        listed_again.is_empty(),
        "gone namespaces still listed: {listed_again:?}"
    );
    ensure!(d.get(late).is_some_and(|r| r.label() == late_name));
    ensure!(stayed.iter().all(|i| d.get(*i).is_some()));
    Ok(())
}
