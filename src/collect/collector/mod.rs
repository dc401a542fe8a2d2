//! The collector: one namespace's kernel state into Snapshots.

mod children;
mod system;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::diag::{self, SynRecvTally};
use super::error::{netlink, CollectError};
use super::netlink::DiagSocket;
use super::owners::{self, OwnerResolver};
use super::{netns, procnet, tunables};
use crate::model::{
    Family, HostInfo, NetnsInfo, Snapshot, SynRecvSummary, TcpListener, TcpSockstat, UnixListener,
    SCHEMA_VERSION,
};
use children::ServiceState;
use system::{host_info, page_size, sample_time};
pub use system::{monotonic_ns, thread_cpu};

/// Shortest wait between two /proc scans for new sockets, however cheap the scan.
pub const OWNER_RESCAN_FLOOR: Duration = Duration::from_millis(250);

/// How long a one-shot sample waits before reading the owning processes again, for their CPU
/// share over that time ([`Collector::reread_owners`]). At 100 clock ticks per second the
/// share comes in steps of 4 % of a core.
pub const SNAPSHOT_CPU_WINDOW: Duration = Duration::from_millis(250);

/// What a collector reads besides TCP listeners.
#[derive(Debug, Clone)]
pub struct CollectorOptions {
    /// Dump UNIX stream listeners too.
    pub unix: bool,
    /// Attribute sockets to processes (reads /proc/PID/fd).
    pub owners: bool,
    /// Longest wait between a scan of /proc and one for a socket whose owner is not known yet;
    /// cheaper scans may come sooner (50 × their duration, at least [`OWNER_RESCAN_FLOOR`]).
    pub owner_rescan: Duration,
    /// Where procfs is mounted (for tests).
    pub proc_root: PathBuf,
    /// Process namespaces shared by the collectors of a fleet (`None`: this one's own reads).
    pub netns_cache: Option<std::sync::Arc<owners::NetnsCache>>,
}

impl Default for CollectorOptions {
    fn default() -> Self {
        Self {
            unix: true,
            owners: true,
            owner_rescan: Duration::from_secs(2),
            proc_root: PathBuf::from("/proc"),
            netns_cache: None,
        }
    }
}

impl CollectorOptions {
    /// The options of the collectors of many namespaces of one host (`--all-netns`): their
    /// owner scans share what they read of each process's namespace ([`owners::NetnsCache`]),
    /// instead of each reading every process's /proc/PID/ns/net.
    #[must_use]
    pub fn across_namespaces(mut self) -> Self {
        self.netns_cache = Some(std::sync::Arc::new(owners::NetnsCache::default()));
        self
    }
}

/// Reads one network namespace into [`Snapshot`]s.
pub struct Collector {
    pub(super) diag: DiagSocket,
    /// Interface index of each listener bound to a device (by cookie), from the last listener
    /// dump: an exact request must name it.
    pub(super) bound_if: HashMap<u64, u32>,
    owners: Option<OwnerResolver>,
    netns: NetnsInfo,
    host: HostInfo,
    opts: CollectorOptions,
    /// The last SYN-RECV tally, when it was taken, and the thread CPU time it cost.
    last_syn: Option<(SynRecvTally, Instant, bool)>,
    /// Tcp InSegs read before the last SYN-RECV dump, when that dump found no request and was
    /// not interrupted: while InSegs stays there no SYN arrived, so there is still none.
    syn_idle_in_segs: Option<i64>,
    syn_cost: Duration,
    /// Thread CPU time of the last full sample's listener dump.
    listeners_cost: Duration,
    /// Listeners in the last dump: the next one's vector is sized for them (a doubling vector
    /// of 10,000 listeners holds room for 16,384, 1.7 MB more per snapshot).
    listeners_last: usize,
    service: ServiceState,
}

/// TCP listeners of both families from one LISTEN-only dump each.
#[derive(Debug, Clone, Default)]
pub struct ListenerSample {
    /// The listeners, IPv4 first, in kernel order.
    pub listeners: Vec<TcpListener>,
    /// A dump was interrupted by concurrent changes: a listener may be missing or doubled.
    pub interrupted: bool,
}

impl Collector {
    /// Creates a collector for the calling thread's network namespace; `label` says how it was
    /// chosen (see [`netns::NetnsTarget::label`]).
    pub fn new(label: String, opts: CollectorOptions) -> Result<Self, CollectError> {
        let diag = DiagSocket::new().map_err(netlink("opening a NETLINK_SOCK_DIAG socket"))?;
        let inode = netns::current_netns_inode();
        let owners = opts.owners.then(|| {
            let resolver = OwnerResolver::new(opts.proc_root.clone(), inode, opts.owner_rescan)
                .with_adaptive_rescan(OWNER_RESCAN_FLOOR);
            match &opts.netns_cache {
                Some(cache) => resolver.with_netns_cache(cache.clone()),
                None => resolver,
            }
        });
        Ok(Self {
            diag,
            bound_if: HashMap::new(),
            owners,
            netns: NetnsInfo { label, inode },
            host: host_info(),
            opts,
            last_syn: None,
            syn_idle_in_segs: None,
            syn_cost: Duration::ZERO,
            listeners_cost: Duration::ZERO,
            listeners_last: 0,
            service: ServiceState::default(),
        })
    }

