//! The network namespaces of a host, as discovery finds them and a person knows them.
//!
//! Plain data, no I/O: `collect::netns_all` fills these in (from /proc, the `ip netns` and
//! docker bind mounts, cgroup paths and container runtimes' state files); every view labels a
//! namespace with [`NetnsName::label`], so a namespace has the same name everywhere.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One network namespace of the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NetnsRef {
    /// Inode number of the namespace (as in `readlink /proc/PID/ns/net` → `net:[INODE]`): its
    /// identity while it exists (the kernel may reuse it once the namespace is gone).
    pub inode: u64,
    /// What a person knows it by.
    pub name: NetnsName,
    /// How to enter it.
    pub enter: EnterBy,
    /// Processes whose /proc/PID/ns/net is this namespace (0: held only by a bind mount).
    pub processes: u32,
}

/// How to enter a namespace: a bind mount outlives any process, so it is preferred.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnterBy {
    /// `/run/netns/NAME`, as made by `ip netns add NAME`.
    Named(String),
    /// Another bind mount of the namespace (e.g. `/var/run/docker/netns/ID`).
    Path(PathBuf),
    /// `/proc/PID/ns/net` of a process in it (its main process).
    Pid(u32),
}

/// Everything known about who a namespace belongs to. [`NetnsName::label`] picks what to show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NetnsName {
    /// The host's own namespace: pid 1's (kthreadd's when pid 1's is unreadable: kernel
    /// threads live in the initial namespace).
    pub host: bool,
    /// Names under /run/netns (`ip netns`), sorted; a namespace can be mounted under several.
    pub ip_netns: Vec<String>,
    /// File name under /var/run/docker/netns (docker's sandbox key), when mounted there.
    pub docker_netns: Option<String>,
    /// The container its main process runs in, from that process's cgroup path.
    pub container: Option<Container>,
    /// The Kubernetes pod, from the cgroup path (`kubepods…pod<uid>…`).
    pub pod: Option<Pod>,
    /// Its main process: the oldest one whose parent is outside the namespace.
    pub main: Option<MainProcess>,
}

/// A process, as `comm[pid]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MainProcess {
    /// Process id (in sockq's PID namespace).
    pub pid: u32,
    /// Command name (/proc/PID/comm, at most 15 bytes).
    pub comm: String,
}

/// Which runtime made a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    /// Docker (`docker-<id>.scope`, `/docker/<id>`).
    Docker,
    /// containerd's CRI plugin (`cri-containerd-<id>.scope`), or containerd found by its state
    /// files for a bare id under kubepods.
    Containerd,
    /// CRI-O (`crio-<id>.scope`).
    CriO,
    /// Podman (`libpod-<id>.scope`).
    Podman,
    /// systemd-nspawn / systemd-machined (`systemd-nspawn@NAME.service`, `machine-NAME.scope`).
    Nspawn,
    /// A container under kubepods whose runtime its cgroup path does not say (cgroupfs driver,
    /// bare id) and whose state files were not found.
    Unknown,
}

impl Runtime {
    /// Short lowercase name: `docker`, `containerd`, `cri-o`, `podman`, `nspawn`, `container`.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
            Runtime::Nspawn => "nspawn",
            Runtime::Unknown => "container",
        }
    }
}

/// A container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Container {
    /// Which runtime made it.
    pub runtime: Runtime,
    /// Its id (64 hex digits), or the machine name for nspawn.
    pub id: String,
    /// Its name, when a state file says (docker `--name`, the Kubernetes container name, …).
    pub name: Option<String>,
}

/// A Kubernetes pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Pod {
    /// Pod UID (with dashes, as the API shows it).
    pub uid: String,
    /// Kubernetes namespace, when a state file says.
    pub namespace: Option<String>,
    /// Pod name, when a state file says.
    pub name: Option<String>,
    /// Names of its containers, when the kubelet's pod directory lists them; sorted.
    pub containers: Vec<String>,
}

/// How many characters of a container id a label shows (as `docker ps` does).
pub const SHORT_ID: usize = 12;

