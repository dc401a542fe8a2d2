//! The `Snapshot`: one sample of a network namespace's connection pipeline.
//!
//! Plain data, no I/O. Every view (table, JSON, dashboard, Prometheus) renders from this type, so
//! the numbers can never disagree between views. The JSON form is the documented, versioned
//! schema in `docs/schema/snapshot.schema.json` (checked by a test against these types).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::service::{ServiceStats, ServiceSummary, TcpSockstat};

/// Version of the JSON schema. Bump on any incompatible change of the serialized form.
pub const SCHEMA_VERSION: u32 = 1;

/// One sample of one network namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Snapshot {
    /// Version of this JSON schema (see `docs/schema/snapshot.schema.json`).
    pub schema_version: u32,
    /// When the sample was taken.
    pub time: SampleTime,
    /// Which host and kernel.
    pub host: HostInfo,
    /// Which network namespace was read.
    pub netns: NetnsInfo,
    /// TCP sockets in state LISTEN (IPv4 and IPv6), in kernel dump order.
    pub tcp_listeners: Vec<TcpListener>,
    /// Summary of the SYN-RECV (half-open) requests of the namespace.
    pub syn_recv: SynRecvSummary,
    /// UNIX stream sockets in state LISTEN. Absent when not collected.
    pub unix_listeners: Option<Vec<UnixListener>>,
    /// The service dump (the listeners' children) of this sample: its age and cost. Absent
    /// when it was not made (no listeners, or it failed: see `blind_spots`).
    #[serde(default)]
    pub service: Option<ServiceSummary>,
    /// The `TCP:` line of /proc/net/sockstat (sockets and memory). Absent when unreadable.
    #[serde(default)]
    pub sockstat: Option<TcpSockstat>,
    /// Cumulative kernel counters of the namespace (since the namespace was created).
    pub counters: Counters,
    /// Kernel tunables in force for the namespace.
    pub tunables: Tunables,
    /// What sockq could not see in this sample, in plain words. Empty when it saw everything.
    pub blind_spots: Vec<String>,
}

/// Time of a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SampleTime {
    /// Wall-clock time, RFC 3339, UTC, millisecond precision.
    pub wall: String,
    /// Wall-clock time in milliseconds since the Unix epoch.
    pub wall_unix_ms: u64,
    /// CLOCK_MONOTONIC in nanoseconds (for intervals between samples; not comparable across boots).
    pub monotonic_ns: u64,
}

/// Host identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HostInfo {
    /// Host name (of sockq's UTS namespace).
    pub hostname: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
}

/// The network namespace that was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NetnsInfo {
    /// How it was chosen: `current` (sockq's own), `name:NAME` (under /run/netns) or `pid:PID`.
    pub label: String,
    /// Inode number of the namespace (as in `ls -L -i /proc/PID/ns/net`), when readable.
    pub inode: Option<u64>,
}

/// Address family.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// AF_INET
    Ipv4,
    /// AF_INET6
    Ipv6,
}

impl Family {
    /// The family of an address.
    #[must_use]
    pub fn of(addr: &std::net::IpAddr) -> Self {
        if addr.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        }
    }
}

/// A TCP listening socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TcpListener {
    /// Address family of the socket.
    pub family: Family,
    /// Local address the socket is bound to (`0.0.0.0` / `::` for a wildcard).
    pub address: IpAddr,
    /// Local port.
    pub port: u16,
    /// For IPv6 sockets, IPV6_V6ONLY: false means a `::` listener also accepts IPv4 (dual
    /// stack, printed `*:PORT` as `ss` does). Absent for IPv4 sockets.
    pub v6only: Option<bool>,
    /// Socket inode (matches `socket:[INODE]` in /proc/PID/fd).
    pub inode: u64,
    /// Kernel socket cookie: unique for the life of the socket, unlike an inode number.
    pub cookie: u64,
    /// Owner UID of the socket.
    pub uid: u32,
    /// Accept queue depth: connections fully established and waiting for accept()
    /// (`sk_ack_backlog`, `ss -ltn` Recv-Q).
    pub accept_queue: u32,
    /// Backlog in force: min(listen() backlog, net.core.somaxconn at the time of listen())
    /// (`sk_max_ack_backlog`, `ss -ltn` Send-Q). The queue is full when depth > backlog.
    pub backlog: u32,
    /// The listener's own drop counter (`sk_drops`, `ss -ltm` `d<N>`): cumulative, bumped by
    /// every connection the kernel dropped on this listener. Absent when the kernel did not report
    /// SK_MEMINFO.
    pub drops: Option<u64>,
    /// SYN-RECV requests matched to this listener (for a shared port, to its group; see
    /// `syn_recv_group`).
    pub syn_recv: u64,
    /// Number of listening sockets the SYN-RECV count is shared by: 1 when the count is this
    /// socket's own; more with SO_REUSEPORT (the kernel does not say which socket of the group
    /// a request belongs to).
    pub syn_recv_group: u32,
    /// Highest SYN-ACK retransmit count among the matched requests: how long the oldest waits
    /// (retransmits happen at 1 s, 3 s, 7 s, 15 s, 31 s after the SYN). Absent with no requests.
    pub syn_recv_max_retrans: Option<u8>,
    /// Processes holding this socket (busiest first).
    pub owners: Owners,
    /// After accept(): this listener's children (waiting, in service, closing). Absent when
    /// the service dump was not made or failed.
    #[serde(default)]
    pub service: Option<ServiceStats>,
}

