//! Live (root): `sockq snapshot --all-netns` names a docker container by its cgroup path even
//! when sockq itself runs in a container with a private cgroup namespace (the DaemonSet of
//! docs/deploy.md), where the kernel prints other processes' cgroup paths relative to sockq's
//! own cgroup namespace root and the `docker` level is cut off.
//!
//! On the cgroup v2 hierarchy (wherever it is mounted: /sys/fs/cgroup, or
//! /sys/fs/cgroup/unified on a hybrid host) the test makes two cgroups shaped like docker's
//! cgroupfs driver: `docker/<64 hex id>`, into which it moves an `unshare -n sleep 600` child
//! (a process holding its own network namespace: the "container"), and `docker/sockq-cgns-…`,
//! sockq's own "container": a shell moves itself there and execs `unshare --cgroup sockq
//! snapshot --all-netns --json`, so sockq's cgroup namespace is rooted at its own cgroup and it
//! sees the other container's path as `/../<id>` (checked first, with `cat` in the same setup).
//! The snapshot must name that namespace as the docker container with that id; run again
//! without CAP_SYS_ADMIN (`setpriv --bounding-set -sys_admin`), it cannot enter the host's
//! cgroup namespace, leaves the namespace unnamed and says so in its blind spot.
//!
//! Everything made here is removed on every path (drop guard; the child also gets SIGKILL when
//! the test process ends, `setpriv --pdeathsig`); leftovers of a test process that no longer
//! exists are removed first.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use common::netns_lab::{cannot_run, Holders};
use sockq::model::fleet::{FleetSnapshot, NetnsSnapshot};
use sockq::model::netns::{Container, Runtime};

const PREFIX: &str = "sockq-cgns-";
/// The test's container ids: this, then the test's pid in 8 hex digits.
const ID_STEM: &str = "5eedc0de5eedc0de5eedc0de5eedc0de5eedc0de5eedc0de5eedc0de";
const DEADLINE: Duration = Duration::from_secs(180);

/// Root and a cgroup v2 hierarchy, or a loud skip (a failure under CI).
fn setup(test: &str) -> Option<PathBuf> {
    let why = if !nix::unistd::geteuid().is_root() {
        "needs root (cgroups, unshare --cgroup, setns)"
    } else {
        match cgroup2_mount() {
            Some(m) => return Some(m),
            None => "needs a cgroup v2 hierarchy (none in /proc/self/mountinfo)",
        }
    };
    cannot_run(test, why);
    None
}

/// Where the whole cgroup v2 hierarchy is mounted (its root, `/`, mounted).
fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let f: Vec<&str> = left.split(' ').collect();
        let point = f.get(4)?;
        (right.split(' ').next() == Some("cgroup2") && f.get(3) == Some(&"/"))
            .then(|| PathBuf::from(point))
    })
}

/// The cgroups and the child this test made; all removed on drop.
struct Lab {
    /// Made by the test, removed in reverse order.
    dirs: Vec<PathBuf>,
    holders: Holders,
    files: Vec<PathBuf>,
}

impl Lab {
    fn new(mnt: &Path) -> Self {
        remove_leftovers(mnt);
        Lab {
            dirs: Vec::new(),
            holders: Holders::default(),
            files: Vec::new(),
        }
    }

    /// `dir` made (remembered only when this test made it).
    fn mkdir(&mut self, dir: &Path) -> anyhow::Result<()> {
        match std::fs::create_dir(dir) {
            Ok(()) => {
                self.dirs.push(dir.to_path_buf());
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e).with_context(|| format!("mkdir {}", dir.display())),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // first, so that the cgroups it was moved into are empty
        self.holders.kill_all();
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        for d in self.dirs.iter().rev() {
            rmdir_cgroup(d);
        }
    }
}

/// Removes an empty cgroup; a cgroup whose last process was just killed may stay busy for a
/// moment.
fn rmdir_cgroup(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes the cgroups of test processes that no longer exist.
fn remove_leftovers(mnt: &Path) {
    let Ok(entries) = std::fs::read_dir(mnt.join("docker")) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = if let Some(rest) = name.strip_prefix(PREFIX) {
            rest.split('-').next().and_then(|p| p.parse::<u32>().ok())
        } else if let Some(hex) = name.strip_prefix(ID_STEM) {
            u32::from_str_radix(hex, 16).ok()
        } else {
            None
        };
        if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
            rmdir_cgroup(&e.path());
        }
    }
}

