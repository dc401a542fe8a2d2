//! The system calls of discovery: which process is in which network namespace (/proc), and
//! which namespaces are bind-mounted under /run/netns and /var/run/docker/netns.
//!
//! Nothing here fails as a whole but listing /proc itself: processes exit while /proc is read
//! (skipped), and what cannot be read for lack of privilege is counted, so discovery can say
//! in one line what it could not see.

use std::collections::HashMap;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use procfs::ProcError;

use super::parse::parse_netns_link;

/// What /proc says about one process that matters for choosing a namespace's main process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcDetail {
    /// Parent pid (0 for pid 1 and kernel threads' root).
    pub ppid: u32,
    /// Start time in clock ticks after boot: with the pid, a process's identity.
    pub starttime: u64,
    /// Command name.
    pub comm: String,
}

/// One process as a scan saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcSeen {
    pub pid: u32,
    /// Its network namespace (of its main thread).
    pub inode: u64,
    /// Read for processes outside the host namespace, and pids 1 and 2; `None` when unreadable.
    pub detail: Option<ProcDetail>,
}

/// Where a namespace is bind-mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum MountKind {
    /// /run/netns (ip netns).
    IpNetns,
    /// /var/run/docker/netns.
    Docker,
}

/// A bind-mounted namespace file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountSeen {
    pub kind: MountKind,
    /// Its file name (the `ip netns` name, docker's sandbox key).
    pub name: String,
    pub path: PathBuf,
    pub inode: u64,
}

/// Everything one scan saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Observation {
    /// Processes whose namespace could be read, in /proc order.
    pub procs: Vec<ProcSeen>,
    pub mounts: Vec<MountSeen>,
    /// The host's namespace: pid 1's, else kthreadd's; `None` when neither is readable.
    pub host: Option<u64>,
}

/// What a scan could not read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ScanGaps {
    /// Processes listed in /proc.
    pub listed: u32,
    /// Processes whose /proc/PID/ns/net could not be read for lack of privilege.
    pub denied: u32,
    /// The first few of them.
    pub denied_pids: Vec<u32>,
    /// Other failures (besides processes that exited), first one kept.
    pub other: Option<String>,
    /// Mount directories that could not be listed (other than "does not exist"), with why.
    pub mount_dirs: Vec<String>,
}

/// How many pids of processes whose namespace is unreadable are named.
pub(crate) const DENIED_PIDS_SHOWN: usize = 3;

/// Where discovery looks.
#[derive(Debug, Clone)]
pub(crate) struct Places {
    pub proc_root: PathBuf,
    pub ip_netns: PathBuf,
    pub docker_netns: PathBuf,
}

/// Reads every process's namespace and every bind mount.
pub(crate) fn observe(places: &Places) -> io::Result<(Observation, ScanGaps)> {
    let mut gaps = ScanGaps::default();
    let mut obs = Observation::default();
    let procs = procfs::process::all_processes_with_root(&places.proc_root).map_err(to_io)?;
    // The host's namespace first (the processes outside it are the ones whose details are
    // read): pid 1's, or when that is unreadable (pid 1 of a sandbox may refuse even root),
    // kthreadd's: kernel threads live in the initial network namespace.
    obs.host = netns_of(&places.proc_root, 1)
        .ok()
        .flatten()
        .or_else(|| kthreadd_netns(&places.proc_root));
    // One pass, one process at a time (a `Process` holds a descriptor: holding them all could
    // exhaust sockq's fd limit on a large host): its namespace (one readlink), and for a
    // process outside the host namespace, its parent, start time and name (its stat), which
    // choose a namespace's main process. The host's main process is pid 1.
    for p in procs {
        gaps.listed += 1;
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                note(&mut gaps, &e);
                continue;
            }
        };
        let Ok(pid) = u32::try_from(p.pid) else {
            continue;
        };
        let inode = match netns_of(&places.proc_root, pid) {
            Ok(Some(inode)) => inode,
            Ok(None) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                gaps.denied += 1;
                if gaps.denied_pids.len() < DENIED_PIDS_SHOWN {
                    gaps.denied_pids.push(pid);
                }
                continue;
            }
            Err(e) => {
                gaps.other.get_or_insert_with(|| {
                    format!("{}/{pid}/ns/net: {e}", places.proc_root.display())
                });
                continue;
            }
        };
        let detail = if obs.host != Some(inode) || pid <= 2 {
            p.stat().ok().map(|s| ProcDetail {
                ppid: u32::try_from(s.ppid).unwrap_or(0),
                starttime: s.starttime,
                comm: s.comm,
            })
        } else {
            None
        };
        obs.procs.push(ProcSeen { pid, inode, detail });
    }
    for (kind, dir) in [
        (MountKind::IpNetns, &places.ip_netns),
        (MountKind::Docker, &places.docker_netns),
    ] {
        match mounts_in(dir, kind) {
            Ok(m) => obs.mounts.extend(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => gaps.mount_dirs.push(format!("{}: {e}", dir.display())),
        }
    }
    Ok((obs, gaps))
}

/// The namespace inode of a process from its /proc/PID/ns/net link (`net:[INODE]`).
/// Reading it needs ptrace read access to the process (same user, or CAP_SYS_PTRACE).
fn netns_of(proc_root: &Path, pid: u32) -> io::Result<Option<u64>> {
    let target = std::fs::read_link(proc_root.join(pid.to_string()).join("ns/net"))?;
    Ok(parse_netns_link(target.as_os_str().as_bytes()))
}

/// The namespace of pid 2 when it is kthreadd (parent 0): only in the initial PID namespace.
fn kthreadd_netns(proc_root: &Path) -> Option<u64> {
    let stat = procfs::process::Process::new_with_root(proc_root.join("2"))
        .and_then(|p| p.stat())
        .ok()?;
    if stat.ppid != 0 || stat.comm != "kthreadd" {
        return None;
    }
    netns_of(proc_root, 2).ok().flatten()
}

/// Counts a process that could not be opened (exited ones are not counted).
fn note(gaps: &mut ScanGaps, e: &ProcError) {
    match e {
        ProcError::NotFound(_) => {}
        ProcError::PermissionDenied(_) => gaps.denied += 1,
        other => {
            gaps.other.get_or_insert_with(|| other.to_string());
        }
    }
}

fn to_io(e: ProcError) -> io::Error {
    match e {
        ProcError::Io(e, _) => e,
        ProcError::NotFound(p) => io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} not found", p.unwrap_or_default().display()),
        ),
        ProcError::PermissionDenied(p) => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{}: permission denied", p.unwrap_or_default().display()),
        ),
        other => io::Error::other(other.to_string()),
    }
}

/// The namespace files bind-mounted in `dir`. A file that is not a namespace (ip creates the
/// file before it mounts the namespace on it; a stale file after a failed mount) is skipped.
fn mounts_in(dir: &Path, kind: MountKind) -> io::Result<Vec<MountSeen>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        let is_nsfs = nix::sys::statfs::statfs(&path)
            .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::NSFS_MAGIC);
        if !is_nsfs {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        out.push(MountSeen {
            kind,
            name: entry.file_name().to_string_lossy().into_owned(),
            path,
            inode: meta.ino(),
        });
    }
    Ok(out)
}

/// Pid → namespace of every process seen (for "is the parent outside").
pub(crate) fn netns_by_pid(obs: &Observation) -> HashMap<u32, u64> {
    obs.procs.iter().map(|p| (p.pid, p.inode)).collect()
}