    /// Interface index by cookie of the listeners bound to a device, from the last listener
    /// dump (what an exact request for one of them must name).
    pub fn bound_interfaces(&self) -> &HashMap<u64, u32> {
        &self.bound_if
    }

    /// The namespace this collector reads.
    pub fn netns(&self) -> &NetnsInfo {
        &self.netns
    }

    /// The cheap part of a sample: TCP listeners with depth, backlog and drops (no SYN-RECV, no
    /// owners). This is what the fast sampler polls.
    pub fn listeners(&mut self) -> Result<ListenerSample, CollectError> {
        let mut out = ListenerSample {
            listeners: Vec::with_capacity(self.listeners_last + self.listeners_last / 64),
            interrupted: false,
        };
        self.bound_if.clear();
        for family in [Family::Ipv4, Family::Ipv6] {
            let listeners = &mut out.listeners;
            let bound_if = &mut self.bound_if;
            let interrupted = self
                .diag
                .dump(diag::listen_request(family), |payload| {
                    if let Some(l) = diag::decode_listener(payload)? {
                        let ifindex = diag::reply_ifindex(payload);
                        if ifindex != 0 {
                            bound_if.insert(l.cookie, ifindex);
                        }
                        listeners.push(l);
                    }
                    Ok(())
                })
                .map_err(netlink(format!("dumping {family:?} TCP listeners")))?;
            out.interrupted |= interrupted;
        }
        self.listeners_last = out.listeners.len();
        Ok(out)
    }

    /// Accept-queue depths only (no SK_MEMINFO, no owners): what the fast poll needs.
    pub fn listener_depths(
        &mut self,
        out: &mut Vec<(crate::model::ListenerKey, u32)>,
    ) -> Result<(), CollectError> {
        out.clear();
        for family in [Family::Ipv4, Family::Ipv6] {
            self.diag
                .dump(diag::listen_depth_request(family), |payload| {
                    if let Some(d) = diag::decode_listener_depth(payload)? {
                        out.push(d);
                    }
                    Ok(())
                })
                .map_err(netlink(format!("dumping {family:?} TCP listener depths")))?;
        }
        Ok(())
    }

    /// Counts SYN-RECV requests by local address and port (both families).
    pub fn syn_recv(&mut self) -> Result<(SynRecvTally, bool), CollectError> {
        self.syn_recv_for(&[Family::Ipv4, Family::Ipv6])
    }

    /// Counts SYN-RECV requests of the given families. A request only exists for a listener,
    /// so a family without listeners need not be dumped (the dump walks the whole
    /// established hash, the expensive part of a sample).
    pub fn syn_recv_for(
        &mut self,
        families: &[Family],
    ) -> Result<(SynRecvTally, bool), CollectError> {
        let mut runs = diag::SynRecvRuns::default();
        let mut interrupted = false;
        for &family in families {
            interrupted |= self
                .diag
                .dump(diag::syn_recv_request(family), |payload| {
                    if let Some(e) = diag::decode_syn_recv(payload)? {
                        runs.add(e);
                    }
                    Ok(())
                })
                .map_err(netlink(format!("dumping {family:?} SYN-RECV requests")))?;
        }
        Ok((runs.finish(), interrupted))
    }

    /// UNIX stream listeners.
    pub fn unix_listeners(&mut self) -> Result<(Vec<UnixListener>, bool), CollectError> {
        let mut out = Vec::new();
        let interrupted = self
            .diag
            .dump(diag::unix_listen_request(), |payload| {
                if let Some(l) = diag::decode_unix_listener(payload)? {
                    out.push(l);
                }
                Ok(())
            })
            .map_err(netlink("dumping UNIX listeners"))?;
        Ok((out, interrupted))
    }

    /// A full sample: listeners, SYN-RECV, UNIX listeners, counters, tunables, owners.
    ///
    /// Only the TCP listener dump is essential; any other part that fails is reported in
    /// `blind_spots` and the sample still succeeds.
    pub fn sample(&mut self) -> Result<Snapshot, CollectError> {
        self.sample_reusing_syn_recv(Duration::ZERO)
    }

