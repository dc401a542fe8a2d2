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
    /// A namespace file bind-mounted elsewhere than /run/netns (e.g. docker's
    /// /var/run/docker/netns/KEY).
    Path(PathBuf),
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
    #[error("permission denied entering the network namespace {what}: {why} (run sockq as root, or with {needs})")]
    Permission {
        /// Which namespace.
        what: String,
        /// The OS error.
        why: String,
        /// The capability that step needs.
        needs: &'static str,
    },
    /// The namespace found there is not the one expected: the process exited and its pid was
    /// reused, or the name was deleted and made again.
    #[error("the network namespace {what} is gone: it is now net:[{found}], not net:[{expected}]")]
    Changed {
        /// Which namespace.
        what: String,
        /// The inode expected.
        expected: u64,
        /// The inode found.
        found: u64,
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
    /// The label used in output: `current`, `name:NAME`, `pid:PID` or `path:PATH`.
    pub fn label(&self) -> String {
        match self {
            NetnsTarget::Current => "current".into(),
            NetnsTarget::Named(n) => format!("name:{n}"),
            NetnsTarget::Pid(p) => format!("pid:{p}"),
            NetnsTarget::Path(p) => format!("path:{}", p.display()),
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
            NetnsTarget::Path(p) => Ok(Some(p.clone())),
        }
    }

    /// Enters the namespace on the calling thread. Call it only on a thread dedicated to the
    /// collector: the thread stays in that namespace.
    pub fn enter_on_this_thread(&self) -> Result<(), NetnsError> {
        self.enter_checked(None)
    }

    /// [`Self::enter_on_this_thread`], when the namespace found is the one with inode
    /// `expected` (as discovery saw it): checked on the opened file before setns, so a pid
    /// reused or a name made again since is refused ([`NetnsError::Changed`]) instead of
    /// entering some other namespace.
    pub fn enter_on_this_thread_expecting(&self, expected: u64) -> Result<(), NetnsError> {
        self.enter_checked(Some(expected))
    }

    fn enter_checked(&self, expected: Option<u64>) -> Result<(), NetnsError> {
        let Some(path) = self.path()? else {
            return match (expected, current_netns_inode()) {
                (Some(expected), Some(found)) if found != expected => Err(NetnsError::Changed {
                    what: self.label(),
                    expected,
                    found,
                }),
                _ => Ok(()),
            };
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
                why: format!("cannot open {}: {e}", path.display()),
                needs: "CAP_SYS_PTRACE to open another user's /proc/PID/ns/net",
            },
            _ => NetnsError::Other {
                what: what.clone(),
                why: e.to_string(),
            },
        })?;
        if let Some(expected) = expected {
            let found = file
                .metadata()
                .map_err(|e| NetnsError::Other {
                    what: what.clone(),
                    why: e.to_string(),
                })?
                .ino();
            if found != expected {
                return Err(NetnsError::Changed {
                    what,
                    expected,
                    found,
                });
            }
        }
        setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| match e {
            nix::errno::Errno::EPERM => NetnsError::Permission {
                what: what.clone(),
                why: format!("setns: {}", e.desc()),
                needs: "CAP_SYS_ADMIN to enter it",
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
    run_in_checked(target, None, f)
}

/// [`run_in`], entering only the namespace with inode `expected` when given (see
/// [`NetnsTarget::enter_on_this_thread_expecting`]).
pub fn run_in_checked<T, F>(
    target: &NetnsTarget,
    expected: Option<u64>,
    f: F,
) -> Result<T, CollectError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, CollectError> + Send + 'static,
{
    let target = target.clone();
    let handle = std::thread::Builder::new()
        .name("sockq-netns".into())
        .spawn(move || {
            target.enter_checked(expected)?;
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

    #[test]
    fn another_namespace_than_expected_is_refused_before_setns() {
        let own = current_netns_inode().unwrap();
        let path = NetnsTarget::Path("/proc/thread-self/ns/net".into());
        assert_eq!(path.label(), "path:/proc/thread-self/ns/net");
        // checked on the opened file, before setns: needs no privilege
        let e = path.enter_on_this_thread_expecting(own + 1).unwrap_err();
        assert!(
            matches!(e, NetnsError::Changed { expected, found, .. } if expected == own + 1 && found == own),
            "{e}"
        );
        assert!(e.to_string().contains("is gone"), "{e}");
        let e = NetnsTarget::Current
            .enter_on_this_thread_expecting(own + 1)
            .unwrap_err();
        assert!(matches!(e, NetnsError::Changed { .. }), "{e}");
        assert!(NetnsTarget::Current
            .enter_on_this_thread_expecting(own)
            .is_ok());
        let e = NetnsTarget::Path("/nonexistent-sockq/ns".into())
            .enter_on_this_thread()
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent-sockq/ns"), "{e}");
    }
}