/// Runs `args` in a new process that first moves itself into the cgroup `procs` (its
/// `cgroup.procs` file) and then runs them under `unshare --cgroup`; stdout to `out`.
fn in_private_cgroupns(procs: &Path, args: &[&str], out: &Path) -> anyhow::Result<String> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"p="$1"; shift; echo $$ > "$p" && exec unshare --cgroup "$@""#)
        .arg("sh")
        .arg(procs)
        .args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SOCKQ_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(out)?)
        .stderr(Stdio::piped())
        .spawn()
        .context("sh")?;
    let status = common::wait_with_timeout(&mut child, DEADLINE)?;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut err)?;
    }
    ensure!(
        status.success(),
        "{args:?} in a private cgroup namespace: {status}: {err}"
    );
    Ok(std::fs::read_to_string(out)?)
}

/// `sockq snapshot --all-netns --json`, run under `wrapper` (a command prefix, may be empty) in
/// a private cgroup namespace rooted at the cgroup `procs`, parsed.
fn snapshot_all_netns(procs: &Path, wrapper: &[&str], out: &Path) -> anyhow::Result<FleetSnapshot> {
    let mut args = wrapper.to_vec();
    args.extend([common::sockq_bin(), "snapshot", "--all-netns", "--json"]);
    let json = in_private_cgroupns(procs, &args, out)?;
    serde_json::from_str(&json).context("sockq's JSON")
}

/// The entry of `fleet` for the namespace `inode` of the holder `pid`.
fn listed(fleet: &FleetSnapshot, inode: u64, pid: u32) -> anyhow::Result<&NetnsSnapshot> {
    fleet
        .namespaces
        .iter()
        .find(|n| n.netns.inode == inode)
        .with_context(|| format!("namespace {inode} of pid {pid} not listed"))
}

#[test]
fn a_docker_container_is_named_from_a_private_cgroup_namespace() {
    let Some(mnt) = setup("a_docker_container_is_named_from_a_private_cgroup_namespace") else {
        return;
    };
    let mut lab = Lab::new(&mnt);
    run(&mut lab, &mnt).unwrap();
}

fn run(lab: &mut Lab, mnt: &Path) -> anyhow::Result<()> {
    let me = std::process::id();
    let id = format!("{ID_STEM}{me:08x}");
    let docker = mnt.join("docker");
    let container = docker.join(&id);
    let own = docker.join(format!("{PREFIX}{me}-self"));
    lab.mkdir(&docker)?;
    lab.mkdir(&container)?;
    lab.mkdir(&own)?;
    let (pid, inode) = lab.holders.spawn()?;
    std::fs::write(container.join("cgroup.procs"), pid.to_string())
        .with_context(|| format!("moving {pid} into {}", container.display()))?;
    let seen_here = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    ensure!(
        seen_here.lines().any(|l| l == format!("0::/docker/{id}")),
        "pid {pid} is not in docker/{id}: {seen_here}"
    );
    let out = std::env::temp_dir().join(format!("{PREFIX}{me}.json"));
    lab.files.push(out.clone());
    // the condition of the bug: from sockq's cgroup namespace the `docker` level is cut off
    let proc_cgroup = format!("/proc/{pid}/cgroup");
    let procs = own.join("cgroup.procs");
    let seen_there = in_private_cgroupns(&procs, &["cat", &proc_cgroup], &out)?;
    ensure!(
        seen_there.lines().any(|l| l == format!("0::/../{id}")),
        "a private cgroup namespace rooted at {} should see pid {pid} at /../{id}: {seen_there}",
        own.display()
    );
    let fleet = snapshot_all_netns(&procs, &[], &out)?;
    let ns = listed(&fleet, inode, pid)?;
    assert_eq!(
        ns.netns.name.container,
        Some(Container {
            runtime: Runtime::Docker,
            id: id.clone(),
            name: None,
        }),
        "namespace {inode} of pid {pid} in docker/{id}: {:?}; blind spot {:?}",
        ns.netns.name,
        fleet.blind_spot
    );
    assert!(
        !fleet
            .blind_spot
            .as_deref()
            .unwrap_or_default()
            .contains("cgroup paths are relative"),
        "{:?}",
        fleet.blind_spot
    );
    // Without CAP_SYS_ADMIN the host's cgroup namespace cannot be entered: today's view, and
    // the blind spot says so.
    let without_sys_admin = ["setpriv", "--bounding-set", "-sys_admin"];
    let fleet = snapshot_all_netns(&procs, &without_sys_admin, &out)?;
    let ns = listed(&fleet, inode, pid)?;
    assert_eq!(ns.netns.name.container, None, "{:?}", ns.netns.name);
    let blind = fleet.blind_spot.unwrap_or_default();
    assert!(
        blind.contains(
            "cgroup paths are relative to sockq's cgroup namespace: containers may be unnamed \
             (the host's cannot be entered: setns: Operation not permitted"
        ),
        "{blind}"
    );
    Ok(())
}
