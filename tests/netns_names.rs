//! Discovery and naming on a fake host (tests/fixtures/netns/tree, made by make-tree.py
//! beside it): procfs files (ns/net links, stat, cgroup) and the container runtimes' state
//! files for docker (both cgroup drivers), containerd, CRI-O, podman, systemd-nspawn and
//! Kubernetes pods (cgroupfs and systemd forms). No root needed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

use std::path::{Path, PathBuf};
use std::process::Command;

use sockq::collect::netns::NetnsTarget;
use sockq::collect::netns_all::names::name_process;
use sockq::collect::netns_all::{target, Discovery, DiscoveryOptions};
use sockq::model::netns::{Container, MainProcess, Pod, Runtime};
use sockq::model::{EnterBy, NetnsRef};

const HOST: u64 = 4026531840;

fn tree() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/netns/tree")
}

fn discover(root: &Path) -> Discovery {
    let mut d = Discovery::new(DiscoveryOptions::under(root));
    d.refresh().unwrap();
    d
}

fn labels(d: &Discovery) -> Vec<(u64, String, EnterBy, u32)> {
    d.namespaces()
        .iter()
        .map(|r| (r.inode, r.label(), r.enter.clone(), r.processes))
        .collect()
}

#[test]
fn every_namespace_of_the_fake_host_is_named_as_a_person_knows_it() {
    let d = discover(&tree());
    let pid = EnterBy::Pid;
    assert_eq!(
        labels(&d),
        [
            (HOST, "host".to_string(), pid(1), 5),
            (4026532001, "docker web".into(), pid(1001), 2),
            (4026532002, "docker cache".into(), pid(1011), 1),
            (4026532003, "pod shop/shop-api-5d8f".into(), pid(1021), 2),
            (4026532004, "pod prod/db-0".into(), pid(1031), 1),
            (4026532005, "podman blog".into(), pid(1041), 1),
            (4026532006, "nspawn build-box".into(), pid(1051), 1),
            (4026532007, "nspawn legacy".into(), pid(1061), 1),
            (
                4026532008,
                "pod monitoring/metrics-7b9".into(),
                pid(1071),
                1
            ),
            (
                4026532009,
                "pod kube-system/coredns-abc".into(),
                pid(1081),
                1
            ),
            (4026532010, "pod batch/worker-7f9c".into(), pid(1091), 1),
            (4026532011, "sleep[1101]".into(), pid(1101), 2),
        ]
    );
    assert_eq!(d.blind_spot(), None);
    assert_eq!(d.cost().namespaces, 12);
    assert_eq!(d.cost().named, 12);
    let get = |inode| d.get(inode).unwrap();
    assert!(get(HOST).name.host);
    assert_eq!(
        get(HOST).name.main,
        Some(MainProcess {
            pid: 1,
            comm: "systemd".into()
        })
    );
    // the pause container holds the pod's namespace: it is the container; the pod lists the
    // app containers the kubelet knows
    assert_eq!(
        get(4026532003).name.container,
        Some(Container {
            runtime: Runtime::Containerd,
            id: "c1".repeat(32),
            name: None
        })
    );
    assert_eq!(
        get(4026532003).name.pod,
        Some(Pod {
            uid: "11111111-2222-4333-8444-555555555555".into(),
            namespace: Some("shop".into()),
            name: Some("shop-api-5d8f".into()),
            containers: vec!["api".into(), "envoy".into()],
        })
    );
    // a bare id under kubepods (cgroupfs driver): the runtime whose state file exists
    let runtime = |inode| get(inode).name.container.as_ref().map(|c| c.runtime);
    assert_eq!(runtime(4026532008), Some(Runtime::Containerd));
    assert_eq!(runtime(4026532009), Some(Runtime::Docker));
    assert_eq!(runtime(4026532010), Some(Runtime::Unknown));
    assert_eq!(runtime(4026532004), Some(Runtime::CriO));
    assert_eq!(runtime(4026532002), Some(Runtime::Docker));
    // named from etc-hosts alone: hostname and the namespace of its .svc. name
    assert_eq!(
        get(4026532010)
            .name
            .pod
            .as_ref()
            .map(|p| p.containers.clone()),
        Some(vec!["worker".to_string()])
    );
    // the way in is the main process
    assert_eq!(target(get(4026532011)), NetnsTarget::Pid(1101));
}

#[test]
fn name_process_reads_one_process() {
    let root = tree();
    let n = name_process(&root, &root.join("proc"), 1011);
    assert_eq!(
        n.container,
        Some(Container {
            runtime: Runtime::Docker,
            id: "d2".repeat(32),
            name: Some("cache".into())
        })
    );
    assert_eq!(n.pod, None);
    assert!(n.problems.is_empty(), "{:?}", n.problems);
    // a process that is gone: nothing, and no problem
    let gone = name_process(&root, &root.join("proc"), 999_999);
    assert_eq!((gone.container, gone.pod), (None, None));
    assert!(gone.problems.is_empty());
}

/// A copy of the fake tree to change (cp -a keeps the ns/net symlinks), and the cgroup and
/// stat of process 1101 (a plain process) as templates for new processes.
struct Copy(PathBuf, String, String);

