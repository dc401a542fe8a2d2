//! From what a scan saw to one entry per namespace: deduplicated by inode, its main process
//! chosen, how to enter it, in a stable order. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use super::scan::{netns_by_pid, MountKind, Observation, ProcDetail};

/// A namespace's main process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Main {
    pub pid: u32,
    pub starttime: u64,
    pub comm: String,
}

/// What shows that a namespace seen twice under one inode is the same namespace (the kernel
/// reuses the inode numbers of namespaces that are gone): a process (pid and start time) or a
/// bind mount seen in both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Witness {
    procs: BTreeSet<(u32, u64)>,
    mounts: BTreeSet<PathBuf>,
}

impl Witness {
    /// True when `self` and `other` share a process or a mount.
    pub fn overlaps(&self, other: &Witness) -> bool {
        self.procs.intersection(&other.procs).next().is_some()
            || self.mounts.intersection(&other.mounts).next().is_some()
    }
}

/// One namespace, as assembled from a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub inode: u64,
    /// The host's namespace (pid 1's, or kthreadd's).
    pub host: bool,
    /// Processes in it.
    pub processes: u32,
    /// Its main process, when details could be read.
    pub main: Option<Main>,
    /// Its lowest pid (to enter it when no main process is known).
    pub lowest_pid: Option<u32>,
    /// Names under /run/netns, sorted.
    pub ip_netns: Vec<String>,
    /// The first (by name) file under /var/run/docker/netns, with its path.
    pub docker: Option<(String, PathBuf)>,
    pub witness: Witness,
}

/// Groups a scan by namespace. `keep_main` holds each known namespace's main process
/// (pid, start time): while it is still in its namespace it stays the main process, so a label
/// does not flap between processes of equal standing.
pub(crate) fn assemble(obs: &Observation, keep_main: &HashMap<u64, (u32, u64)>) -> Vec<Group> {
    let by_pid = netns_by_pid(obs);
    let mut groups: BTreeMap<u64, Group> = BTreeMap::new();
    // the processes with details, by namespace: the candidates for main process
    let mut members: HashMap<u64, Vec<(u32, &ProcDetail)>> = HashMap::new();
    for p in &obs.procs {
        let g = entry(&mut groups, obs, p.inode);
        g.processes += 1;
        g.lowest_pid = Some(g.lowest_pid.map_or(p.pid, |l| l.min(p.pid)));
        if let Some(d) = &p.detail {
            g.witness.procs.insert((p.pid, d.starttime));
            members.entry(p.inode).or_default().push((p.pid, d));
        }
    }
    for m in &obs.mounts {
        let g = entry(&mut groups, obs, m.inode);
        g.witness.mounts.insert(m.path.clone());
        match m.kind {
            MountKind::IpNetns => g.ip_netns.push(m.name.clone()),
            MountKind::Docker => {
                if g.docker.as_ref().is_none_or(|(n, _)| m.name < *n) {
                    g.docker = Some((m.name.clone(), m.path.clone()));
                }
            }
        }
    }
    for g in groups.values_mut() {
        g.ip_netns.sort();
        g.ip_netns.dedup();
        let candidates = members.get(&g.inode).map_or(&[][..], Vec::as_slice);
        g.main = choose_main(candidates, &by_pid, g, keep_main.get(&g.inode).copied());
    }
    let mut out: Vec<Group> = groups.into_values().collect();
    // host first, then by inode (creation order, roughly): stable from one scan to the next
    out.sort_by_key(|g| (!g.host, g.inode));
    out
}

fn entry<'a>(groups: &'a mut BTreeMap<u64, Group>, obs: &Observation, inode: u64) -> &'a mut Group {
    groups.entry(inode).or_insert_with(|| Group {
        inode,
        host: obs.host == Some(inode),
        processes: 0,
        main: None,
        lowest_pid: None,
        ip_netns: Vec::new(),
        docker: None,
        witness: Witness::default(),
    })
}

/// The main process of `g`: pid 1 for the host (kthreadd, pid 2, when pid 1 is unreadable); else the previous main process while it is
/// still there; else the oldest process whose parent is outside the namespace (the one that
/// made it or was put in it: `unshare`'s child, a container's init), lowest pid on a tie; else
/// the oldest process.
fn choose_main(
    members: &[(u32, &ProcDetail)],
    by_pid: &HashMap<u32, u64>,
    g: &Group,
    keep: Option<(u32, u64)>,
) -> Option<Main> {
    let main = |&(pid, d): &(u32, &ProcDetail)| Main {
        pid,
        starttime: d.starttime,
        comm: d.comm.clone(),
    };
    if g.host {
        let pid = |want: u32| members.iter().find(|&&(pid, _)| pid == want);
        return pid(1).or_else(|| pid(2)).map(main);
    }
    if let Some((pid, start)) = keep {
        if let Some(m) = members
            .iter()
            .find(|&&(p, d)| p == pid && d.starttime == start)
        {
            return Some(main(m));
        }
    }
    let is_root =
        |&&(_, d): &&(u32, &ProcDetail)| d.ppid == 0 || by_pid.get(&d.ppid) != Some(&g.inode);
    let age = |&&(pid, d): &&(u32, &ProcDetail)| (d.starttime, pid);
    members
        .iter()
        .filter(is_root)
        .min_by_key(age)
        .or_else(|| members.iter().min_by_key(age))
        .map(main)
}

