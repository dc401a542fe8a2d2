//! Pure parsers for naming a namespace: `net:[INODE]` links, cgroup paths (container runtimes,
//! Kubernetes pods, systemd-nspawn machines) and the runtimes' state files (JSON, the kubelet's
//! etc-hosts). No I/O: each takes the text already read; `names` reads the files.

use serde_json::Value;

use crate::model::netns::Runtime;

/// Inode of a network namespace from the target of a /proc/PID/ns/net link: `net:[4026531840]`.
pub fn parse_netns_link(target: &[u8]) -> Option<u64> {
    let digits = target.strip_prefix(b"net:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// What a cgroup path says about the process in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupIdentity {
    /// The container (runtime and id) — for nspawn the id is the machine name.
    pub container: Option<(Runtime, String)>,
    /// Kubernetes pod UID (with dashes).
    pub pod_uid: Option<String>,
}

impl CgroupIdentity {
    fn is_empty(&self) -> bool {
        self.container.is_none() && self.pod_uid.is_none()
    }
}

/// The identity from the lines of /proc/PID/cgroup, given as `(hierarchy, controllers, path)`:
/// the cgroup v2 line first (hierarchy 0), then v1's `name=systemd`, then the other v1 lines in
/// order; the first path that names a container or pod wins. On a hybrid host the v2 path of a
/// container made with the cgroupfs driver is `/` while its v1 paths say `/docker/<id>`.
pub fn identity_from_cgroups<'a>(
    lines: impl IntoIterator<Item = (u32, &'a [String], &'a str)>,
) -> CgroupIdentity {
    let mut lines: Vec<(u32, &[String], &str)> = lines.into_iter().collect();
    let rank = |&(h, c, _): &(u32, &[String], &str)| -> u8 {
        if h == 0 {
            0
        } else if c.iter().any(|c| c == "name=systemd") {
            1
        } else {
            2
        }
    };
    // stable: v1 lines keep their file order within a rank
    lines.sort_by_key(rank);
    lines
        .into_iter()
        .map(|(_, _, path)| identity_from_path(path))
        .find(|id| !id.is_empty())
        .unwrap_or_default()
}

/// The identity from one cgroup path. The innermost container wins (`/docker/<a>/docker/<b>`
/// is `b`); a pod UID is read from any `kubepods` level. Leading `..` segments (a process
/// outside the reader's cgroup namespace root: `/../../besteffort/pod<uid>/<id>`) are dropped,
/// so what is left of the path still names what it can.
pub fn identity_from_path(path: &str) -> CgroupIdentity {
    let segments: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .skip_while(|s| *s == "..")
        .collect();
    let kube = segments.iter().any(|s| s.starts_with("kubepods"));
    let mut id = CgroupIdentity {
        pod_uid: if kube {
            segments.iter().find_map(|s| pod_uid_of(s))
        } else {
            None
        },
        container: None,
    };
    for (i, seg) in segments.iter().enumerate().rev() {
        let parent = i.checked_sub(1).and_then(|p| segments.get(p)).copied();
        if let Some(c) = container_of(seg, parent, kube) {
            id.container = Some(c);
            break;
        }
    }
    id
}

/// Whether a cgroup path is relative to a cgroup namespace root the process is outside of
/// (`/../…`): the kernel prints it so to a reader in another cgroup namespace, and the levels
/// above the common ancestor (`kubepods`, `docker`) are missing.
pub fn is_outside_cgroupns_root(path: &str) -> bool {
    path.split('/').find(|s| !s.is_empty()) == Some("..")
}

