//! Builders of synthetic model values for tests, benchmarks and the perf harness: one place
//! that knows how a plausible listener looks, instead of a struct literal in every suite.
//! Not part of sockq's interface.

use std::net::{IpAddr, Ipv4Addr};

use super::{Family, Owners, ProcessInfo, TcpListener, Tunables};

/// Builds a [`TcpListener`]; starts as an idle `127.0.0.1:port` with backlog 128, a zero drop
/// counter and no owners, its identity derived from the port.
#[derive(Debug, Clone)]
pub struct ListenerBuilder(TcpListener);

/// A listener on 127.0.0.1:`port` (see [`ListenerBuilder`]).
pub fn tcp_listener(port: u16) -> ListenerBuilder {
    ListenerBuilder(TcpListener {
        family: Family::Ipv4,
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port,
        v6only: None,
        inode: 10_000 + u64::from(port),
        cookie: 0xC0FF_EE00 + u64::from(port),
        uid: 0,
        accept_queue: 0,
        backlog: 128,
        drops: Some(0),
        syn_recv: 0,
        syn_recv_group: 1,
        syn_recv_max_retrans: None,
        owners: Owners::Known {
            processes: vec![].into(),
        },
        service: None,
    })
}

impl ListenerBuilder {
    /// The local address (and the family that goes with it).
    pub fn addr(mut self, address: IpAddr) -> Self {
        self.0.family = Family::of(&address);
        self.0.address = address;
        self
    }

    /// IPV6_V6ONLY of an IPv6 listener.
    pub fn v6only(mut self, v6only: Option<bool>) -> Self {
        self.0.v6only = v6only;
        self
    }

    /// Socket inode and cookie.
    pub fn identity(mut self, inode: u64, cookie: u64) -> Self {
        self.0.inode = inode;
        self.0.cookie = cookie;
        self
    }

    /// Accept-queue depth and backlog.
    pub fn queue(mut self, depth: u32, backlog: u32) -> Self {
        self.0.accept_queue = depth;
        self.0.backlog = backlog;
        self
    }

    /// The listener's own drop counter (`None`: no SK_MEMINFO).
    pub fn drops(mut self, drops: Option<u64>) -> Self {
        self.0.drops = drops;
        self
    }

    /// SYN-RECV requests and their highest retransmission count.
    pub fn syn_recv(mut self, n: u64, max_retrans: Option<u8>) -> Self {
        self.0.syn_recv = n;
        self.0.syn_recv_max_retrans = max_retrans;
        self
    }

    /// The service side (children) of the listener.
    pub fn service(mut self, service: Option<super::ServiceStats>) -> Self {
        self.0.service = service;
        self
    }

    /// The processes holding it.
    pub fn owners(mut self, owners: Owners) -> Self {
        self.0.owners = owners;
        self
    }

    /// One holder process.
    pub fn owner(self, p: ProcessInfo) -> Self {
        self.owners(Owners::Known {
            processes: vec![p].into(),
        })
    }

    /// The listener.
    pub fn build(self) -> TcpListener {
        self.0
    }
}

/// A process with `fds_open` of `fd_limit` descriptors, read just now.
pub fn process(pid: u32, comm: &str, fds_open: Option<u64>, fd_limit: Option<u64>) -> ProcessInfo {
    ProcessInfo {
        pid,
        comm: comm.to_string(),
        fds_open,
        fd_limit,
        ..ProcessInfo::default()
    }
}

/// A process of `threads` threads in scheduler state `state` (`R`, `S`, `T`, …) using
/// `cpu_percent` of one core, with 10 of 1024 descriptors open, read just now.
pub fn process_in_state(
    pid: u32,
    comm: &str,
    state: char,
    cpu_percent: Option<f64>,
    threads: u32,
) -> ProcessInfo {
    ProcessInfo {
        state: Some(state),
        cpu_percent,
        threads: Some(threads),
        ..process(pid, comm, Some(10), Some(1024))
    }
}

/// The tunables of a fresh network namespace on a current kernel (Linux 6.x).
pub fn fresh_netns_tunables() -> Tunables {
    Tunables {
        somaxconn: Some(4096),
        tcp_max_syn_backlog: Some(2048),
        tcp_syncookies: Some(1),
        tcp_abort_on_overflow: Some(0),
        tcp_synack_retries: Some(5),
        tcp_syn_retries: Some(6),
        netdev_max_backlog: Some(1000),
        file_max: Some(9_223_372_036_854_775_807),
        nr_open: Some(1_048_576),
        tcp_mem: None,
    }
}

/// A snapshot of `tcp_listeners` at monotonic time `monotonic_ns`, in a fresh namespace with
/// no counters.
pub fn snapshot(tcp_listeners: Vec<TcpListener>, monotonic_ns: u64) -> super::Snapshot {
    super::Snapshot {
        schema_version: super::SCHEMA_VERSION,
        time: super::SampleTime {
            wall: "2025-01-01T00:00:00.000Z".into(),
            wall_unix_ms: 1_735_689_600_000 + monotonic_ns / 1_000_000,
            monotonic_ns,
        },
        host: super::HostInfo {
            hostname: "test".into(),
            kernel: "6.18.0".into(),
        },
        netns: super::NetnsInfo {
            label: "current".into(),
            inode: Some(4026531840),
        },
        tcp_listeners,
        syn_recv: super::SynRecvSummary::default(),
        unix_listeners: None,
        service: None,
        sockstat: None,
        counters: super::Counters::default(),
        tunables: fresh_netns_tunables(),
        blind_spots: vec![],
    }
}

/// The children of an idle listener of its own (not an SO_REUSEPORT group): nothing waiting,
/// in service or closing, no memory. Tests set what they need with struct update syntax.
pub fn idle_service() -> super::ServiceStats {
    super::ServiceStats {
        group: 1,
        mem_bytes: Some(0),
        ..super::ServiceStats::default()
    }
}

/// A service dump made at `monotonic_ns`, fresh (age 0), with tcp_info.
pub fn service_summary(monotonic_ns: u64) -> super::ServiceSummary {
    super::ServiceSummary {
        age_ms: 0,
        dumped_monotonic_ns: monotonic_ns,
        sockets: 0,
        unmatched: 0,
        tcp_info: true,
        port_ranges: 1,
    }
}
