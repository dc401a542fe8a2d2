//! The system calls and raw /proc reads of the owner lookup: opening and listing /proc/PID/fd,
//! `readlinkat` of an fd link, `fstat` for an fd count, `statfs` for "is this procfs",
//! `prlimit(2)` for an fd limit, and the small files (comm, limits, ns/net, stat, status).
//! Every `unsafe` block of the owner lookup is in this file.
//!
//! The syscall pattern of each read is measured (docs/perf.md, change 5): a refresh opens
//! /proc/PID/fd with a plain `open` (no `fdopendir`, whose `fstat` and `fcntl` it would not use)
//! and re-checks links relative to that descriptor; a scan lists it with `getdents64` on that
//! descriptor too, through rustix's `RawDir` (no `opendir`: its `fstat`, two `fcntl`s and the
//! `lseek` of nix's iterator are four of the about two dozen system calls a scan makes per
//! process).

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::parse::{
    netns_link_inode, nspid_is_single, parse_decimal_u32, parse_nofile_soft_limit, parse_proc_stat,
    proc_stat_comm, socket_link_inode, ProcStat,
};

/// Room for one /proc/PID/stat line: 52 numeric fields of at most 20 digits and a sign, and
/// a command name of at most 64 bytes, fit with room to spare (about 300 bytes are usual).
const STAT_BUFFER: usize = 2048;

/// How /proc is read: fixed per resolver.
#[derive(Debug, Clone)]
pub(super) struct ProcAccess {
    root: PathBuf,
    /// `root` is procfs (not a test's fake tree): fd counts may come from `stat`.
    on_procfs: bool,
    /// `root` is procfs of sockq's own PID namespace (its `self` is our pid), so a pid under
    /// it can be handed to `prlimit(2)`.
    own_pid_ns: bool,
    /// Namespaces of processes, shared with other resolvers (a fleet's).
    netns_cache: Option<std::sync::Arc<super::netns_cache::NetnsCache>>,
    /// sockq's own pid (`getpid` once, not once per process read).
    own_pid: u32,
}