/// Processes holding a socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Owners {
    /// The processes that hold the socket open (pre-fork servers: several).
    Known {
        /// Owning processes, busiest first: the highest CPU share first, then running or
        /// blocked before sleeping, stopped last, then by pid.
        // Shared: every listener a process holds points at one list (10,000 listeners of one
        // holder were 20,000 allocations a sample, and as many frees on the engine's side).
        processes: Arc<Vec<ProcessInfo>>,
    },
    /// The owners could not be determined.
    Unknown {
        /// Why, in plain words (e.g. owned by another user and sockq is not root).
        reason: String,
    },
}

impl Owners {
    /// Owning processes, empty when unknown.
    pub fn processes(&self) -> &[ProcessInfo] {
        match self {
            Owners::Known { processes } => processes,
            Owners::Unknown { .. } => &[],
        }
    }

    /// Puts the processes busiest first (see [`ProcessInfo::busiest_first`]): in a pre-fork
    /// server the worker that accepts, not the idle master, comes first.
    pub fn sort_busiest_first(&mut self) {
        if let Owners::Known { processes } = self {
            Arc::make_mut(processes).sort_by(ProcessInfo::busiest_first);
        }
    }

    /// True when the processes are known and none can call accept() now (every one
    /// [`ProcessInfo::cannot_accept`]).
    #[must_use]
    pub fn none_can_accept(&self) -> bool {
        let p = self.processes();
        !p.is_empty() && p.iter().all(ProcessInfo::cannot_accept)
    }
}

/// A process that holds a socket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: u32,
    /// Command name (/proc/PID/comm).
    pub comm: String,
    /// Number of open file descriptors (entries of /proc/PID/fd). Absent when unreadable.
    pub fds_open: Option<u64>,
    /// RLIMIT_NOFILE soft limit (prlimit(2), or /proc/PID/limits "Max open files"); absent when
    /// unreadable or unlimited.
    pub fd_limit: Option<u64>,
    /// Age of `fds_open`, `fd_limit`, `state`, `cpu_percent` and `threads` in milliseconds: 0
    /// when read for this sample. With more than 256 processes holding sockets, a process
    /// below half its fd limit (and not stopped) is re-read in turn (at least every 10th
    /// sample) instead of on every sample.
    #[serde(default)]
    pub age_ms: u64,
    /// Scheduler state of the process's main thread (/proc/PID/stat field 3): `R` running,
    /// `S` sleeping, `D` uninterruptible sleep, `T` stopped by a signal (SIGSTOP, SIGTSTP),
    /// `t` stopped by a tracer, `Z` zombie, `I` idle. Absent when unreadable.
    #[serde(default)]
    pub state: Option<char>,
    /// CPU time the process used (all its threads: /proc/PID/stat utime + stime) over the
    /// interval since sockq read it before, in percent of one core: above 100 with several
    /// busy threads. Absent on the first read of a process (and when its pid now belongs to
    /// another process): so always with `sockq snapshot --cpu-window 0`, which reads each
    /// process once. Absent (null) means unknown, not 0.
    #[serde(default)]
    pub cpu_percent: Option<f64>,
    /// Number of threads (/proc/PID/stat field 20). Absent when unreadable.
    #[serde(default)]
    pub threads: Option<u32>,
}

