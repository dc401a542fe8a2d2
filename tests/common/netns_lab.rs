//! Network namespaces a live test makes on the host itself (not inside a private namespace of
//! its own): named ones (`ip netns add`) and ones held only by a child process
//! (`unshare -n sleep`), all removed again on every path.
//!
//! Names are `<prefix><pid>-<tag>`; namespaces left by a test process that no longer exists are
//! deleted when a new lab with the same prefix starts. Holder children are killed and reaped on
//! drop, and get SIGKILL when the thread that spawned them ends (`setpriv --pdeathsig`).

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};

/// How long a holder child may take to be in its own namespace.
const HOLDER_DEADLINE: Duration = Duration::from_secs(30);

/// Says loudly that live test `test` cannot run here because it `why` ("needs root …"): under CI
/// (CI=true) the test fails, elsewhere it is skipped with a notice.
pub fn cannot_run(test: &str, why: &str) {
    let msg = format!("live test `{test}` {why}");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("\n*** SKIPPED: {msg} ***\n");
}

/// Root, or a loud skip (a failure under CI).
pub fn privileged(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    cannot_run(test, "needs root (ip netns add, unshare, setns)");
    false
}

/// Runs `f` on a fresh [`NetnsLab`] with names `<prefix><pid>-…` when the test is
/// [`privileged`]; the lab is removed before a failure of `f` panics.
pub fn with_lab(test: &str, prefix: &str, f: impl FnOnce(&mut NetnsLab) -> anyhow::Result<()>) {
    if !privileged(test) {
        return;
    }
    let mut lab = NetnsLab::new(prefix);
    let result = f(&mut lab);
    drop(lab);
    if let Err(e) = result {
        panic!("{e:#}");
    }
}

/// The inode of `path` (for a namespace file: the namespace's).
pub fn inode_of(path: &str) -> anyhow::Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("stat {path}"))?
        .ino())
}

/// Children that each hold a network namespace of their own (`unshare -n sleep 600`); killed
/// and reaped on drop.
#[derive(Default)]
pub struct Holders {
    children: Vec<Child>,
}

impl Holders {
    /// A new holder: its pid and namespace inode, once it runs `sleep` in a namespace that is
    /// not the caller's.
    pub fn spawn(&mut self) -> anyhow::Result<(u32, u64)> {
        let host = inode_of("/proc/self/ns/net")?;
        let child = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "unshare", "-n", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .context("setpriv --pdeathsig KILL unshare -n sleep 600")?;
        let pid = child.id();
        self.children.push(child);
        let deadline = Instant::now() + HOLDER_DEADLINE;
        loop {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if let Ok(ns) = inode_of(&format!("/proc/{pid}/ns/net")) {
                if ns != host && comm.trim() == "sleep" {
                    return Ok((pid, ns));
                }
            }
            ensure!(
                Instant::now() < deadline,
                "child {pid} not in its own namespace after {HOLDER_DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills and reaps the holder `pid` (its namespace goes unless something else holds it).
    pub fn kill(&mut self, pid: u32) -> anyhow::Result<()> {
        let i = self
            .children
            .iter()
            .position(|c| c.id() == pid)
            .with_context(|| format!("no holder child {pid}"))?;
        let mut c = self.children.remove(i);
        let killed = c.kill();
        c.wait()?;
        Ok(killed?)
    }

    /// Kills and reaps every holder.
    pub fn kill_all(&mut self) {
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Holders {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// The namespaces a test made on the host; all removed on drop.
pub struct NetnsLab {
    prefix: String,
    names: Vec<String>,
    holders: Holders,
}

impl NetnsLab {
    /// A lab whose names start with `<prefix><pid>-`, after deleting the namespaces of earlier
    /// test processes with `prefix` that no longer exist.
    pub fn new(prefix: &str) -> Self {
        remove_leftovers(prefix);
        NetnsLab {
            prefix: format!("{prefix}{}-", std::process::id()),
            names: Vec::new(),
            holders: Holders::default(),
        }
    }

    /// `ip netns add <prefix><pid>-<tag>`: its name and inode.
    pub fn add_named(&mut self, tag: &str) -> anyhow::Result<(String, u64)> {
        let name = format!("{}{tag}", self.prefix);
        // remembered before it exists, so a half-made one is deleted too
        self.names.push(name.clone());
        super::run_ok("ip", &["netns", "add", &name])?;
        let inode = inode_of(&format!("/run/netns/{name}"))?;
        Ok((name, inode))
    }

    /// `ip netns delete NAME` (of a namespace this lab made).
    pub fn delete_named(&mut self, name: &str) -> anyhow::Result<()> {
        ensure!(
            self.names.iter().any(|n| n == name),
            "{name}: not made here"
        );
        super::run_ok("ip", &["netns", "delete", name])?;
        Ok(())
    }

    /// A namespace held only by an `unshare -n sleep` child: its pid and namespace inode.
    pub fn add_held(&mut self) -> anyhow::Result<(u32, u64)> {
        self.holders.spawn()
    }

    /// Kills and reaps the holder `pid`.
    pub fn kill_held(&mut self, pid: u32) -> anyhow::Result<()> {
        self.holders.kill(pid)
    }
}

impl Drop for NetnsLab {
    fn drop(&mut self) {
        self.holders.kill_all();
        for n in &self.names {
            let _ = Command::new("ip")
                .args(["netns", "delete", n])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Deletes `<prefix><pid>-…` namespaces of test processes that no longer exist.
fn remove_leftovers(prefix: &str) {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !std::path::Path::new("/proc").join(pid).exists() {
            let _ = Command::new("ip").args(["netns", "delete", &name]).status();
        }
    }
}

/// TCP listeners as `ss -ltnH` shows them: (local address, Recv-Q, Send-Q).
pub type SsListeners = BTreeSet<(String, u32, u32)>;

/// `ss -ltnH` in the namespace named `name` (`ip netns exec`).
pub fn ss_listeners_named(name: &str) -> anyhow::Result<SsListeners> {
    parse_ss_ltn(&super::run_ok(
        "ip",
        &["netns", "exec", name, "ss", "-ltnH"],
    )?)
}

/// `ss -ltnH` in the namespace of process `pid` (`nsenter -t PID -n`).
pub fn ss_listeners_held(pid: u32) -> anyhow::Result<SsListeners> {
    parse_ss_ltn(&super::run_ok(
        "nsenter",
        &["-t", &pid.to_string(), "-n", "ss", "-ltnH"],
    )?)
}

fn parse_ss_ltn(out: &str) -> anyhow::Result<SsListeners> {
    out.lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            ensure!(f.len() >= 4 && f[0] == "LISTEN", "ss line {line:?}");
            Ok((f[3].to_string(), f[1].parse()?, f[2].parse()?))
        })
        .collect()
}
