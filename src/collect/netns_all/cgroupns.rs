//! Reading other processes' cgroup paths as the host sees them.
//!
//! The kernel prints /proc/PID/cgroup relative to the *reader's* cgroup namespace. sockq in a
//! container with a private cgroup namespace (Kubernetes and containerd give every pod one on
//! cgroup v2) would read `/../<id>` for a sibling container at `/docker/<id>`, the `docker` or
//! `kubepods` level cut off. A cgroup namespace can be entered per thread, so the reads are
//! made on a short-lived thread that entered the host's (pid 1's, or kthreadd's when pid 1
//! cannot be read, as for the host's network namespace) with setns(CLONE_NEWCGROUP) — which
//! needs CAP_SYS_ADMIN, as entering network namespaces does. Where sockq already is in it (on a
//! host), or the kernel has no cgroup namespaces, nothing is entered and no thread is started.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::sched::{setns, CloneFlags};

/// In which cgroup namespace the reads were made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CgroupView {
    /// sockq's own, which is the host's (or there is none to enter: no cgroup namespaces in
    /// the kernel, or a procfs without pid 1 such as a test's fake tree).
    Host,
    /// The host's, entered by the reading thread.
    Entered,
    /// sockq's own, which is not the host's: entering that failed (why).
    NotEntered(String),
    /// sockq's own; whether it is the host's is unknown: the host's could not be opened (why).
    Unknown(String),
}

/// Runs `f` on a thread in the host's cgroup namespace (see the module's doc), or on this
/// thread when sockq is in it already or it cannot be entered; says which.
pub(crate) fn in_host_cgroupns<T, F>(proc_root: &Path, f: F) -> (T, CgroupView)
where
    T: Send,
    F: Fn() -> T + Sync,
{
    let host = match open_host_cgroupns(proc_root) {
        Ok(Some(file)) => file,
        Ok(None) => return (f(), CgroupView::Host),
        Err(why) => return (f(), CgroupView::Unknown(why)),
    };
    let same = match (
        host.metadata(),
        std::fs::metadata("/proc/thread-self/ns/cgroup"),
    ) {
        (Ok(h), Ok(own)) => h.dev() == own.dev() && h.ino() == own.ino(),
        _ => false,
    };
    if same {
        return (f(), CgroupView::Host);
    }
    let joined = std::thread::scope(|s| {
        let spawned = std::thread::Builder::new()
            .name("sockq-cgroupns".into())
            .spawn_scoped(s, || match setns(&host, CloneFlags::CLONE_NEWCGROUP) {
                Ok(()) => (f(), CgroupView::Entered),
                Err(e) => {
                    let why = format!("setns: {} (needs CAP_SYS_ADMIN)", e.desc());
                    (f(), CgroupView::NotEntered(why))
                }
            });
        match spawned {
            Ok(handle) => handle.join(),
            Err(e) => {
                let why = format!("cannot start a thread to enter it: {e}");
                Ok((f(), CgroupView::NotEntered(why)))
            }
        }
    });
    match joined {
        Ok(done) => done,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The host's cgroup namespace file: pid 1's, or kthreadd's when pid 1's cannot be opened (pid
/// 1 of a sandbox may refuse even root). `None` when there is none (no cgroup namespaces in the
/// kernel; no pid 1 under `proc_root`); an error, with why, when it cannot be opened.
fn open_host_cgroupns(proc_root: &Path) -> Result<Option<File>, String> {
    let pid1 = proc_root.join("1/ns/cgroup");
    let first = match File::open(&pid1) {
        Ok(f) => return Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => e,
    };
    if is_kthreadd(proc_root) {
        if let Ok(f) = File::open(proc_root.join("2/ns/cgroup")) {
            return Ok(Some(f));
        }
    }
    Err(format!("{}: {first}", pid1.display()))
}

/// Pid 2 is kthreadd (parent 0): only in the initial PID namespace.
fn is_kthreadd(proc_root: &Path) -> bool {
    procfs::process::Process::new_with_root(proc_root.join("2"))
        .and_then(|p| p.stat())
        .is_ok_and(|s| s.ppid == 0 && s.comm == "kthreadd")
}