    /// Reads the /proc/PID/stat of the holders of `snap`'s listeners again: their state and,
    /// now that each was read before, their CPU share since that read
    /// ([`OwnerResolver::reread_activity`]). What a one-shot command does to show CPU shares
    /// (`sockq snapshot` waits [`SNAPSHOT_CPU_WINDOW`], or `--cpu-window`, in between); the
    /// listeners, the holders' fd numbers and everything else stay as sampled. No-op with
    /// owners off.
    pub fn reread_owners(&mut self, snap: &mut Snapshot) {
        if let Some(resolver) = self.owners.as_mut() {
            let unix = snap.unix_listeners.iter_mut().flatten();
            let mut lists: Vec<&mut crate::model::Owners> = snap
                .tcp_listeners
                .iter_mut()
                .map(|l| &mut l.owners)
                .chain(unix.map(|l| &mut l.owners))
                .collect();
            resolver.reread_activity(&mut lists, Instant::now());
        }
    }

    /// Thread CPU time the last SYN-RECV dump cost (it walks the kernel's established hash
    /// and grows with the number of requests: the expensive part of a sample during a flood).
    pub fn syn_recv_cost(&self) -> Duration {
        self.syn_cost
    }

    /// Thread CPU time the last full sample's listener dump cost (every listener, with drop
    /// counters): what dumping every listener at the fast rate would cost, at least.
    pub fn listeners_cost(&self) -> Duration {
        self.listeners_cost
    }

    /// Thread CPU time the last service dump cost (it walks the kernel's established hash and
    /// grows with the connections on the listeners' ports).
    pub fn service_cost(&self) -> Duration {
        self.service.cost
    }

    /// Children remembered by cookie between service dumps (for the perf harness).
    pub fn service_children_remembered(&self) -> usize {
        self.service.tracker.remembered()
    }

    /// A full sample, reusing the last SYN-RECV and service dumps while they are younger than
    /// `max_age` (their ages are reported in `syn_recv.age_ms` and `service.age_ms`).
    pub fn sample_reusing_syn_recv(&mut self, max_age: Duration) -> Result<Snapshot, CollectError> {
        let time = sample_time();
        let mut blind = Vec::new();
        let cpu0 = thread_cpu();
        let ListenerSample {
            mut listeners,
            interrupted,
        } = self.listeners()?;
        self.listeners_cost = thread_cpu().saturating_sub(cpu0);
        if interrupted {
            blind.push("the listener dump was interrupted by concurrent changes; a listener may be missing or doubled in this sample".into());
        }
        let missing_drops = listeners.iter().filter(|l| l.drops.is_none()).count();
        if missing_drops > 0 {
            blind.push(format!(
                "the kernel sent no SK_MEMINFO for {missing_drops} listener(s): their drop counters are unknown"
            ));
        }
        // The counters right after the listener dump: an overflow between the two reads is in
        // this tick's ListenOverflows but the next tick's listener drops (the engine carries
        // such an overflow over); the shorter the gap, the rarer that is.
        let counters = self.read_counters(&mut blind);
        let sockstat = self.read_sockstat(&mut blind);
        let in_segs = counters.tcp.get("InSegs").copied();
        let syn_recv = self.attach_syn_recv(&mut listeners, max_age, in_segs, &mut blind);
        let service = self.attach_service(&mut listeners, max_age, &mut blind);
        let mut unix_listeners = self.unix_if_asked(&mut blind);
        let (tunables, problems) = tunables::read_tunables(&self.opts.proc_root.join("sys"));
        blind.extend(problems);
        self.attach_owners(&mut listeners, unix_listeners.as_deref_mut());

        Ok(Snapshot {
            schema_version: SCHEMA_VERSION,
            time,
            host: self.host.clone(),
            netns: self.netns.clone(),
            tcp_listeners: listeners,
            syn_recv,
            unix_listeners,
            service,
            sockstat,
            counters,
            tunables,
            blind_spots: blind,
        })
    }