impl NetnsName {
    /// One line a person recognises, best first: `host`; the `ip netns` name; `pod NS/NAME`
    /// (or `pod UID`); `RUNTIME NAME` (or `RUNTIME ID12`); `docker netns KEY`; the main
    /// process `comm[pid]`; and, when nothing is known, `net:[INODE]`.
    pub fn label(&self, inode: u64) -> String {
        if self.host {
            return "host".into();
        }
        if let Some(first) = self.ip_netns.first() {
            return first.clone();
        }
        if let Some(pod) = &self.pod {
            return match (&pod.namespace, &pod.name) {
                (Some(ns), Some(name)) => format!("pod {ns}/{name}"),
                (None, Some(name)) => format!("pod {name}"),
                _ => format!("pod {}", short(&pod.uid)),
            };
        }
        if let Some(c) = &self.container {
            return match &c.name {
                Some(name) => format!("{} {name}", c.runtime.as_str()),
                None => format!("{} {}", c.runtime.as_str(), short(&c.id)),
            };
        }
        if let Some(key) = &self.docker_netns {
            return format!("docker netns {key}");
        }
        if let Some(m) = &self.main {
            return format!("{}[{}]", m.comm, m.pid);
        }
        format!("net:[{inode}]")
    }
}

impl NetnsRef {
    /// [`NetnsName::label`] of this namespace.
    pub fn label(&self) -> String {
        self.name.label(self.inode)
    }
}

/// The first [`SHORT_ID`] characters of a container id (whole when shorter or not ASCII).
fn short(id: &str) -> &str {
    id.get(..SHORT_ID).unwrap_or(id)
}

/// What changed between two discoveries.
///
/// A namespace is identified by its inode *and* what holds it: the kernel reuses the inode
/// number of a namespace that is gone, so a namespace whose inode was seen before but none of
/// whose processes (pid and start time) or bind mounts were is a new one: it is in `removed`
/// (the old one) and in `added` (the new one). Apply `removed` first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetnsChanges {
    /// Namespaces found now and not before, in the discovery's order.
    pub added: Vec<NetnsRef>,
    /// Namespaces found before and not now, as last seen.
    pub removed: Vec<NetnsRef>,
    /// Namespaces found both times whose name or way in changed (a main process exited, an
    /// `ip netns` name was added), as found now.
    pub changed: Vec<NetnsRef>,
}

impl NetnsChanges {
    /// True when nothing appeared, disappeared or changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> NetnsName {
        NetnsName::default()
    }

    #[test]
    fn labels_fall_back_in_order() {
        let mut n = name();
        assert_eq!(n.label(4026532315), "net:[4026532315]");
        n.main = Some(MainProcess {
            pid: 42,
            comm: "sleep".into(),
        });
        assert_eq!(n.label(1), "sleep[42]");
        n.docker_netns = Some("1a2b3c4d5e6f".into());
        assert_eq!(n.label(1), "docker netns 1a2b3c4d5e6f");
        let id = "3f2a1b9c0d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
        n.container = Some(Container {
            runtime: Runtime::Docker,
            id: id.into(),
            name: None,
        });
        assert_eq!(n.label(1), "docker 3f2a1b9c0d4e");
        n.container = Some(Container {
            runtime: Runtime::Docker,
            id: id.into(),
            name: Some("web".into()),
        });
        assert_eq!(n.label(1), "docker web");
        n.pod = Some(Pod {
            uid: "5f0c1f5e-3b1c-4c2a-9d7e-0a1b2c3d4e5f".into(),
            namespace: None,
            name: None,
            containers: vec![],
        });
        assert_eq!(n.label(1), "pod 5f0c1f5e-3b1");
        n.pod = Some(Pod {
            uid: "u".into(),
            namespace: Some("default".into()),
            name: Some("nginx-7c9".into()),
            containers: vec!["nginx".into()],
        });
        assert_eq!(n.label(1), "pod default/nginx-7c9");
        n.ip_netns = vec!["blue".into(), "red".into()];
        assert_eq!(n.label(1), "blue");
        n.host = true;
        assert_eq!(n.label(1), "host");
    }

    #[test]
    fn short_ids_never_split_a_character() {
        assert_eq!(short("abc"), "abc");
        assert_eq!(short("ééééééééééééé"), "éééééé");
        // byte 12 falls inside 'é': the whole id rather than a panic or a broken character
        assert_eq!(short("12345678901é3"), "12345678901é3");
    }
}