impl ProcessInfo {
    /// `state` in words: `stopped` for `T`.
    #[must_use]
    pub fn state_word(&self) -> Option<&'static str> {
        Some(match self.state? {
            'R' => "running",
            'S' => "sleeping",
            'D' => "in uninterruptible sleep",
            'T' => "stopped",
            't' => "stopped by a tracer",
            'Z' => "a zombie",
            'X' | 'x' => "dead",
            'I' => "idle",
            'P' => "parked",
            'W' => "waking",
            'K' => "wakekill",
            _ => "in an unknown state",
        })
    }

    /// True when the process cannot call accept() now, whatever arrives: stopped by a signal
    /// (`T`: every thread stops with a group stop), or, for a process of one thread, stopped
    /// by a tracer (`t`) or in uninterruptible sleep (`D`). Only the main thread's state is
    /// read, so `t` and `D` say nothing about a process with other threads that may accept.
    #[must_use]
    pub fn cannot_accept(&self) -> bool {
        match self.state {
            Some('T') => true,
            Some('t' | 'D') => self.threads == Some(1),
            _ => false,
        }
    }

    /// Order of states for "busiest first": running, then blocked in the kernel, sleeping,
    /// idle; unknown; stopped; zombie or dead last.
    fn state_rank(&self) -> u8 {
        match self.state {
            Some('R') => 0,
            Some('D') => 1,
            Some('S') => 2,
            Some('I') => 3,
            Some('T' | 't') => 5,
            Some('Z' | 'X' | 'x') => 6,
            _ => 4,
        }
    }

    /// Busiest first: the higher CPU share first (a known one before an absent one), then
    /// by state (running and blocked before sleeping, stopped last), then by pid.
    #[must_use]
    pub fn busiest_first(&self, other: &Self) -> std::cmp::Ordering {
        let cpu = |p: &Self| p.cpu_percent.filter(|c| c.is_finite());
        match (cpu(self), cpu(other)) {
            (Some(a), Some(b)) => b.total_cmp(&a),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then_with(|| self.state_rank().cmp(&other.state_rank()))
        .then_with(|| self.pid.cmp(&other.pid))
    }
}

/// SYN-RECV requests of the namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SynRecvSummary {
    /// All SYN-RECV requests in the namespace (`ss -tn state syn-recv` lines).
    pub total: u64,
    /// Requests that matched no listener (the listener closed, or a race during the dump).
    pub unmatched: u64,
    /// Age of these numbers in milliseconds: 0 when current — dumped for this sample, or
    /// known to be none without a dump (the last dump found none and the namespace's Tcp
    /// InSegs has not moved since: no SYN arrived); more when the SYN-RECV dump (expensive
    /// during a flood) was spaced out to keep sockq's CPU budget.
    pub age_ms: u64,
}

/// A UNIX stream listening socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UnixListener {
    /// Path, `@name` for an abstract socket, or empty when unnamed.
    pub name: String,
    /// Socket inode.
    pub inode: u64,
    /// Connections waiting for accept() (UDIAG_SHOW_RQLEN, `ss -lx` Recv-Q).
    pub accept_queue: u32,
    /// Backlog in force (`ss -lx` Send-Q).
    pub backlog: u32,
    /// Processes holding this socket.
    pub owners: Owners,
}

/// Cumulative kernel counters, kept by name as the kernel spells them. A field the kernel does
/// not have is absent, never zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Counters {
    /// The TcpExt block of /proc/net/netstat.
    pub tcp_ext: BTreeMap<String, u64>,
    /// The Tcp block of /proc/net/snmp (MaxConn is -1, hence signed).
    pub tcp: BTreeMap<String, i64>,
}

/// The TcpExt counters about the listen queues, in the order sockq shows them.
pub const QUEUE_COUNTERS: [&str; 8] = [
    "ListenOverflows",
    "ListenDrops",
    "TCPReqQFullDrop",
    "TCPReqQFullDoCookies",
    "SyncookiesSent",
    "SyncookiesRecv",
    "SyncookiesFailed",
    "EmbryonicRsts",
];

impl Counters {
    /// A TcpExt counter by its kernel name.
    pub fn tcp_ext(&self, name: &str) -> Option<u64> {
        self.tcp_ext.get(name).copied()
    }
}

