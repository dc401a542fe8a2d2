//! Every network namespace of the host: discovery and naming (issue 15's foundation).
//!
//! A namespace exists while something holds it. Discovery finds the two holders it can see:
//!
//! - processes: every /proc/PID/ns/net (a `readlink` gives `net:[INODE]`), deduplicated by
//!   inode; of each namespace one *main* process is kept, the oldest whose parent is outside the
//!   namespace (`unshare`'s child, a container's init; pid 1 for the host, or kthreadd when
//!   pid 1 cannot be read), to enter and name it;
//! - bind mounts: /run/netns/NAME (`ip netns add`) and /var/run/docker/netns/KEY (`stat` gives
//!   the inode; a file that is not a namespace mount is skipped).
//!
//! Not seen: a namespace held only by a thread that is not its process's main thread (sockq's
//! own collector threads), by an open descriptor, or by a socket; and, without privilege, the
//! namespaces of other users' processes (see [`Discovery::blind_spot`]).
//!
//! [`Discovery::refresh`] rescans and says what appeared, disappeared or changed name
//! ([`NetnsChanges`]); a namespace is named once, when it appears or its main process changes,
//! so a refresh costs, per process, procfs's open of /proc/PID and one `readlink`, plus a read
//! of /proc/PID/stat for each process outside the host namespace (docs/perf.md has the numbers:
//! about 1 ms of CPU at 30 namespaces, 3–4.5 ms at 200). Entries are [`NetnsRef`]s in a stable order
//! (host first, then by inode); [`target`] turns one into the [`NetnsTarget`] a collector
//! thread enters, and [`run_in_ref`] enters it only if it is still that namespace.
//!
//! Privileges: reading another user's /proc/PID/ns/net needs ptrace read access
//! (CAP_SYS_PTRACE; root has it); the runtimes' state files are root's; entering a namespace
//! needs CAP_SYS_ADMIN.
//!
//! `scan` makes the system calls, `group` (pure) assembles namespaces from what a scan saw,
//! `parse` (pure) reads cgroup paths and state files, `names` reads those files under a root,
//! `cgroupns` makes the cgroup reads in the host's cgroup namespace when sockq is in another (a
//! container's): a thread enters it (CAP_SYS_ADMIN), else the blind spot says paths are relative.

mod cgroupns;
mod group;
pub mod names;
pub mod parse;
mod scan;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use self::cgroupns::CgroupView;
use self::group::{Group, Witness};
use self::names::ProcessNames;
use self::scan::{Places, ScanGaps};
use super::netns::{run_in_checked, NetnsTarget};
use super::{thread_cpu, CollectError};
use crate::model::netns::{Container, MainProcess, Pod};
use crate::model::{EnterBy, NetnsChanges, NetnsName, NetnsRef};

/// Where discovery looks. [`DiscoveryOptions::under`] a root puts every path under it.
#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    /// Root of the runtimes' state files (`/` on a host).
    pub root: PathBuf,
    /// Where procfs is mounted.
    pub proc_root: PathBuf,
    /// The `ip netns` directory.
    pub ip_netns_dir: PathBuf,
    /// Docker's namespace directory.
    pub docker_netns_dir: PathBuf,
}

impl DiscoveryOptions {
    /// Every path under `root`: `root/proc`, `root/run/netns`, `root/var/run/docker/netns`, the
    /// state files under `root/var/lib`, `root/run`. `/` on a host; a host's tree mounted
    /// elsewhere (`/host`), or a fake tree in tests.
    pub fn under(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            proc_root: root.join("proc"),
            ip_netns_dir: root.join("run/netns"),
            docker_netns_dir: root.join("var/run/docker/netns"),
            root,
        }
    }
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        Self::under("/")
    }
}

/// Discovery could not list the processes at all.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// procfs could not be listed.
    #[error("cannot list the processes in {path}: {source}")]
    Proc {
        /// The procfs directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// What the last refresh cost and saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshCost {
    /// Wall time of the refresh.
    pub wall: Duration,
    /// CPU time of the calling thread during the refresh.
    pub cpu: Duration,
    /// Processes listed in /proc.
    pub processes: u32,
    /// Namespaces found.
    pub namespaces: usize,
    /// Namespaces named in this refresh (new ones, or whose main process changed).
    pub named: usize,
}