impl ProcAccess {
    pub(super) fn new(root: PathBuf) -> Self {
        let on_procfs = is_procfs(&root);
        // `self` names our pid as this procfs counts pids; and its status's NSpid (pids from the
        // procfs's PID namespace down to ours) has one field only when that namespace is ours:
        // a parent namespace's /proc could give an unrelated process our number.
        let own_pid_ns = on_procfs
            && fs::read_link(root.join("self"))
                .ok()
                .and_then(|t| parse_decimal_u32(t.as_os_str().as_bytes()))
                == Some(std::process::id())
            && fs::read_to_string(root.join("self/status"))
                .is_ok_and(|status| nspid_is_single(&status));
        ProcAccess {
            root,
            on_procfs,
            own_pid_ns,
            netns_cache: None,
            own_pid: std::process::id(),
        }
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    fn pid_dir(&self, pid: u32) -> PathBuf {
        self.root.join(pid.to_string())
    }

    fn fd_dir(&self, pid: u32) -> PathBuf {
        self.pid_dir(pid).join("fd")
    }

    /// The pids under the proc root: /proc lists thread-group leaders only (threads live under
    /// /proc/PID/task), so each process comes once however many threads it has. The listing
    /// is closed before this returns.
    pub(super) fn pids(&self) -> io::Result<Vec<u32>> {
        Ok(fs::read_dir(&self.root)?
            .flatten()
            .filter_map(|e| parse_decimal_u32(e.file_name().as_bytes()))
            .collect())
    }

    /// Inode of the network namespace of a process's main thread, from /proc/PID/ns/net
    /// (`None`: unreadable or gone).
    pub(super) fn netns_inode(&self, pid: u32) -> Option<u64> {
        let read = || {
            fs::read_link(self.pid_dir(pid).join("ns/net"))
                .ok()
                .and_then(|t| netns_link_inode(t.as_os_str().as_bytes()))
        };
        match &self.netns_cache {
            Some(cache) => cache.get_or_read(pid, read),
            None => read(),
        }
    }

    /// Shares process namespaces with other resolvers reading the same /proc.
    pub(super) fn share_netns_cache(
        &mut self,
        cache: std::sync::Arc<super::netns_cache::NetnsCache>,
    ) {
        self.netns_cache = Some(cache);
    }

    /// /proc/PID/fd opened for re-checks and an fd count (a refresh): one `open`, no listing.
    pub(super) fn open_fd_dir(&self, pid: u32) -> io::Result<File> {
        File::open(self.fd_dir(pid))
    }

    /// /proc/PID/fd opened for a listing (a scan): one `open`.
    pub(super) fn open_fd_listing(&self, pid: u32) -> Result<FdListing, Errno> {
        use nix::fcntl::OFlag;
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let dir = nix::fcntl::open(&self.fd_dir(pid), flags, nix::sys::stat::Mode::empty())?;
        Ok(FdListing { dir })
    }

    /// Open descriptors of a process whose /proc/PID/fd is open as `dir`. On procfs since
    /// Linux 6.2, `fstat` of that directory gives the count as its size (no listing); older
    /// kernels report 0 there, and any other filesystem (a test's fake /proc) a directory
    /// size: then the directory is listed.
    pub(super) fn count_fds(&self, pid: u32, dir: &File) -> Option<u64> {
        if self.on_procfs {
            if let Ok(st) = nix::sys::stat::fstat(dir) {
                if st.st_size > 0 {
                    let n = u64::try_from(st.st_size).ok()?;
                    return Some(n.saturating_sub(self.own_reading_fds(pid, 1)));
                }
            }
        }
        fs::read_dir(self.fd_dir(pid))
            .ok()
            .map(|d| (d.flatten().count() as u64).saturating_sub(self.own_reading_fds(pid, 2)))
    }

    /// When sockq counts its own fds (its own `sockq serve` listener, say), the `open`
    /// directories it reads them through are not part of the answer.
    pub(super) fn own_reading_fds(&self, pid: u32, open: u64) -> u64 {
        if self.own_pid_ns && pid == self.own_pid {
            open
        } else {
            0
        }
    }

    /// RLIMIT_NOFILE soft limit (`None`: unlimited or unreadable): `prlimit(2)` where allowed
    /// (root, or a process of sockq's own uid), else the text of /proc/PID/limits, which anyone
    /// may read.
    pub(super) fn fd_limit(&self, pid: u32) -> Option<u64> {
        if self.own_pid_ns {
            if let Ok(limit) = nofile_soft_limit(pid) {
                return limit;
            }
        }
        fs::read_to_string(self.pid_dir(pid).join("limits"))
            .ok()
            .and_then(|text| parse_nofile_soft_limit(&text))
            .flatten()
    }

    /// The fields sockq uses of /proc/PID/stat (world-readable): one `open` and one `read` of
    /// the whole line (procfs hands it over in one piece) into a buffer on the stack; no
    /// `fstat`, no second `read` once the line's newline is in. `None` when the process is
    /// gone or the line does not parse.
    pub(super) fn stat(&self, pid: u32) -> Option<ProcStat> {
        let mut buf = [0u8; STAT_BUFFER];
        let len = self.read_stat(pid, &mut buf)?;
        parse_proc_stat(&buf[..len])
    }

    /// [`ProcAccess::stat`] and the command name from the same line (what /proc/PID/comm
    /// says, read once instead of twice: a scan needs both).
    pub(super) fn stat_and_comm(&self, pid: u32) -> Option<(ProcStat, String)> {
        let mut buf = [0u8; STAT_BUFFER];
        let len = self.read_stat(pid, &mut buf)?;
        let line = &buf[..len];
        let stat = parse_proc_stat(line)?;
        let comm = String::from_utf8_lossy(proc_stat_comm(line)?).into_owned();
        Some((stat, comm))
    }

    /// Reads /proc/PID/stat into `buf`; the length read.
    fn read_stat(&self, pid: u32, buf: &mut [u8; STAT_BUFFER]) -> Option<usize> {
        let mut file = File::open(self.pid_dir(pid).join("stat")).ok()?;
        let mut len = 0;
        loop {
            match file.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => {
                    len += n;
                    if buf[len - 1] == b'\n' {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
            if len == buf.len() {
                return None; // not a stat line sockq knows
            }
        }
        Some(len)
    }

    /// Command name; `None` when the process is gone (/proc/PID/comm is world-readable).
    pub(super) fn comm(&self, pid: u32) -> Option<String> {
        let comm = fs::read(self.pid_dir(pid).join("comm")).ok()?;
        Some(
            String::from_utf8_lossy(&comm)
                .trim_end_matches('\n')
                .to_string(),
        )
    }
}

/// sockq itself is short of descriptors or memory: not a fact about the process it tried to
/// open.
pub(super) fn short_of_descriptors(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EMFILE | nix::libc::ENFILE | nix::libc::ENOMEM)
    )
}

/// Opening /proc/PID/fd was refused (another user's process, or a security module), as
/// opposed to the process having exited.
pub(super) fn denied(e: Errno) -> bool {
    matches!(e, Errno::EACCES | Errno::EPERM)
}

/// A process's /proc/PID/fd open for a scan: listed once, then the base of a `readlinkat` per
/// fd, which spares the kernel a walk of /proc/PID/fd for each.
pub(super) struct FdListing {
    dir: OwnedFd,
}

/// Bytes one `getdents64` call may fill: about 170 fd entries (24 bytes each up to 5 digits).
const DIRENT_BUFFER: usize = 4096;

impl FdListing {
    /// The fd numbers listed ("." and ".." are not fds; every other entry is one); those
    /// listed before an error, if the listing fails midway (the process exited).
    pub(super) fn fds(&mut self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); DIRENT_BUFFER];
        let mut dir = rustix::fs::RawDir::new(self.dir.as_fd(), &mut buf);
        while let Some(entry) = dir.next() {
            match entry {
                Ok(e) => out.extend(parse_decimal_u32(e.file_name().to_bytes())),
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => break,
            }
        }
        out
    }

    /// See [`socket_at`].
    pub(super) fn socket_at(&self, fd: u32, name: &mut String) -> Option<u64> {
        socket_at(&self.dir, fd, name)
    }

    /// The open directory, for `readlinkat`s from other threads (a descriptor may be shared;
    /// the listing's stream may not).
    pub(super) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.dir.as_fd()
    }
}