    /// Dumps SYN-RECV (or reuses the last dump while younger than `max_age`) and gives each
    /// listener its count; says in `blind` what is stale or unknown. `in_segs`: the
    /// namespace's Tcp InSegs read for this sample — while it has not moved since a dump that
    /// found no request, there is still none and the dump (a walk of the whole established
    /// hash) is not made.
    fn attach_syn_recv(
        &mut self,
        listeners: &mut [TcpListener],
        max_age: Duration,
        in_segs: Option<i64>,
        blind: &mut Vec<String>,
    ) -> SynRecvSummary {
        let mut syn_recv = SynRecvSummary::default();
        if in_segs.is_some() && in_segs == self.syn_idle_in_segs {
            if let Some((tally, at, _)) = self.last_syn.as_mut() {
                // Still current (none): nothing arrived. Dated now, so that it is not reused
                // later as if it were a spaced-out dump.
                *at = Instant::now();
                self.syn_cost = Duration::ZERO;
                syn_recv.unmatched = diag::attribute_syn_recv(listeners, tally);
                return syn_recv;
            }
        }
        let reuse = self
            .last_syn
            .as_ref()
            .is_some_and(|(_, at, _)| at.elapsed() < max_age);
        if !reuse {
            let cpu0 = thread_cpu();
            let mut families: Vec<Family> = listeners.iter().map(|l| l.family).collect();
            families.sort_unstable();
            families.dedup();
            match self.syn_recv_for(&families) {
                Ok((tally, interrupted)) => {
                    let none = tally.total == 0 && !interrupted;
                    self.syn_idle_in_segs = in_segs.filter(|_| none);
                    self.last_syn = Some((tally, Instant::now(), interrupted))
                }
                Err(e) => {
                    self.last_syn = None;
                    self.syn_idle_in_segs = None;
                    blind.push(format!("SYN-RECV requests unknown: {e}"));
                }
            }
            self.syn_cost = thread_cpu().saturating_sub(cpu0);
        }
        let Some((tally, at, interrupted)) = &self.last_syn else {
            return syn_recv;
        };
        syn_recv.total = tally.total;
        syn_recv.unmatched = diag::attribute_syn_recv(listeners, tally);
        // 0 when dumped for this sample (matching it to listeners is not "age").
        syn_recv.age_ms = if reuse {
            u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX)
        } else {
            0
        };
        if reuse {
            blind.push(format!(
                "SYN-RECV numbers are {:.1} s old: the dump was spaced out to keep the CPU budget",
                at.elapsed().as_secs_f64()
            ));
        }
        if *interrupted {
            blind.push("the SYN-RECV dump was interrupted by concurrent changes; counts may be off by a few".into());
        }
        syn_recv
    }

    /// The `TCP:` line of /proc/thread-self/net/sockstat (sockets and memory).
    fn read_sockstat(&self, blind: &mut Vec<String>) -> Option<TcpSockstat> {
        let path = self.opts.proc_root.join("thread-self/net/sockstat");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                blind.push(format!("cannot read {}: {e}", path.display()));
                return None;
            }
        };
        let parsed = procnet::parse_sockstat(&text, page_size());
        if parsed.is_none() {
            blind.push(format!("{} has no TCP line", path.display()));
        }
        parsed
    }

    /// UNIX listeners, when asked for; `None` when not asked for or unreadable (said in
    /// `blind`).
    fn unix_if_asked(&mut self, blind: &mut Vec<String>) -> Option<Vec<UnixListener>> {
        if !self.opts.unix {
            return None;
        }
        match self.unix_listeners() {
            Ok((u, interrupted)) => {
                if interrupted {
                    blind.push(
                        "the UNIX listener dump was interrupted by concurrent changes".into(),
                    );
                }
                Some(u)
            }
            Err(e) => {
                blind.push(format!("UNIX listeners unknown: {e}"));
                None
            }
        }
    }

    /// Names the processes holding each listener (or says attribution is off).
    fn attach_owners(&mut self, listeners: &mut [TcpListener], unix: Option<&mut [UnixListener]>) {
        let Some(resolver) = self.owners.as_mut() else {
            let off = || crate::model::Owners::Unknown {
                reason: "process attribution is turned off (--no-owners)".into(),
            };
            listeners.iter_mut().for_each(|l| l.owners = off());
            if let Some(u) = unix {
                u.iter_mut().for_each(|l| l.owners = off());
            }
            return;
        };
        let mut sockets: Vec<(u64, u32)> = listeners.iter().map(|l| (l.inode, l.uid)).collect();
        if let Some(u) = &unix {
            sockets.extend(u.iter().map(|l| (l.inode, owners::UID_UNKNOWN)));
        }
        let mut found = resolver.resolve_each(&sockets, Instant::now()).into_iter();
        for (l, o) in listeners.iter_mut().zip(found.by_ref()) {
            l.owners = o;
        }
        for (l, o) in unix.into_iter().flatten().zip(found) {
            l.owners = o;
        }
    }

    fn read_counters(&self, blind: &mut Vec<String>) -> crate::model::Counters {
        // /proc/thread-self, not /proc/self: after setns on this thread, /proc/self/net would
        // still show the main thread's namespace.
        let net = self.opts.proc_root.join("thread-self/net");
        let read =
            |name: &str, blind: &mut Vec<String>| match std::fs::read_to_string(net.join(name)) {
                Ok(s) => s,
                Err(e) => {
                    blind.push(format!("cannot read {}: {e}", net.join(name).display()));
                    String::new()
                }
            };
        let netstat = read("netstat", blind);
        let snmp = read("snmp", blind);
        let (counters, problems) = procnet::parse_counters(&netstat, &snmp);
        blind.extend(problems);
        counters
    }
}
