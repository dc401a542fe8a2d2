//! Shared helpers for live tests: a private network namespace per test, real sockets, `ss`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sched::{unshare, CloneFlags};
use socket2::{Domain, Socket, Type};
use sockq::collect::{Collector, CollectorOptions};
use sockq::model::Snapshot;

pub mod exposition;
pub mod netns_lab;
pub mod promtool;
pub mod tmux;

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
    Ok(Collector::new("test".into(), CollectorOptions::default())?)
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

/// A `sockq` command (the built binary) with `args`, without any `SOCKQ_*` variable of the
/// test's environment (every flag is also an env var, which would change what is tested).
pub fn sockq_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(sockq_bin());
    cmd.args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SOCKQ_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs `sockq args…` (in the calling thread's namespace) to completion.
pub fn run_sockq(args: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(sockq_command(args)
        .stdin(std::process::Stdio::null())
        .output()?)
}

/// Waits until the TCP listener on `port` (calling thread's namespace) has `depth` connections
/// in its accept queue; fails after `timeout`. Uses the cheap listener dump only.
pub fn wait_for_accept_queue(port: u16, depth: u32, timeout: Duration) -> anyhow::Result<()> {
    let mut c = Collector::new(
        "test".into(),
        CollectorOptions {
            unix: false,
            owners: false,
            ..CollectorOptions::default()
        },
    )?;
    let start = Instant::now();
    loop {
        let now = c.listeners()?;
        let seen = now
            .listeners
            .iter()
            .find(|l| l.port == port)
            .map(|l| l.accept_queue);
        if seen == Some(depth) {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < timeout,
            "accept queue of port {port} is {seen:?} after {timeout:?}, expected {depth}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A UNIX stream listener bound to `path` with an exact backlog.
pub fn unix_listen(path: &std::path::Path, backlog: i32) -> anyhow::Result<Socket> {
    let s = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    s.bind(&socket2::SockAddr::unix(path)?)?;
    s.listen(backlog)?;
    Ok(s)
}

/// A fresh directory under the system temp dir, mode 0755, removed (with its contents) on drop.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// A new directory whose name contains `tag`, the pid and a per-process counter.
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sockq-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        Ok(Self(dir))
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits for `child` to exit; kills it (and fails) after `timeout`.
pub fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> anyhow::Result<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("pid {} still running after {timeout:?}: killed", child.id());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A JSON schema file checked in under docs/schema, parsed (panics with how to regenerate it).
pub fn checked_in_schema(path: &str, regenerate: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}; {regenerate}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}; {regenerate}"))
}

/// Every error of `doc` against the checked-in schema at `path`, one per line (empty when valid).
pub fn schema_errors(path: &str, regenerate: &str, doc: &serde_json::Value) -> String {
    let schema = checked_in_schema(path, regenerate);
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{path} is not a valid JSON Schema: {e}"));
    validator
        .iter_errors(doc)
        .map(|e| format!("  at {}: {e}\n", e.instance_path()))
        .collect()
}

/// `GET path` over HTTP/1.1 with `Connection: close`: (status, body). Generous timeouts.
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8(buf)?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no end of headers in {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("bad status line in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// The value of the sample `name{labels…}` in a Prometheus 0.0.4 text body.
pub fn metric_value(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, ""));
        let rest = format!(",{rest}");
        (n == name
            && labels
                .iter()
                .all(|(k, v)| rest.contains(&format!(",{k}=\"{v}\""))))
        .then(|| value.parse().ok())
        .flatten()
    })
}