impl Copy {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("sockq-netns-tree-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ok = Command::new("cp")
            .arg("-a")
            .arg(tree())
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cp -a {}", dir.display());
        let read = |f: &str| std::fs::read_to_string(dir.join("proc/1101").join(f)).unwrap();
        let (cgroup, stat) = (read("cgroup"), read("stat"));
        Copy(dir, cgroup, stat)
    }

    fn proc(&self, pid: u32) -> PathBuf {
        self.0.join("proc").join(pid.to_string())
    }

    /// Makes process `pid` (comm, parent, start time, namespace), copying 1101's files.
    fn spawn(&self, pid: u32, comm: &str, ppid: u32, start: u64, ns: u64) {
        let dir = self.proc(pid);
        std::fs::create_dir_all(dir.join("ns")).unwrap();
        std::os::unix::fs::symlink(format!("net:[{ns}]"), dir.join("ns/net")).unwrap();
        std::fs::write(dir.join("cgroup"), &self.1).unwrap();
        let mut fields: Vec<String> = self.2.split_whitespace().map(str::to_owned).collect();
        fields[0] = pid.to_string();
        fields[1] = format!("({comm})");
        fields[3] = ppid.to_string();
        fields[21] = start.to_string();
        std::fs::write(dir.join("stat"), fields.join(" ") + "\n").unwrap();
    }

    fn kill(&self, pid: u32) {
        std::fs::remove_dir_all(self.proc(pid)).unwrap();
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn inodes(refs: &[NetnsRef]) -> Vec<(u64, String)> {
    refs.iter().map(|r| (r.inode, r.label())).collect()
}

#[test]
fn refresh_reports_what_appeared_disappeared_and_changed() {
    let host = Copy::new("refresh");
    let mut d = Discovery::new(DiscoveryOptions::under(&host.0));
    let first = d.refresh().unwrap();
    assert_eq!(first.added.len(), 12, "the first refresh adds everything");
    assert!(first.removed.is_empty() && first.changed.is_empty());
    assert!(d.refresh().unwrap().is_empty(), "nothing moved");

    // the sleep namespace goes; a new one appears; the docker web init exits (its worker,
    // whose parent is now outside the namespace, becomes the main process)
    host.kill(1101);
    host.kill(1102);
    host.spawn(1300, "bash", 1, 3000, 4026532012);
    host.kill(1001);
    let c = d.refresh().unwrap();
    assert_eq!(inodes(&c.added), [(4026532012, "bash[1300]".to_string())]);
    assert_eq!(
        inodes(&c.removed),
        [(4026532011, "sleep[1101]".to_string())]
    );
    // a docker container is still named by its container, but its way in moved
    assert_eq!(inodes(&c.changed), [(4026532001, "docker web".to_string())]);
    assert_eq!(c.changed[0].enter, EnterBy::Pid(1002));
    assert_eq!(
        d.cost().named,
        2,
        "only the new namespace and the one whose main changed"
    );

    // the kernel reuses the inode of a namespace that is gone: another process now holds
    // 4026532012 and nothing of the old holder is left: removed and added again
    host.kill(1300);
    host.spawn(1301, "python3", 1, 3100, 4026532012);
    let c = d.refresh().unwrap();
    assert_eq!(inodes(&c.removed), [(4026532012, "bash[1300]".to_string())]);
    assert_eq!(
        inodes(&c.added),
        [(4026532012, "python3[1301]".to_string())]
    );
    assert!(c.changed.is_empty());

    // a pid reused by a different process (other start time) in the same namespace is not
    // a witness either
    host.kill(1301);
    host.spawn(1301, "python3", 1, 3200, 4026532012);
    let c = d.refresh().unwrap();
    assert_eq!(c.removed.len(), 1);
    assert_eq!(c.added.len(), 1);

    // a second process joins and the first leaves later: the namespace stays the same
    host.spawn(1302, "worker", 1301, 3300, 4026532012);
    assert!(d.refresh().unwrap().is_empty());
    host.kill(1301);
    let c = d.refresh().unwrap();
    assert!(c.added.is_empty() && c.removed.is_empty());
    assert_eq!(
        inodes(&c.changed),
        [(4026532012, "worker[1302]".to_string())]
    );
}

#[test]
fn an_unreadable_proc_is_an_error_naming_it() {
    let mut d = Discovery::new(DiscoveryOptions::under("/nonexistent-sockq-root"));
    let e = d.refresh().unwrap_err().to_string();
    assert!(e.contains("/nonexistent-sockq-root/proc"), "{e}");
}

#[test]
fn without_pid_1_the_host_is_kthreadds_namespace() {
    let host = Copy::new("kthreadd");
    std::fs::remove_file(host.proc(1).join("ns/net")).unwrap();
    let d = discover(&host.0);
    let first = &d.namespaces()[0];
    assert_eq!((first.inode, first.label()), (HOST, "host".to_string()));
    assert_eq!(first.enter, EnterBy::Pid(2));
    assert_eq!(first.processes, 4);
    assert_eq!(d.blind_spot(), None);
    // neither: no namespace is the host's, and discovery says so
    std::fs::remove_file(host.proc(2).join("ns/net")).unwrap();
    let d = discover(&host.0);
    assert!(d.namespaces().iter().all(|r| !r.name.host));
    assert!(
        d.blind_spot()
            .unwrap()
            .contains("host namespace is not marked"),
        "{:?}",
        d.blind_spot()
    );
}
