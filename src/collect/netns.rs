//! Choosing and entering the network namespace to watch.
//!
//! Network namespaces are per thread: the collector runs on a thread of its own that enters the
//! target namespace with setns(2) and then creates its sock_diag socket (which stays in that
//! namespace) and reads `/proc/thread-self/net/*` and `/proc/sys/net/*` (which follow the
//! reading thread's namespace). The rest of the process stays where it was.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::sched::{setns, CloneFlags};
use thiserror::Error;

use super::CollectError;

/// Which network namespace to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsTarget {
    /// The namespace of the calling thread (normally sockq's own).
    Current,
    /// A named namespace under /run/netns (as made by `ip netns add NAME`).
    Named(String),
    /// The namespace of a process (e.g. a container's main process).
    Pid(u32),
    /// The calling thread's namespace, which the workshop lab made private.
    Lab,
}

/// Why a namespace could not be entered.
#[derive(Debug, Error)]
pub enum NetnsError {
    /// The name is not a plain file name.
    #[error(
        "invalid namespace name {0:?}: expected a name under /run/netns such as `blue` (no '/')"
    )]
    BadName(String),
    /// No such named namespace.
    #[error("no network namespace named {name:?}: {path} does not exist (see `ip netns list`)")]
    NoSuchName {
        /// The name asked for.
        name: String,
        /// The path tried.
        path: String,
    },
    /// No such process.
    #[error("no process with pid {0}: cannot read its network namespace")]
    NoSuchPid(u32),
    /// Not allowed.
    #[error("permission denied entering the network namespace {what}: {why} (run sockq as root, or with CAP_SYS_ADMIN)")]
    Permission {
        /// Which namespace.
        what: String,
        /// The OS error.
        why: String,
    },
    /// Any other failure.
    #[error("cannot enter the network namespace {what}: {why}")]
    Other {
        /// Which namespace.
        what: String,
        /// The OS error.
        why: String,
    },
}

impl NetnsTarget {
    /// The label used in output: `current`, `name:NAME` or `pid:PID`.
    pub fn label(&self) -> String {
        match self {
            NetnsTarget::Current => "current".into(),
            NetnsTarget::Named(n) => format!("name:{n}"),
            NetnsTarget::Pid(p) => format!("pid:{p}"),
            NetnsTarget::Lab => "lab (private)".into(),
        }
    }

    fn path(&self) -> Result<Option<PathBuf>, NetnsError> {
        match self {
            NetnsTarget::Current | NetnsTarget::Lab => Ok(None),
            NetnsTarget::Named(n) => {
                if n.is_empty() || n.contains('/') || n == "." || n == ".." {
                    return Err(NetnsError::BadName(n.clone()));
                }
                Ok(Some(PathBuf::from("/run/netns").join(n)))
            }
            NetnsTarget::Pid(p) => Ok(Some(PathBuf::from(format!("/proc/{p}/ns/net")))),
        }
    }

    /// Enters the namespace on the calling thread. Call it only on a thread dedicated to the
    /// collector: the thread stays in that namespace.
    pub fn enter_on_this_thread(&self) -> Result<(), NetnsError> {
        let Some(path) = self.path()? else {
            return Ok(());
        };
        let what = self.label();
        let file = File::open(&path).map_err(|e| match (self, e.kind()) {
            (NetnsTarget::Named(n), std::io::ErrorKind::NotFound) => NetnsError::NoSuchName {
                name: n.clone(),
                path: path.display().to_string(),
            },
            (NetnsTarget::Pid(p), std::io::ErrorKind::NotFound) => NetnsError::NoSuchPid(*p),
            (_, std::io::ErrorKind::PermissionDenied) => NetnsError::Permission {
                what: what.clone(),
                why: e.to_string(),
            },
            _ => NetnsError::Other {
                what: what.clone(),
                why: e.to_string(),
            },
        })?;
        setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| match e {
            nix::errno::Errno::EPERM => NetnsError::Permission {
                what: what.clone(),
                why: e.desc().to_string(),
            },
            nix::errno::Errno::EINVAL => NetnsError::Other {
                what: what.clone(),
                why: format!("{} is not a network namespace", path.display()),
            },
            other => NetnsError::Other {
                what: what.clone(),
                why: other.desc().to_string(),
            },
        })
    }
}

/// Inode of the calling thread's network namespace, when readable.
pub fn current_netns_inode() -> Option<u64> {
    std::fs::metadata("/proc/thread-self/ns/net")
        .ok()
        .map(|m| m.ino())
}

/// Runs `f` on a new thread that has entered `target`, and returns its result. The namespace is
/// entered before `f` runs, so sockets `f` creates live in it.
pub fn run_in<T, F>(target: &NetnsTarget, f: F) -> Result<T, CollectError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, CollectError> + Send + 'static,
{
    let target = target.clone();
    let handle = std::thread::Builder::new()
        .name("sockq-netns".into())
        .spawn(move || {
            target.enter_on_this_thread()?;
            f()
        })
        .map_err(|source| CollectError::Spawn {
            what: "starting the collector thread",
            source,
        })?;
    match handle.join() {
        Ok(r) => r,
        Err(_) => Err(CollectError::Thread("the collector thread panicked")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_before_any_syscall() {
        for bad in ["", "a/b", "..", "."] {
            let e = NetnsTarget::Named(bad.into()).enter_on_this_thread();
            assert!(matches!(e, Err(NetnsError::BadName(_))), "{bad:?}: {e:?}");
        }
    }

    #[test]
    fn unknown_name_and_pid_are_named_in_the_error() {
        let e = NetnsTarget::Named("sockq-no-such-ns".into())
            .enter_on_this_thread()
            .unwrap_err();
        assert!(e.to_string().contains("sockq-no-such-ns"), "{e}");
        // pid_max is at most 2^22, so this pid cannot exist.
        let e = NetnsTarget::Pid(99_999_999)
            .enter_on_this_thread()
            .unwrap_err();
        assert!(matches!(e, NetnsError::NoSuchPid(99_999_999)), "{e}");
        assert!(e.to_string().contains("99999999"));
    }
}