/// A container named by one cgroup path segment (its parent segment for `/docker/<id>`).
fn container_of(seg: &str, parent: Option<&str>, kube: bool) -> Option<(Runtime, String)> {
    let scoped = |prefix: &str| {
        seg.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(".scope"))
            .filter(|id| is_container_id(id))
            .map(str::to_owned)
    };
    // The conmon monitors (`crio-conmon-<id>.scope`, `libpod-conmon-<id>.scope`) are not the
    // container: their ids fail is_container_id ("conmon-…" is not hex).
    if let Some(id) = scoped("docker-") {
        return Some((Runtime::Docker, id));
    }
    if let Some(id) = scoped("cri-containerd-") {
        return Some((Runtime::Containerd, id));
    }
    if let Some(id) = scoped("crio-") {
        return Some((Runtime::CriO, id));
    }
    if let Some(id) = scoped("libpod-") {
        return Some((Runtime::Podman, id));
    }
    if is_container_id(seg) {
        if parent == Some("docker") {
            return Some((Runtime::Docker, seg.to_owned()));
        }
        if kube {
            // cgroupfs driver under kubepods: the runtime is not in the path
            return Some((Runtime::Unknown, seg.to_owned()));
        }
    }
    if let Some(name) = seg
        .strip_prefix("systemd-nspawn@")
        .and_then(|r| r.strip_suffix(".service"))
    {
        return Some((Runtime::Nspawn, unescape_unit(name)));
    }
    if parent == Some("machine.slice") {
        if let Some(name) = seg
            .strip_prefix("machine-")
            .and_then(|r| r.strip_suffix(".scope"))
        {
            return Some((Runtime::Nspawn, unescape_unit(name)));
        }
    }
    None
}

/// A pod UID from one segment: `pod<uid>` (cgroupfs driver) or `kubepods[-QOS]-pod<uid>.slice`
/// (systemd driver, where the UID's dashes are underscores).
fn pod_uid_of(seg: &str) -> Option<String> {
    let raw = if let Some(slice) = seg.strip_suffix(".slice") {
        let (_, uid) = slice.rsplit_once("-pod")?;
        if !slice.starts_with("kubepods") {
            return None;
        }
        uid.replace('_', "-")
    } else {
        seg.strip_prefix("pod")?.to_owned()
    };
    is_uid(&raw).then_some(raw)
}

/// 64 lowercase or uppercase hex digits: docker, containerd, CRI-O and podman ids.
pub fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A UUID as Kubernetes writes pod UIDs: 8-4-4-4-12 hex digits.
fn is_uid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// systemd's unit name escaping undone: `\xNN` → the byte (`foo\x2dbar` → `foo-bar`).
/// Anything malformed is kept as it is.
pub fn unescape_unit(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 2..i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, bytes.get(i + 1), hex) {
            (b'\\', Some(b'x'), Some(v)) => {
                out.push(v);
                i += 4;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a runtime's state file says about a container and its pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateNames {
    /// The container's own name (not set for a pod's sandbox, whose name is the pod's).
    pub container: Option<String>,
    /// Kubernetes namespace of its pod.
    pub pod_namespace: Option<String>,
    /// Its pod's name.
    pub pod_name: Option<String>,
    /// The file describes a pod sandbox (the "pause" container that holds the pod's network
    /// namespace).
    pub sandbox: bool,
}

/// Longest name taken from a state file (a Kubernetes name is at most 253 bytes).
const MAX_NAME: usize = 253;

/// A non-empty string value of at most [`MAX_NAME`] bytes.
fn name_at(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= MAX_NAME)
        .map(str::to_owned)
}

/// The first of `keys` with a usable name.
fn first_name(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| name_at(v, k))
}

/// The annotations of an OCI runtime spec (`config.json` of containerd's and CRI-O's tasks):
/// the Kubernetes keys (`io.kubernetes.pod.namespace`, `io.kubernetes.pod.name`,
/// `io.kubernetes.container.name`), containerd CRI's (`io.kubernetes.cri.sandbox-namespace`,
/// `…sandbox-name`, `…container-name`, `…container-type`), CRI-O's (`io.kubernetes.cri-o.Namespace`,
/// `…KubeName`, `…ContainerName`, `…ContainerType`) and nerdctl's `nerdctl/name`.
pub fn parse_oci_config(json: &str) -> Result<StateNames, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let Some(a) = v.get("annotations").filter(|a| a.is_object()) else {
        return Ok(StateNames::default());
    };
    let sandbox = [
        "io.kubernetes.cri.container-type",
        "io.kubernetes.cri-o.ContainerType",
    ]
    .iter()
    .any(|k| a.get(k).and_then(Value::as_str) == Some("sandbox"));
    let container = first_name(
        a,
        &[
            "io.kubernetes.container.name",
            "io.kubernetes.cri.container-name",
            "io.kubernetes.cri-o.ContainerName",
            "nerdctl/name",
        ],
    )
    // a sandbox is "POD" to the kubelet: not a name a person gave
    .filter(|n| !sandbox && n != "POD");
    Ok(StateNames {
        container,
        pod_namespace: first_name(
            a,
            &[
                "io.kubernetes.pod.namespace",
                "io.kubernetes.cri.sandbox-namespace",
                "io.kubernetes.cri-o.Namespace",
            ],
        ),
        pod_name: first_name(
            a,
            &[
                "io.kubernetes.pod.name",
                "io.kubernetes.cri.sandbox-name",
                "io.kubernetes.cri-o.KubeName",
            ],
        ),
        sandbox,
    })
}