/// The socket inode that fd `fd` of the process whose /proc/PID/fd is open as `dir` refers to
/// now: `readlinkat(dir, "FD")`; `None` for anything but a socket, and for an fd closed
/// meanwhile. `name` is scratch space for the fd's name, reused across calls.
pub(super) fn socket_at(dir: impl AsFd, fd: u32, name: &mut String) -> Option<u64> {
    name.clear();
    let _ = write!(name, "{fd}");
    let target = nix::fcntl::readlinkat(dir, name.as_str()).ok()?;
    socket_link_inode(target.as_bytes())
}

/// Clock ticks per second, the unit of the CPU times in /proc/PID/stat
/// (`sysconf(_SC_CLK_TCK)`, 100 on every Linux architecture but a few old ones); `None` when
/// the system does not say.
pub(super) fn clock_ticks_per_second() -> Option<u64> {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|hz| u64::try_from(hz).ok())
        .filter(|&hz| hz > 0)
}

/// True when `proc_root` is a procfs mount (checked once per resolver).
fn is_procfs(proc_root: &Path) -> bool {
    nix::sys::statfs::statfs(proc_root)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

/// `prlimit(pid, RLIMIT_NOFILE, NULL, &old)`: the soft limit of another process in one system
/// call (`Ok(None)`: unlimited). Fails with EPERM unless sockq is root (CAP_SYS_RESOURCE) or
/// the process has sockq's uid and gid, and with ESRCH when it has exited. Neither nix nor
/// rustix wraps a read-only prlimit (rustix's always sets a new limit), hence the FFI call.
#[allow(unsafe_code)] // the one FFI call, see the SAFETY comment
fn nofile_soft_limit(pid: u32) -> io::Result<Option<u64>> {
    let pid = nix::libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut old = nix::libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: with a null `new_limit` the kernel changes no limit and only writes the current
    // one into `old`, a live, exclusively borrowed `rlimit` of the right type for the call.
    let rc = unsafe {
        nix::libc::prlimit(
            pid,
            nix::libc::RLIMIT_NOFILE,
            std::ptr::null(),
            &raw mut old,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((old.rlim_cur != nix::libc::RLIM_INFINITY).then_some(old.rlim_cur))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    use std::time::Duration;

    #[test]
    fn prlimit_reads_own_and_another_process_limit() {
        let (soft, _) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        let want = (soft != nix::sys::resource::RLIM_INFINITY).then_some(soft);
        assert_eq!(nofile_soft_limit(std::process::id()).unwrap(), want);

        // A child of ours (same uid, so prlimit is allowed without root) with its own limit.
        let mut child = std::process::Command::new("prlimit")
            .args(["--nofile=77:99", "sleep", "30"])
            .spawn()
            .expect("util-linux prlimit (apt-get install util-linux)");
        let pid = child.id();
        // prlimit sets the limit, then execs sleep: wait for the exec.
        let mut comm = String::new();
        for _ in 0..500 {
            comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim_end() == "sleep" {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let got = nofile_soft_limit(pid);
        let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(comm.trim_end(), "sleep");
        assert_eq!(got.unwrap(), Some(77));
        assert_eq!(parse_nofile_soft_limit(&limits), Some(Some(77)));
        // Reaped: no such process.
        let gone = nofile_soft_limit(pid).unwrap_err();
        assert_eq!(gone.raw_os_error(), Some(nix::libc::ESRCH), "{gone}");

        let access = ProcAccess::new(PathBuf::from("/proc"));
        assert!(access.on_procfs && access.own_pid_ns, "{access:?}");
        assert_eq!(access.fd_limit(std::process::id()), want);
        let fake = ProcAccess::new(std::env::temp_dir());
        assert!(!fake.on_procfs && !fake.own_pid_ns, "{fake:?}");
    }

    #[test]
    fn socket_at_reads_own_socket_fds_only() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = u32::try_from(listener.as_raw_fd()).unwrap();
        let inode = fs::metadata(format!("/proc/self/fd/{fd}")).unwrap().ino();
        let file = File::open("/dev/null").unwrap();
        let file_fd = u32::try_from(file.as_raw_fd()).unwrap();

        let access = ProcAccess::new(PathBuf::from("/proc"));
        let me = std::process::id();
        let mut name = String::new();
        let dir = access.open_fd_dir(me).unwrap();
        assert_eq!(socket_at(&dir, fd, &mut name), Some(inode));
        assert_eq!(socket_at(&dir, file_fd, &mut name), None);
        let mut listing = access.open_fd_listing(me).unwrap();
        let fds = listing.fds();
        assert!(fds.contains(&fd) && fds.contains(&file_fd), "{fds:?}");
        assert_eq!(listing.socket_at(fd, &mut name), Some(inode));
        assert!(access.pids().unwrap().contains(&me));
        // More fds than one getdents64 call returns: every one listed, once.
        let many: Vec<File> = (0..400).map(|_| File::open("/dev/null").unwrap()).collect();
        let mut listing = access.open_fd_listing(me).unwrap();
        let mut fds = listing.fds();
        let n = fds.len();
        fds.sort_unstable();
        fds.dedup();
        assert_eq!(fds.len(), n, "no fd twice");
        for f in &many {
            assert!(fds.contains(&u32::try_from(f.as_raw_fd()).unwrap()));
        }
        let own_netns = fs::metadata("/proc/self/ns/net").unwrap().ino();
        assert_eq!(access.netns_inode(me), Some(own_netns));
    }
}