/// What is remembered of a namespace between refreshes.
#[derive(Debug, Clone)]
struct Known {
    witness: Witness,
    main: Option<(u32, u64)>,
    container: Option<Container>,
    pod: Option<Pod>,
    problems: Vec<String>,
}

/// Follows the network namespaces of the host as they appear and disappear.
#[derive(Debug)]
pub struct Discovery {
    opts: DiscoveryOptions,
    places: Places,
    list: Vec<NetnsRef>,
    /// inode → position in `list`.
    index: HashMap<u64, usize>,
    known: HashMap<u64, Known>,
    blind: Option<String>,
    /// Why the last naming read cgroup paths relative to sockq's own cgroup namespace.
    cgroup_note: Option<String>,
    cost: RefreshCost,
}

impl Discovery {
    /// A discovery that has found nothing yet: the first [`Self::refresh`] reports every
    /// namespace as added.
    pub fn new(opts: DiscoveryOptions) -> Self {
        let places = Places {
            proc_root: opts.proc_root.clone(),
            ip_netns: opts.ip_netns_dir.clone(),
            docker_netns: opts.docker_netns_dir.clone(),
        };
        Self {
            opts,
            places,
            list: Vec::new(),
            index: HashMap::new(),
            known: HashMap::new(),
            blind: None,
            cgroup_note: None,
            cost: RefreshCost::default(),
        }
    }

    /// The namespaces found by the last refresh: host first, then by inode.
    pub fn namespaces(&self) -> &[NetnsRef] {
        &self.list
    }

    /// The namespace with this inode, if the last refresh found it.
    pub fn get(&self, inode: u64) -> Option<&NetnsRef> {
        self.index.get(&inode).and_then(|&i| self.list.get(i))
    }

    /// What the last refresh could not see, in one line (`None`: it saw everything it looks
    /// at). Without privilege: how many processes' namespaces were unreadable and what is
    /// needed; names that could not be read.
    pub fn blind_spot(&self) -> Option<&str> {
        self.blind.as_deref()
    }

    /// What the last refresh cost.
    pub fn cost(&self) -> RefreshCost {
        self.cost
    }

    /// Rescans /proc and the bind mounts. Fails only when /proc cannot be listed; anything
    /// less is in [`Self::blind_spot`].
    pub fn refresh(&mut self) -> Result<NetnsChanges, DiscoveryError> {
        let (t0, cpu0) = (Instant::now(), thread_cpu());
        let (obs, gaps) = scan::observe(&self.places).map_err(|source| DiscoveryError::Proc {
            path: self.places.proc_root.display().to_string(),
            source,
        })?;
        let keep: HashMap<u64, (u32, u64)> = self
            .known
            .iter()
            .filter_map(|(&inode, k)| k.main.map(|m| (inode, m)))
            .collect();
        let groups = group::assemble(&obs, &keep);
        let mut found = self.name_all(&groups);
        let mut known = HashMap::with_capacity(groups.len());
        let mut list = Vec::with_capacity(groups.len());
        let mut same: HashSet<u64> = HashSet::new();
        let mut named = 0;
        for g in groups {
            let prev = self.known.remove(&g.inode);
            let main_id = g.main.as_ref().map(|m| (m.pid, m.starttime));
            let continuing = prev
                .as_ref()
                .is_some_and(|k| k.witness.overlaps(&g.witness));
            let k = match prev {
                Some(k) if continuing && k.main == main_id => Known {
                    witness: g.witness.clone(),
                    ..k
                },
                _ => {
                    named += 1;
                    known_from(&g, main_id, found.remove(&g.inode).unwrap_or_default())
                }
            };
            if continuing {
                same.insert(g.inode);
            }
            list.push(netns_ref(&g, &k));
            known.insert(g.inode, k);
        }
        let before: HashMap<u64, &NetnsRef> = self.list.iter().map(|r| (r.inode, r)).collect();
        let changes = NetnsChanges {
            added: list
                .iter()
                .filter(|r| !same.contains(&r.inode))
                .cloned()
                .collect(),
            removed: self
                .list
                .iter()
                .filter(|r| !same.contains(&r.inode))
                .cloned()
                .collect(),
            changed: list
                .iter()
                .filter(|r| same.contains(&r.inode))
                .filter(|r| {
                    before
                        .get(&r.inode)
                        .is_some_and(|old| old.name != r.name || old.enter != r.enter)
                })
                .cloned()
                .collect(),
        };
        self.blind = blind_line(
            &gaps,
            obs.host.is_some(),
            &known,
            self.cgroup_note.as_deref(),
        );
        self.cost = RefreshCost {
            wall: t0.elapsed(),
            cpu: thread_cpu().saturating_sub(cpu0),
            processes: gaps.listed,
            namespaces: list.len(),
            named,
        };
        self.index = list.iter().enumerate().map(|(i, r)| (r.inode, i)).collect();
        self.list = list;
        self.known = known;
        Ok(changes)
    }

