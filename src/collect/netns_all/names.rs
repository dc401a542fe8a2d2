//! Naming a namespace as a person knows it, from its main process's cgroup path and the
//! container runtimes' state files — no daemon is asked. Every path is read under a root
//! directory (`/` on a host; a fake tree in tests).
//!
//! | runtime | cgroup path | state file read (under the root) |
//! |---|---|---|
//! | docker | `docker-<id>.scope`, `/docker/<id>` | `var/lib/docker/containers/<id>/config.v2.json`: `Name`, dockershim's Kubernetes labels |
//! | containerd | `cri-containerd-<id>.scope` | `run/containerd/io.containerd.runtime.v2.task/<namespace>/<id>/config.json`: annotations |
//! | CRI-O | `crio-<id>.scope` | `{run,var/lib}/containers/storage/overlay-containers/<id>/userdata/config.json`: annotations |
//! | podman | `libpod-<id>.scope` | `var/lib/containers/storage/overlay-containers/containers.json`: `names` |
//! | nspawn | `systemd-nspawn@NAME.service`, `machine-NAME.scope` | none: the name is in the path |
//! | Kubernetes | `kubepods…pod<uid>…` (cgroupfs and systemd forms) | `var/lib/kubelet/pods/<uid>/containers/` (container names), `…/etc-hosts` (hostname); the runtime's annotations (pod namespace and name) |
//!
//! Under kubepods with the cgroupfs driver the path holds a bare id: the runtime is the one
//! whose state file exists (docker, then containerd, then CRI-O).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use procfs::process::Process;

use super::parse::{
    identity_from_cgroups, is_outside_cgroupns_root, parse_docker_config, parse_kubelet_etc_hosts,
    parse_oci_config, parse_storage_containers, CgroupIdentity, StateNames,
};
use crate::model::netns::{Container, Pod, Runtime};

/// Largest state file read (a runtime spec is a few KiB; containers.json lists every
/// container of the host).
const MAX_STATE_FILE: u64 = 8 << 20;

/// What naming found for one process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessNames {
    /// Its container, from its cgroup path (and a state file for the name).
    pub container: Option<Container>,
    /// Its Kubernetes pod.
    pub pod: Option<Pod>,
    /// What could not be read (other than files that do not exist), one line each.
    pub problems: Vec<String>,
    /// Its cgroup paths, as read, are relative to a cgroup namespace root it is outside of
    /// (`/../…`): levels that would name it may be missing.
    pub relative_cgroups: bool,
}

/// Names process `pid` from `proc_root/PID/cgroup` and the state files under `root`.
pub fn name_process(root: &Path, proc_root: &Path, pid: u32) -> ProcessNames {
    let mut problems = Vec::new();
    let cgroups = Process::new_with_root(proc_root.join(pid.to_string())).and_then(|p| p.cgroups());
    let mut relative_cgroups = false;
    let identity = match cgroups {
        Ok(c) => {
            relative_cgroups = c.0.iter().any(|l| is_outside_cgroupns_root(&l.pathname));
            identity_from_cgroups(
                c.0.iter()
                    .map(|l| (l.hierarchy, l.controllers.as_slice(), l.pathname.as_str())),
            )
        }
        Err(procfs::ProcError::NotFound(_)) => CgroupIdentity::default(),
        Err(e) => {
            problems.push(format!("{}/{pid}/cgroup: {e}", proc_root.display()));
            CgroupIdentity::default()
        }
    };
    let (container, pod) = name_identity(root, &identity, &mut problems);
    ProcessNames {
        container,
        pod,
        problems,
        relative_cgroups,
    }
}

/// The container and pod of a cgroup identity, named from the state files under `root`.
pub fn name_identity(
    root: &Path,
    id: &CgroupIdentity,
    problems: &mut Vec<String>,
) -> (Option<Container>, Option<Pod>) {
    let mut state = StateNames::default();
    let container = id.container.as_ref().map(|(runtime, cid)| {
        let (runtime, found) = state_of(root, *runtime, cid, problems);
        state = found.unwrap_or_default();
        Container {
            runtime,
            id: cid.clone(),
            name: state.container.clone(),
        }
    });
    let pod = id.pod_uid.as_ref().map(|uid| {
        let dir = root.join("var/lib/kubelet/pods").join(uid);
        let hosts = read_state(&dir.join("etc-hosts"), problems)
            .as_deref()
            .and_then(parse_kubelet_etc_hosts)
            .unwrap_or_default();
        Pod {
            uid: uid.clone(),
            namespace: state.pod_namespace.clone().or(hosts.namespace),
            name: state.pod_name.clone().or(hosts.hostname),
            containers: subdirectories(&dir.join("containers"), problems),
        }
    });
    (container, pod)
}

