//! Test helpers shared by the owner lookup's unit tests: a fake proc root, the limits
//! fixtures, and small accessors of [`Owners`].

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use crate::model::snapshot::Owners;

pub(super) const LIMITS: &str = include_str!("../../../tests/fixtures/owners/limits");
pub(super) const LIMITS_1024: &str = include_str!("../../../tests/fixtures/owners/limits-1024");
pub(super) const LIMITS_UNLIMITED: &str =
    include_str!("../../../tests/fixtures/owners/limits-unlimited");

/// Our euid, as the socket uid: sockets of other users get another reason when not root.
pub(super) fn me() -> u32 {
    nix::unistd::geteuid().as_raw()
}

pub(super) fn pids(owners: &Owners) -> Vec<u32> {
    owners.processes().iter().map(|p| p.pid).collect()
}

pub(super) fn reason(owners: &Owners) -> &str {
    match owners {
        Owners::Unknown { reason } => reason,
        Owners::Known { .. } => panic!("expected Unknown, got {owners:?}"),
    }
}

/// A directory tree shaped like /proc (PID/comm, PID/limits, PID/ns/net, PID/fd/N links),
/// removed on drop.
pub(super) struct FakeProc {
    pub(super) root: PathBuf,
}

impl FakeProc {
    pub(super) fn new(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("sockq-owners-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        // Non-numeric entries that a real /proc has and a scan must skip.
        fs::create_dir_all(root.join("sys/net")).unwrap();
        fs::write(root.join("meminfo"), "MemTotal: 1 kB\n").unwrap();
        symlink("1", root.join("self")).unwrap();
        FakeProc { root }
    }

    /// A process with `comm`, `limits`, an optional ns/net link and fd links.
    pub(super) fn add(
        &self,
        pid: u32,
        comm: &str,
        limits: &str,
        netns: Option<u64>,
        fds: &[(u32, &str)],
    ) {
        let dir = self.root.join(pid.to_string());
        fs::create_dir_all(dir.join("fd")).unwrap();
        fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
        fs::write(dir.join("limits"), limits).unwrap();
        if let Some(ns) = netns {
            fs::create_dir_all(dir.join("ns")).unwrap();
            symlink(format!("net:[{ns}]"), dir.join("ns/net")).unwrap();
        }
        for (fd, target) in fds {
            self.link(pid, *fd, target);
        }
    }

    /// Writes /proc/PID/stat in the kernel's layout, with the fields sockq reads set (state,
    /// utime + stime, num_threads, starttime; the command name from PID/comm) and the others
    /// plausible.
    pub(super) fn stat(&self, pid: u32, state: char, cpu_ticks: u64, threads: u32, start: u64) {
        let comm = fs::read_to_string(self.root.join(format!("{pid}/comm"))).unwrap();
        let comm = comm.trim_end_matches('\n');
        let (utime, stime) = (cpu_ticks - cpu_ticks / 4, cpu_ticks / 4);
        let line = format!(
            "{pid} ({comm}) {state} 1 {pid} {pid} 0 -1 4194304 100 0 0 0 {utime} {stime} 0 0 20 \
             0 {threads} 0 {start} 16961536 3355 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 \
             17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        );
        fs::write(self.root.join(format!("{pid}/stat")), line).unwrap();
    }

    pub(super) fn link(&self, pid: u32, fd: u32, target: &str) {
        let path = self.root.join(format!("{pid}/fd/{fd}"));
        symlink(target, path).unwrap();
    }

    pub(super) fn unlink(&self, pid: u32, fd: u32) {
        fs::remove_file(self.root.join(format!("{pid}/fd/{fd}"))).unwrap();
    }

    pub(super) fn remove(&self, pid: u32) {
        fs::remove_dir_all(self.root.join(pid.to_string())).unwrap();
    }
}

impl Drop for FakeProc {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}
