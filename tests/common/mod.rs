//! Shared helpers for live tests: a private network namespace per test, real sockets, `ss`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sched::{unshare, CloneFlags};
use socket2::{Domain, Socket, Type};
use sockq::collect::{Collector, CollectorOptions};
use sockq::model::Snapshot;

/// Runs `f` on a fresh thread inside a new, private network namespace with `lo` up.
///
/// Without the privilege to make one: under CI (CI=true) the test fails; elsewhere it says
/// loudly that it was skipped.
pub fn in_netns<F>(name: &str, f: F)
where
    F: FnOnce() -> anyhow::Result<()> + Send + 'static,
{
    let name = name.to_string();
    let handle = std::thread::spawn(move || -> anyhow::Result<bool> {
        if let Err(e) = unshare(CloneFlags::CLONE_NEWNET) {
            let msg = format!("live test `{name}` needs a private network namespace (root): unshare(CLONE_NEWNET): {e}");
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                anyhow::bail!("{msg}");
            }
            eprintln!("\n*** SKIPPED: {msg} ***\n");
            return Ok(false);
        }
        run_ok("ip", &["link", "set", "lo", "up"])?;
        f()?;
        Ok(true)
    });
    match handle.join() {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("{e:#}"),
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// Runs a command (in the calling thread's namespace) and returns its stdout; fails on non-zero.
pub fn run_ok(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(cmd).args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "`{cmd} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Writes a sysctl of the calling thread's namespace.
pub fn set_sysctl(path: &str, value: &str) -> anyhow::Result<()> {
    std::fs::write(format!("/proc/sys/{path}"), value)?;
    Ok(())
}

/// A TCP listener with an exact backlog.
pub fn listen(addr: &str, backlog: i32) -> anyhow::Result<(Socket, SocketAddr)> {
    let addr: SocketAddr = addr.parse()?;
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(backlog)?;
    let local = s
        .local_addr()?
        .as_socket()
        .ok_or_else(|| anyhow::anyhow!("no inet address"))?;
    Ok((s, local))
}

/// `n` clients whose handshake completes (blocking connect).
pub fn connect_n(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<std::net::TcpStream>> {
    (0..n)
        .map(|_| {
            Ok(std::net::TcpStream::connect_timeout(
                &addr,
                Duration::from_secs(2),
            )?)
        })
        .collect()
}

/// `n` clients that only send their SYN (non-blocking connect, left pending).
pub fn syn_only_clients(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<Socket>> {
    (0..n)
        .map(|_| {
            let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
            s.set_nonblocking(true)?;
            match s.connect(&addr.into()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(s)
        })
        .collect()
}

/// A collector of the calling thread's namespace.
pub fn collector() -> anyhow::Result<Collector> {
    Collector::new("test".into(), CollectorOptions::default())
}

/// Samples until `pred` holds or `timeout` passes; returns the last sample.
pub fn sample_until(
    c: &mut Collector,
    timeout: Duration,
    pred: impl Fn(&Snapshot) -> bool,
) -> anyhow::Result<Snapshot> {
    let start = Instant::now();
    loop {
        let s = c.sample()?;
        if pred(&s) || start.elapsed() > timeout {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Path of the built binary.
pub fn sockq_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sockq")
}