/// Kernel tunables in force. `None` means the file is absent or unreadable, never a default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Tunables {
    /// net.core.somaxconn: upper bound of any listen() backlog (per namespace).
    #[serde(rename = "net.core.somaxconn")]
    pub somaxconn: Option<i64>,
    /// net.ipv4.tcp_max_syn_backlog: SYN queue bound, only with tcp_syncookies=0.
    #[serde(rename = "net.ipv4.tcp_max_syn_backlog")]
    pub tcp_max_syn_backlog: Option<i64>,
    /// net.ipv4.tcp_syncookies: 0 off, 1 when the SYN queue is full, 2 always.
    #[serde(rename = "net.ipv4.tcp_syncookies")]
    pub tcp_syncookies: Option<i64>,
    /// net.ipv4.tcp_abort_on_overflow: 1 sends a RST when the accept queue is full at the final
    /// ACK; 0 drops the ACK silently.
    #[serde(rename = "net.ipv4.tcp_abort_on_overflow")]
    pub tcp_abort_on_overflow: Option<i64>,
    /// net.ipv4.tcp_synack_retries: SYN-ACK retransmissions before a request is dropped.
    #[serde(rename = "net.ipv4.tcp_synack_retries")]
    pub tcp_synack_retries: Option<i64>,
    /// net.ipv4.tcp_syn_retries: SYN retransmissions of an outgoing connect().
    #[serde(rename = "net.ipv4.tcp_syn_retries")]
    pub tcp_syn_retries: Option<i64>,
    /// net.core.netdev_max_backlog: per-CPU input packet queue length.
    #[serde(rename = "net.core.netdev_max_backlog")]
    pub netdev_max_backlog: Option<i64>,
    /// fs.file-max: system-wide limit on open files (not per namespace).
    #[serde(rename = "fs.file-max")]
    pub file_max: Option<i64>,
    /// fs.nr_open: the highest RLIMIT_NOFILE a process may set (not per namespace).
    #[serde(rename = "fs.nr_open")]
    pub nr_open: Option<i64>,
    /// net.ipv4.tcp_mem: low, pressure and high thresholds of the memory charged to TCP, in
    /// pages, host-wide (compare /proc/net/sockstat `mem`). Only the initial network
    /// namespace has the file: absent inside others.
    #[serde(rename = "net.ipv4.tcp_mem", default)]
    pub tcp_mem: Option<[i64; 3]>,
}

impl TcpListener {
    /// Accept-queue fill as a fraction of the backlog (may exceed 1.0: the queue holds backlog+1).
    /// Absent when the backlog is 0.
    pub fn fill(&self) -> Option<f64> {
        (self.backlog > 0).then(|| f64::from(self.accept_queue) / f64::from(self.backlog))
    }

    /// True when the kernel considers the accept queue full (`sk_ack_backlog > sk_max_ack_backlog`).
    pub fn is_full(&self) -> bool {
        self.accept_queue > self.backlog
    }

    /// `address:port` as `ss` prints it: `[::1]:80` for IPv6, `*:80` for a dual-stack `::`.
    pub fn endpoint(&self) -> String {
        match self.endpoint_id() {
            (None, port) => format!("*:{port}"),
            (Some(IpAddr::V4(a)), port) => format!("{a}:{port}"),
            (Some(IpAddr::V6(a)), port) => format!("[{a}]:{port}"),
        }
    }

    /// What [`Self::endpoint`] is made of, without formatting it: equal exactly when the
    /// endpoints are (the members of an SO_REUSEPORT group share it). `None`: the wildcard of
    /// both families (`*`).
    pub fn endpoint_id(&self) -> (Option<IpAddr>, u16) {
        if self.address.is_unspecified() && self.v6only == Some(false) {
            return (None, self.port);
        }
        (Some(self.address), self.port)
    }
}