/// The runtime (resolved for a bare id under kubepods) and what its state file says; `None`
/// when no state file was found.
fn state_of(
    root: &Path,
    runtime: Runtime,
    id: &str,
    problems: &mut Vec<String>,
) -> (Runtime, Option<StateNames>) {
    let found = match runtime {
        Runtime::Docker => docker(root, id, problems),
        Runtime::Containerd => containerd(root, id, problems),
        Runtime::CriO => crio(root, id, problems),
        Runtime::Podman => podman(root, id, problems),
        Runtime::Nspawn => Some(StateNames {
            container: Some(id.to_owned()),
            ..StateNames::default()
        }),
        Runtime::Unknown => {
            for (runtime, lookup) in [
                (Runtime::Docker, docker as Lookup),
                (Runtime::Containerd, containerd),
                (Runtime::CriO, crio),
            ] {
                if let Some(s) = lookup(root, id, problems) {
                    return (runtime, Some(s));
                }
            }
            None
        }
    };
    (runtime, found)
}

type Lookup = fn(&Path, &str, &mut Vec<String>) -> Option<StateNames>;

fn docker(root: &Path, id: &str, problems: &mut Vec<String>) -> Option<StateNames> {
    let path = root
        .join("var/lib/docker/containers")
        .join(id)
        .join("config.v2.json");
    parsed(&path, parse_docker_config, problems)
}

fn containerd(root: &Path, id: &str, problems: &mut Vec<String>) -> Option<StateNames> {
    let tasks = root.join("run/containerd/io.containerd.runtime.v2.task");
    // Kubernetes' namespace first, then the others (`default` for nerdctl, `moby` for docker)
    let mut namespaces = vec![PathBuf::from("k8s.io")];
    namespaces.extend(
        subdirectories(&tasks, problems)
            .into_iter()
            .filter(|n| n != "k8s.io")
            .map(PathBuf::from),
    );
    namespaces.iter().find_map(|ns| {
        parsed(
            &tasks.join(ns).join(id).join("config.json"),
            parse_oci_config,
            problems,
        )
    })
}

fn crio(root: &Path, id: &str, problems: &mut Vec<String>) -> Option<StateNames> {
    ["run", "var/lib"].iter().find_map(|base| {
        let path = root
            .join(base)
            .join("containers/storage/overlay-containers")
            .join(id)
            .join("userdata/config.json");
        parsed(&path, parse_oci_config, problems)
    })
}

fn podman(root: &Path, id: &str, problems: &mut Vec<String>) -> Option<StateNames> {
    let path = root.join("var/lib/containers/storage/overlay-containers/containers.json");
    let text = read_state(&path, problems)?;
    match parse_storage_containers(&text, id) {
        Ok(name) => Some(StateNames {
            container: name,
            ..StateNames::default()
        }),
        Err(e) => {
            problems.push(format!("{}: {e}", path.display()));
            None
        }
    }
}

/// A state file read and parsed; `None` when absent, unreadable or malformed (the last two
/// noted in `problems`).
fn parsed(
    path: &Path,
    parse: fn(&str) -> Result<StateNames, String>,
    problems: &mut Vec<String>,
) -> Option<StateNames> {
    let text = read_state(path, problems)?;
    match parse(&text) {
        Ok(s) => Some(s),
        Err(e) => {
            problems.push(format!("{}: {e}", path.display()));
            None
        }
    }
}

/// A small regular file's text: `None` when it does not exist; when it cannot be read, is not
/// a regular file (opened non-blocking, so a FIFO cannot hang discovery) or is too large, also
/// `None`, noted in `problems`.
fn read_state(path: &Path, problems: &mut Vec<String>) -> Option<String> {
    match read_small(path) {
        Ok(text) => text,
        Err(e) => {
            problems.push(format!("{}: {e}", path.display()));
            None
        }
    }
}

fn read_small(path: &Path) -> io::Result<Option<String>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    File::take(file, MAX_STATE_FILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_STATE_FILE {
        return Err(io::Error::other(format!(
            "larger than {MAX_STATE_FILE} bytes"
        )));
    }
    Ok(Some(text))
}

/// Names of the subdirectories of `dir`, sorted; empty when it does not exist.
fn subdirectories(dir: &Path, problems: &mut Vec<String>) -> Vec<String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            problems.push(format!("{}: {e}", dir.display()));
            return Vec::new();
        }
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