    /// Names the namespaces of `groups` that are new or whose main process changed (the host
    /// is "host": not named further), by inode. Their cgroup paths are read in the host's
    /// cgroup namespace when sockq is not in it (`cgroupns`); when that cannot be done, and
    /// matters, [`Self::blind_spot`] says so.
    fn name_all(&mut self, groups: &[Group]) -> HashMap<u64, ProcessNames> {
        let to_name: Vec<(u64, u32)> = groups
            .iter()
            .filter(|g| !g.host && !self.named_already(g))
            .filter_map(|g| g.main.as_ref().map(|m| (g.inode, m.pid)))
            .collect();
        if to_name.is_empty() {
            return HashMap::new();
        }
        let (root, proc_root) = (&self.opts.root, &self.opts.proc_root);
        let (found, view) = cgroupns::in_host_cgroupns(proc_root, || {
            to_name
                .iter()
                .map(|&(inode, pid)| (inode, names::name_process(root, proc_root, pid)))
                .collect::<HashMap<u64, ProcessNames>>()
        });
        let relative = found.values().any(|n| n.relative_cgroups);
        self.cgroup_note = cgroup_note(&view, relative);
        found
    }

    /// Whether `g` is a namespace known from the last refresh with the same main process.
    fn named_already(&self, g: &Group) -> bool {
        let main = g.main.as_ref().map(|m| (m.pid, m.starttime));
        self.known
            .get(&g.inode)
            .is_some_and(|k| k.witness.overlaps(&g.witness) && k.main == main)
    }
}

/// What is known of a namespace named now.
fn known_from(g: &Group, main: Option<(u32, u64)>, found: ProcessNames) -> Known {
    Known {
        witness: g.witness.clone(),
        main,
        container: found.container,
        pod: found.pod,
        problems: found.problems,
    }
}

/// The blind spot of cgroup paths read relative to sockq's own cgroup namespace: when the
/// host's could not be entered, or (unknown whether it is another) a path read was relative.
fn cgroup_note(view: &CgroupView, relative: bool) -> Option<String> {
    let why = match view {
        CgroupView::Host | CgroupView::Entered => return None,
        CgroupView::NotEntered(why) => format!("the host's cannot be entered: {why}"),
        CgroupView::Unknown(_) if !relative => return None,
        CgroupView::Unknown(why) => format!("the host's cannot be opened: {why}"),
    };
    Some(format!(
        "cgroup paths are relative to sockq's cgroup namespace: containers may be unnamed ({why})"
    ))
}