#[cfg(test)]
mod tests {
    use super::super::scan::{MountSeen, ProcSeen};
    use super::*;

    fn proc(pid: u32, inode: u64, ppid: u32, starttime: u64, comm: &str) -> ProcSeen {
        ProcSeen {
            pid,
            inode,
            detail: Some(ProcDetail {
                ppid,
                starttime,
                comm: comm.into(),
            }),
        }
    }

    fn mount(kind: MountKind, name: &str, inode: u64) -> MountSeen {
        MountSeen {
            kind,
            name: name.into(),
            path: PathBuf::from(match kind {
                MountKind::IpNetns => "/run/netns",
                MountKind::Docker => "/var/run/docker/netns",
            })
            .join(name),
            inode,
        }
    }

    const HOST: u64 = 4026531840;

    fn observation() -> Observation {
        Observation {
            procs: vec![
                proc(1, HOST, 0, 1, "systemd"),
                ProcSeen {
                    pid: 2,
                    inode: HOST,
                    detail: None,
                },
                // a container: its init (parent in the host) and two children
                proc(300, 10, 250, 500, "nginx"),
                proc(301, 10, 300, 510, "nginx"),
                proc(302, 10, 300, 520, "nginx"),
                // two processes put in one namespace from outside: the older is main
                proc(400, 11, 1, 900, "late"),
                proc(90, 11, 1, 800, "early"),
                // a namespace made by a child of a process inside it (all in it):
                // no root inside → the oldest
                proc(500, 12, 501, 1000, "a"),
                proc(501, 12, 500, 1001, "b"),
                // details unreadable
                ProcSeen {
                    pid: 600,
                    inode: 13,
                    detail: None,
                },
            ],
            mounts: vec![
                mount(MountKind::IpNetns, "red", 14),
                mount(MountKind::IpNetns, "blue", 14),
                mount(MountKind::Docker, "b2", 10),
                mount(MountKind::Docker, "a1", 10),
            ],
            host: Some(HOST),
        }
    }

    #[test]
    fn one_group_per_namespace_host_first_then_by_inode() {
        let groups = assemble(&observation(), &HashMap::new());
        let order: Vec<(u64, bool, u32)> = groups
            .iter()
            .map(|g| (g.inode, g.host, g.processes))
            .collect();
        assert_eq!(
            order,
            [
                (HOST, true, 2),
                (10, false, 3),
                (11, false, 2),
                (12, false, 2),
                (13, false, 1),
                (14, false, 0)
            ]
        );
        let main = |i: usize| groups[i].main.as_ref().map(|m| (m.pid, m.comm.as_str()));
        assert_eq!(main(0), Some((1, "systemd")));
        assert_eq!(main(1), Some((300, "nginx")));
        assert_eq!(main(2), Some((90, "early")));
        assert_eq!(main(3), Some((500, "a")));
        assert_eq!(main(4), None);
        assert_eq!(groups[4].lowest_pid, Some(600));
        assert_eq!(groups[5].ip_netns, ["blue", "red"]);
        assert_eq!(
            groups[1].docker,
            Some(("a1".into(), PathBuf::from("/var/run/docker/netns/a1")))
        );
    }

    #[test]
    fn a_main_process_is_kept_while_it_stays() {
        let mut obs = observation();
        // 400 was main; it is still there, so it stays main although 90 is older
        let keep = HashMap::from([(11, (400, 900))]);
        let g = assemble(&obs, &keep);
        assert_eq!(g[2].main.as_ref().map(|m| m.pid), Some(400));
        // a reused pid (other start time) is not the same process
        let keep = HashMap::from([(11, (400, 899))]);
        assert_eq!(
            assemble(&obs, &keep)[2].main.as_ref().map(|m| m.pid),
            Some(90)
        );
        // gone: the next choice
        obs.procs.retain(|p| p.pid != 90);
        let keep = HashMap::from([(11, (90, 800))]);
        assert_eq!(
            assemble(&obs, &keep)[2].main.as_ref().map(|m| m.pid),
            Some(400)
        );
    }

    #[test]
    fn witnesses_tell_a_reused_inode_from_the_same_namespace() {
        let before = assemble(&observation(), &HashMap::new());
        let mut obs = observation();
        // namespace 11: its processes are gone and two new ones hold inode 11
        obs.procs.retain(|p| p.inode != 11);
        obs.procs.push(proc(700, 11, 1, 5000, "new"));
        // namespace 10: one of its processes stays
        obs.procs.retain(|p| p.pid != 300 && p.pid != 301);
        // namespace 14: the mount stays
        let after = assemble(&obs, &HashMap::new());
        let w = |gs: &[Group], inode: u64| {
            gs.iter()
                .find(|g| g.inode == inode)
                .map(|g| g.witness.clone())
                .unwrap_or_default()
        };
        assert!(!w(&before, 11).overlaps(&w(&after, 11)));
        assert!(w(&before, 10).overlaps(&w(&after, 10)));
        assert!(w(&before, 14).overlaps(&w(&after, 14)));
        assert!(w(&before, HOST).overlaps(&w(&after, HOST)));
    }
}