/// Docker's `config.v2.json`: `Name` (`/web` → `web`) and, for a container the kubelet made
/// through dockershim, the Kubernetes labels of `Config.Labels`.
pub fn parse_docker_config(json: &str) -> Result<StateNames, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let labels = v.get("Config").and_then(|c| c.get("Labels"));
    let label = |k: &str| labels.and_then(|l| name_at(l, k));
    let kube_container = label("io.kubernetes.container.name");
    let sandbox = kube_container.as_deref() == Some("POD")
        || label("io.kubernetes.docker.type").as_deref() == Some("podsandbox");
    let container = kube_container
        .or_else(|| {
            name_at(&v, "Name").map(|n| n.strip_prefix('/').map(str::to_owned).unwrap_or(n))
        })
        .filter(|n| !n.is_empty() && !sandbox);
    Ok(StateNames {
        container,
        pod_namespace: label("io.kubernetes.pod.namespace"),
        pod_name: label("io.kubernetes.pod.name"),
        sandbox,
    })
}

/// The first name of container `id` in containers/storage's `containers.json` (podman,
/// CRI-O): `[{"id": "…", "names": ["web"], …}, …]`.
pub fn parse_storage_containers(json: &str, id: &str) -> Result<Option<String>, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let list = v.as_array().ok_or("not a JSON array")?;
    Ok(list
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(id))
        .and_then(|c| c.get("names"))
        .and_then(Value::as_array)
        .and_then(|names| names.iter().find_map(Value::as_str))
        .filter(|n| !n.is_empty() && n.len() <= MAX_NAME)
        .map(str::to_owned))
}

/// What the kubelet's etc-hosts of a pod (`/var/lib/kubelet/pods/<uid>/etc-hosts`) says: the
/// pod's hostname — its name, unless the pod sets `spec.hostname` — and, when the pod has a
/// subdomain (`HOST.SUB.NAMESPACE.svc.DOMAIN`), its namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcHosts {
    /// The pod's hostname.
    pub hostname: Option<String>,
    /// The pod's Kubernetes namespace, from a `.svc.` FQDN.
    pub namespace: Option<String>,
}