/// The model entry of a group and what is known of it.
fn netns_ref(g: &Group, k: &Known) -> NetnsRef {
    let enter = if let Some(name) = g.ip_netns.first() {
        EnterBy::Named(name.clone())
    } else if let Some((_, path)) = &g.docker {
        EnterBy::Path(path.clone())
    } else {
        // a group always has a process or a mount; 0 is never a process
        EnterBy::Pid(g.main.as_ref().map_or(g.lowest_pid.unwrap_or(0), |m| m.pid))
    };
    NetnsRef {
        inode: g.inode,
        name: NetnsName {
            host: g.host,
            ip_netns: g.ip_netns.clone(),
            docker_netns: g.docker.as_ref().map(|(n, _)| n.clone()),
            container: k.container.clone(),
            pod: k.pod.clone(),
            main: g.main.as_ref().map(|m| MainProcess {
                pid: m.pid,
                comm: m.comm.clone(),
            }),
        },
        enter,
        processes: g.processes,
    }
}

/// One line saying what a refresh could not see, or `None`.
fn blind_line(
    gaps: &ScanGaps,
    host_known: bool,
    known: &HashMap<u64, Known>,
    cgroup_note: Option<&str>,
) -> Option<String> {
    let mut parts = Vec::new();
    if gaps.denied > 0 {
        let mut pids: Vec<String> = gaps.denied_pids.iter().map(u32::to_string).collect();
        if gaps.denied as usize > pids.len() {
            pids.push("…".into());
        }
        parts.push(format!(
            "the network namespace of {} of {} processes is unreadable ({} {}: permission \
             denied; another user's /proc/PID/ns/net needs CAP_SYS_PTRACE over it): namespaces \
             only they hold are missing",
            gaps.denied,
            gaps.listed,
            if gaps.denied == 1 { "pid" } else { "pids" },
            pids.join(", ")
        ));
    }
    if !host_known {
        parts.push(
            "neither pid 1's nor kthreadd's network namespace is readable: the host namespace is not marked"
                .into(),
        );
    }
    if let Some(other) = &gaps.other {
        parts.push(format!("cannot read {other}"));
    }
    for dir in &gaps.mount_dirs {
        parts.push(format!("cannot list {dir}"));
    }
    parts.extend(cgroup_note.map(String::from));
    let mut problems: Vec<&String> = known.values().flat_map(|k| &k.problems).collect();
    problems.sort();
    problems.dedup();
    if let Some(first) = problems.first() {
        let more = problems.len() - 1;
        parts.push(if more > 0 {
            format!("names unknown: {first} (and {more} more)")
        } else {
            format!("names unknown: {first}")
        });
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The [`NetnsTarget`] that enters `r`.
pub fn target(r: &NetnsRef) -> NetnsTarget {
    match &r.enter {
        EnterBy::Named(name) => NetnsTarget::Named(name.clone()),
        EnterBy::Path(path) => NetnsTarget::Path(path.clone()),
        EnterBy::Pid(pid) => NetnsTarget::Pid(*pid),
    }
}

/// Runs `f` on a new thread that entered `r` — only if what is found there is still `r` (its
/// main process may have exited and its pid been reused since discovery): else
/// [`super::netns::NetnsError::Changed`]. Create a [`super::Collector`] in `f` to read `r`.
pub fn run_in_ref<T, F>(r: &NetnsRef, f: F) -> Result<T, CollectError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, CollectError> + Send + 'static,
{
    run_in_checked(&target(r), Some(r.inode), f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup_note_says_why_only_when_it_matters() {
        assert_eq!(cgroup_note(&CgroupView::Host, true), None);
        assert_eq!(cgroup_note(&CgroupView::Entered, true), None);
        let denied = CgroupView::NotEntered("setns: Operation not permitted".into());
        assert_eq!(
            cgroup_note(&denied, false).as_deref(),
            Some(
                "cgroup paths are relative to sockq's cgroup namespace: containers may be \
                 unnamed (the host's cannot be entered: setns: Operation not permitted)"
            )
        );
        // unknown whether sockq's is the host's: said only when a path read was relative
        let unknown = CgroupView::Unknown("/proc/1/ns/cgroup: Permission denied".into());
        assert_eq!(cgroup_note(&unknown, false), None);
        assert_eq!(
            cgroup_note(&unknown, true).as_deref(),
            Some(
                "cgroup paths are relative to sockq's cgroup namespace: containers may be \
                 unnamed (the host's cannot be opened: /proc/1/ns/cgroup: Permission denied)"
            )
        );
    }
}