impl Tunables {
    /// Every tunable with its sysctl name, in display order.
    pub fn entries(&self) -> [(&'static str, Option<i64>); 9] {
        [
            ("net.core.somaxconn", self.somaxconn),
            ("net.ipv4.tcp_max_syn_backlog", self.tcp_max_syn_backlog),
            ("net.ipv4.tcp_syncookies", self.tcp_syncookies),
            ("net.ipv4.tcp_abort_on_overflow", self.tcp_abort_on_overflow),
            ("net.ipv4.tcp_synack_retries", self.tcp_synack_retries),
            ("net.ipv4.tcp_syn_retries", self.tcp_syn_retries),
            ("net.core.netdev_max_backlog", self.netdev_max_backlog),
            ("fs.file-max", self.file_max),
            ("fs.nr_open", self.nr_open),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{process, process_in_state};

    #[test]
    fn cannot_accept_when_stopped_or_a_lone_thread_blocked() {
        let p = |state: char, threads: u32| process_in_state(1, "srv", state, None, threads);
        assert!(p('T', 1).cannot_accept());
        assert!(p('T', 8).cannot_accept(), "SIGSTOP stops every thread");
        assert!(p('t', 1).cannot_accept());
        assert!(p('D', 1).cannot_accept());
        // Only the main thread's state is known: another thread may accept.
        assert!(!p('t', 4).cannot_accept());
        assert!(!p('D', 4).cannot_accept());
        for s in ['R', 'S', 'I', 'Z'] {
            assert!(!p(s, 1).cannot_accept(), "{s}");
        }
        assert!(!process(1, "srv", None, None).cannot_accept(), "unknown");
    }

    #[test]
    fn none_can_accept_needs_every_holder_stopped() {
        let known = |states: &[char]| Owners::Known {
            processes: states
                .iter()
                .enumerate()
                .map(|(i, &s)| process_in_state(i as u32 + 1, "srv", s, None, 1))
                .collect::<Vec<_>>()
                .into(),
        };
        assert!(known(&['T']).none_can_accept());
        assert!(known(&['T', 'D', 't']).none_can_accept());
        assert!(!known(&['T', 'S']).none_can_accept());
        assert!(!known(&[]).none_can_accept());
        let unknown = Owners::Unknown {
            reason: "not root".into(),
        };
        assert!(!unknown.none_can_accept());
    }

    #[test]
    fn busiest_first_by_cpu_then_state_then_pid() {
        let p =
            |pid: u32, state: char, cpu: Option<f64>| process_in_state(pid, "srv", state, cpu, 1);
        let mut owners = Owners::Known {
            processes: vec![
                p(10, 'S', Some(0.0)),
                p(11, 'T', Some(0.0)),
                p(12, 'S', Some(35.0)),
                p(13, 'R', Some(98.0)),
                p(14, 'R', Some(0.0)),
                p(15, 'D', None),
                p(16, 'S', None),
                p(9, 'S', Some(0.0)),
            ]
            .into(),
        };
        owners.sort_busiest_first();
        let order: Vec<u32> = owners.processes().iter().map(|p| p.pid).collect();
        assert_eq!(order, [13, 12, 14, 9, 10, 11, 15, 16]);
        // Without any CPU share (a first read): running and blocked before sleeping, stopped
        // and zombies last, unknown between.
        let mut owners = Owners::Known {
            processes: vec![
                p(1, 'Z', None),
                p(2, 'T', None),
                process(3, "srv", None, None),
                p(4, 'S', None),
                p(5, 'D', None),
                p(6, 'R', None),
                p(7, 'I', None),
            ]
            .into(),
        };
        owners.sort_busiest_first();
        let order: Vec<u32> = owners.processes().iter().map(|p| p.pid).collect();
        assert_eq!(order, [6, 5, 4, 7, 3, 2, 1]);
    }

    #[test]
    fn state_words() {
        let p = |s: char| process_in_state(1, "srv", s, None, 1);
        assert_eq!(p('T').state_word(), Some("stopped"));
        assert_eq!(p('D').state_word(), Some("in uninterruptible sleep"));
        assert_eq!(p('R').state_word(), Some("running"));
        assert_eq!(p('?').state_word(), Some("in an unknown state"));
        assert_eq!(process(1, "srv", None, None).state_word(), None);
    }

    #[test]
    fn process_json_without_the_new_keys_still_reads() {
        // A recording made before state, cpu_percent and threads existed.
        let old = r#"{"pid":7,"comm":"nginx","fds_open":12,"fd_limit":1024,"age_ms":0}"#;
        let p: ProcessInfo = serde_json::from_str(old).unwrap();
        assert_eq!((p.state, p.cpu_percent, p.threads), (None, None, None));
        let new = serde_json::to_value(process_in_state(7, "nginx", 'T', Some(1.5), 2)).unwrap();
        assert_eq!(new["state"], "T");
        assert_eq!(new["cpu_percent"], 1.5);
        assert_eq!(new["threads"], 2);
    }
}