/// Parses a kubelet-managed hosts file. `None` when it is not one (the kubelet's first line is
/// `# Kubernetes-managed hosts file.`; a host-network pod's file has no entry of its own).
pub fn parse_kubelet_etc_hosts(text: &str) -> Option<EtcHosts> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "# Kubernetes-managed hosts file." {
        return None;
    }
    const STANDARD: [&str; 7] = [
        "localhost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
    ];
    for line in lines {
        let line = line.trim();
        if line.starts_with("# Entries added by HostAliases") {
            break;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let names: Vec<&str> = line.split_whitespace().skip(1).collect();
        if names.iter().all(|n| STANDARD.contains(n)) {
            continue;
        }
        let namespace = names.iter().find_map(|n| {
            let labels: Vec<&str> = n.split('.').collect();
            match labels.as_slice() {
                [_, _, ns, "svc", ..] if !ns.is_empty() => Some((*ns).to_owned()),
                _ => None,
            }
        });
        // the short hostname is the last name; an FQDN alone still starts with it
        let hostname = names
            .last()
            .and_then(|n| n.split('.').next())
            .filter(|n| !n.is_empty() && n.len() <= MAX_NAME)
            .map(str::to_owned);
        return Some(EtcHosts {
            hostname,
            namespace,
        });
    }
    Some(EtcHosts::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a1b9c0d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
    const UID: &str = "5f0c1f5e-3b1c-4c2a-9d7e-0a1b2c3d4e5f";

    fn container(path: &str) -> Option<(Runtime, String)> {
        identity_from_path(path).container
    }

    #[test]
    fn netns_links() {
        assert_eq!(parse_netns_link(b"net:[4026531840]"), Some(4_026_531_840));
        for bad in [
            &b"net:[]"[..],
            b"net:[-1]",
            b"net:[+1]",
            b"socket:[1]",
            b"net:[1",
            b"net:[18446744073709551616]",
            b"",
        ] {
            assert_eq!(parse_netns_link(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn runtimes_from_cgroup_paths() {
        let d = Runtime::Docker;
        assert_eq!(
            container(&format!("/system.slice/docker-{ID}.scope")),
            Some((d, ID.into()))
        );
        assert_eq!(container(&format!("/docker/{ID}")), Some((d, ID.into())));
        // a container running systemd: the innermost docker level still names it
        assert_eq!(
            container(&format!("/system.slice/docker-{ID}.scope/init.scope")),
            Some((d, ID.into()))
        );
        assert_eq!(
            container(&format!("/system.slice/cri-containerd-{ID}.scope")),
            Some((Runtime::Containerd, ID.into()))
        );
        assert_eq!(
            container(&format!("/machine.slice/libpod-{ID}.scope/container")),
            Some((Runtime::Podman, ID.into()))
        );
        assert_eq!(
            container(&format!(
                "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"
            )),
            Some((Runtime::Podman, ID.into()))
        );
        assert_eq!(
            container(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
        assert_eq!(
            container(&format!("/system.slice/crio-conmon-{ID}.scope")),
            None
        );
        assert_eq!(
            container(&format!("/system.slice/crio-{ID}.scope")),
            Some((Runtime::CriO, ID.into()))
        );
        assert_eq!(
            container("/machine.slice/systemd-nspawn@web\\x2d1.service/payload"),
            Some((Runtime::Nspawn, "web-1".into()))
        );
        assert_eq!(
            container("/machine.slice/machine-web\\x2d1.scope"),
            Some((Runtime::Nspawn, "web-1".into()))
        );
        for none in [
            "/",
            "/init.scope",
            "/user.slice/user-1000.slice/session-3.scope",
            "/system.slice/docker.service",
            "/system.slice/docker-abc.scope",
            &format!("/system.slice/{ID}"),
            &format!("/docker/{}", &ID[..63]),
            "/machine-x.scope",
        ] {
            assert_eq!(
                identity_from_path(none),
                CgroupIdentity::default(),
                "{none}"
            );
        }
    }

    #[test]
    fn kubernetes_pods_both_cgroup_drivers() {
        let sd = UID.replace('-', "_");
        let cases = [
            // cgroupfs driver: bare ids, runtime unknown from the path
            (format!("/kubepods/burstable/pod{UID}/{ID}"), Runtime::Unknown),
            (format!("/kubepods/pod{UID}/{ID}"), Runtime::Unknown),
            (format!("/kubepods/besteffort/pod{UID}/{ID}"), Runtime::Unknown),
            // systemd driver
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{sd}.slice/cri-containerd-{ID}.scope"),
                Runtime::Containerd,
            ),
            (
                format!("/kubepods.slice/kubepods-pod{sd}.slice/crio-{ID}.scope"),
                Runtime::CriO,
            ),
            (
                format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{sd}.slice/docker-{ID}.scope"),
                Runtime::Docker,
            ),
        ];
        for (path, runtime) in cases {
            assert_eq!(
                identity_from_path(&path),
                CgroupIdentity {
                    container: Some((runtime, ID.into())),
                    pod_uid: Some(UID.into())
                },
                "{path}"
            );
        }
        // a pod level alone (a process in the pod's cgroup itself)
        assert_eq!(
            identity_from_path(&format!("/kubepods/burstable/pod{UID}")).pod_uid,
            Some(UID.into())
        );
        // "pod…" outside kubepods is not a pod
        assert_eq!(identity_from_path(&format!("/pod{UID}")).pod_uid, None);
        assert_eq!(
            identity_from_path("/kubepods/burstable/podnot-a-uid").pod_uid,
            None
        );
    }

    #[test]
    fn cgroup_lines_prefer_v2_then_name_systemd() {
        let none: Vec<String> = vec![];
        let sysd = vec!["name=systemd".to_string()];
        let mem = vec!["memory".to_string()];
        let docker_v1 = format!("/docker/{ID}");
        let other = "3".repeat(64);
        // hybrid host, cgroupfs driver: v2 says "/", v1 says /docker/<id>
        let lines = [
            (4, mem.as_slice(), docker_v1.as_str()),
            (1, sysd.as_slice(), docker_v1.as_str()),
            (0, none.as_slice(), "/"),
        ];
        assert_eq!(
            identity_from_cgroups(lines).container,
            Some((Runtime::Docker, ID.into()))
        );
        // v2 wins over v1 when it names something
        let podman = format!("/machine.slice/libpod-{other}.scope");
        let lines = [
            (1, sysd.as_slice(), docker_v1.as_str()),
            (0, none.as_slice(), podman.as_str()),
        ];
        assert_eq!(
            identity_from_cgroups(lines).container,
            Some((Runtime::Podman, other))
        );
        assert_eq!(identity_from_cgroups([]), CgroupIdentity::default());
    }

    #[test]
    fn paths_relative_to_another_cgroup_namespace() {
        let d = Runtime::Docker;
        // the levels that survive still name the container: a scope, a kubepods level
        assert_eq!(
            container(&format!("/../../system.slice/docker-{ID}.scope")),
            Some((d, ID.into()))
        );
        assert_eq!(container(&format!("/../docker/{ID}")), Some((d, ID.into())));
        let uid = "0b6f2f2e-8a7e-4c1d-9a55-3f1e2d4c5b6a";
        let sysd = identity_from_path(&format!(
            "/../../kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{ID}.scope",
            uid.replace('-', "_")
        ));
        assert_eq!(sysd.pod_uid.as_deref(), Some(uid));
        assert_eq!(sysd.container, Some((Runtime::Containerd, ID.into())));
        // the cut-off levels cannot be guessed: `/docker/<id>` seen from a sibling container,
        // cgroupfs kubepods seen from another pod
        assert_eq!(container(&format!("/../{ID}")), None);
        assert_eq!(
            identity_from_path(&format!("/../../../besteffort/pod{uid}/{ID}")),
            CgroupIdentity::default()
        );
        // `..` only at the start is dropped; nothing else changes
        assert_eq!(container(".."), None);
        assert_eq!(container("/../.."), None);
        assert!(is_outside_cgroupns_root("/../x"));
        assert!(is_outside_cgroupns_root(".."));
        assert!(!is_outside_cgroupns_root("/"));
        assert!(!is_outside_cgroupns_root(&format!("/docker/{ID}")));
        assert!(!is_outside_cgroupns_root("/a/../b"));
        assert!(!is_outside_cgroupns_root("/..x"));
    }

    #[test]
    fn unit_unescaping() {
        assert_eq!(unescape_unit("foo\\x2dbar"), "foo-bar");
        assert_eq!(unescape_unit("a\\x2"), "a\\x2");
        assert_eq!(unescape_unit("a\\xzz"), "a\\xzz");
        assert_eq!(unescape_unit("\\xc3\\xa9t\\xc3\\xa9"), "été");
        assert_eq!(unescape_unit("plain"), "plain");
    }

    #[test]
    fn oci_annotations_of_each_runtime() {
        let containerd_sandbox = r#"{"ociVersion":"1.1.0","annotations":{
            "io.kubernetes.cri.container-type":"sandbox",
            "io.kubernetes.cri.sandbox-id":"x",
            "io.kubernetes.cri.sandbox-name":"nginx-7c9",
            "io.kubernetes.cri.sandbox-namespace":"shop",
            "io.kubernetes.cri.sandbox-uid":"u"}}"#;
        assert_eq!(
            parse_oci_config(containerd_sandbox),
            Ok(StateNames {
                container: None,
                pod_namespace: Some("shop".into()),
                pod_name: Some("nginx-7c9".into()),
                sandbox: true
            })
        );
        let containerd_app = r#"{"annotations":{
            "io.kubernetes.cri.container-type":"container",
            "io.kubernetes.cri.container-name":"nginx",
            "io.kubernetes.cri.sandbox-name":"nginx-7c9",
            "io.kubernetes.cri.sandbox-namespace":"shop"}}"#;
        assert_eq!(
            parse_oci_config(containerd_app).map(|s| s.container),
            Ok(Some("nginx".into()))
        );
        let crio_sandbox = r#"{"annotations":{
            "io.kubernetes.cri-o.ContainerType":"sandbox",
            "io.kubernetes.container.name":"POD",
            "io.kubernetes.pod.name":"api-0",
            "io.kubernetes.pod.namespace":"prod",
            "io.kubernetes.cri-o.KubeName":"ignored-after-pod-name"}}"#;
        assert_eq!(
            parse_oci_config(crio_sandbox),
            Ok(StateNames {
                container: None,
                pod_namespace: Some("prod".into()),
                pod_name: Some("api-0".into()),
                sandbox: true
            })
        );
        let nerdctl = r#"{"annotations":{"nerdctl/name":"db"}}"#;
        assert_eq!(
            parse_oci_config(nerdctl).map(|s| s.container),
            Ok(Some("db".into()))
        );
        assert_eq!(parse_oci_config("{}"), Ok(StateNames::default()));
        assert_eq!(
            parse_oci_config(r#"{"annotations":{"io.kubernetes.pod.name":""}}"#),
            Ok(StateNames::default())
        );
        let long = format!(
            r#"{{"annotations":{{"io.kubernetes.pod.name":"{}"}}}}"#,
            "a".repeat(254)
        );
        assert_eq!(parse_oci_config(&long), Ok(StateNames::default()));
        assert!(parse_oci_config("{").is_err());
    }

    #[test]
    fn docker_config_names() {
        let plain = r#"{"ID":"x","Name":"/web","Config":{"Labels":{"maintainer":"me"}}}"#;
        assert_eq!(
            parse_docker_config(plain),
            Ok(StateNames {
                container: Some("web".into()),
                ..StateNames::default()
            })
        );
        let dockershim_sandbox = r#"{"Name":"/k8s_POD_api-0_prod_u_0","Config":{"Labels":{
            "io.kubernetes.container.name":"POD","io.kubernetes.docker.type":"podsandbox",
            "io.kubernetes.pod.name":"api-0","io.kubernetes.pod.namespace":"prod"}}}"#;
        assert_eq!(
            parse_docker_config(dockershim_sandbox),
            Ok(StateNames {
                container: None,
                pod_namespace: Some("prod".into()),
                pod_name: Some("api-0".into()),
                sandbox: true
            })
        );
        assert_eq!(
            parse_docker_config(r#"{"Name":"/"}"#),
            Ok(StateNames::default())
        );
        assert!(parse_docker_config("[1,").is_err());
    }

    #[test]
    fn storage_containers_json() {
        let json = format!(
            r#"[{{"id":"{}","names":["other"]}},{{"id":"{ID}","names":["web","alias"],"layer":"l"}}]"#,
            "1".repeat(64)
        );
        assert_eq!(parse_storage_containers(&json, ID), Ok(Some("web".into())));
        assert_eq!(parse_storage_containers(&json, &"2".repeat(64)), Ok(None));
        assert_eq!(
            parse_storage_containers(&format!(r#"[{{"id":"{ID}","names":[]}}]"#), ID),
            Ok(None)
        );
        assert!(parse_storage_containers("{}", ID).is_err());
    }

    #[test]
    fn kubelet_etc_hosts() {
        let plain = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n10.244.1.5\tnginx-7c9f8d6b5-abcde\n";
        assert_eq!(
            parse_kubelet_etc_hosts(plain),
            Some(EtcHosts {
                hostname: Some("nginx-7c9f8d6b5-abcde".into()),
                namespace: None
            })
        );
        let sub = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n10.244.1.9\tdb-0.db.prod.svc.cluster.local\tdb-0\n";
        assert_eq!(
            parse_kubelet_etc_hosts(sub),
            Some(EtcHosts {
                hostname: Some("db-0".into()),
                namespace: Some("prod".into())
            })
        );
        let aliases_only = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n\n# Entries added by HostAliases.\n1.2.3.4\tfoo\n";
        assert_eq!(
            parse_kubelet_etc_hosts(aliases_only),
            Some(EtcHosts::default())
        );
        assert_eq!(
            parse_kubelet_etc_hosts(
                "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n"
            ),
            None
        );
        assert_eq!(parse_kubelet_etc_hosts("127.0.0.1 localhost\n"), None);
        assert_eq!(parse_kubelet_etc_hosts(""), None);
    }
}
