//! The per-listener families: queue, owners, and after accept() (the service dump).

use std::collections::HashMap;

use super::{listener_labels, Family, Kind, Value};
use crate::model::labels::tightest_owner;
use crate::model::{ListenerKey, ListenerTick, TcpListener, Tick};

/// The families of the `chosen` listeners (indexes into the snapshot's listeners).
pub(super) fn families(tick: &Tick, chosen: &[usize]) -> Vec<Family> {
    let snap = &tick.snapshot;
    let ns = snap.netns.label.as_str();
    let mut out = Vec::new();
    let labels = listener_labels(ns, &snap.tcp_listeners);
    let by_key: HashMap<ListenerKey, &ListenerTick> =
        tick.listeners.iter().map(|t| (t.key, t)).collect();
    let mut depth = Family::new(
        "sockq_listener_accept_queue_depth",
        "Connections fully established and waiting for accept() (sk_ack_backlog, ss -ltn Recv-Q). \
         The queue is full when depth > backlog: it holds backlog+1.",
        Kind::Gauge,
    );
    let mut peak = Family::new(
        "sockq_listener_accept_queue_depth_peak",
        "Highest accept-queue depth seen since the previous sample (fast sampler, default 10 Hz): \
         bursts between samples; may be backlog+1, and is backlog+1 when the drop counters prove \
         an overflow no poll saw.",
        Kind::Gauge,
    );
    let mut overflowed = Family::new(
        "sockq_listener_accept_queue_overflowed",
        "1 when the accept queue overflowed during the latest sample interval: a poll saw it full \
         (depth > backlog), or the listener's own drop counter rose while ListenOverflows did \
         (proven between polls).",
        Kind::Gauge,
    );
    let mut backlog = Family::new(
        "sockq_listener_backlog",
        "Backlog in force: min(listen() backlog, net.core.somaxconn at listen() time) \
         (sk_max_ack_backlog, ss -ltn Send-Q).",
        Kind::Gauge,
    );
    let mut syn_recv = Family::new(
        "sockq_listener_syn_recv_requests",
        "Half-open (SYN-RECV) connection requests on this listener's address and port; with \
         SO_REUSEPORT the count belongs to the whole port group. Undercounts while SYN cookies \
         are sent (no request is kept).",
        Kind::Gauge,
    );
    let mut drops = Family::new(
        "sockq_listener_drops_total",
        "Connections the kernel dropped on this listener (its own sk_drops, ss -ltm d<N>): \
         bumped by every listen drop, e.g. a SYN or final ACK at a full accept queue.",
        Kind::Counter,
    );
    let mut fds = Family::new(
        "sockq_listener_owner_open_fds",
        "Open file descriptors of the listener's owning process closest to its fd limit \
         (/proc/PID/fd). At the fd limit accept() fails with EMFILE and the accept queue fills \
         although the CPU is idle.",
        Kind::Gauge,
    );
    let mut max_fds = Family::new(
        "sockq_listener_owner_max_fds",
        "RLIMIT_NOFILE soft limit of the listener's owning process closest to its fd limit \
         (prlimit(2) or /proc/PID/limits Max open files); absent when unlimited or unreadable.",
        Kind::Gauge,
    );
    let mut fds_age = Family::new(
        "sockq_listener_owner_fds_age_seconds",
        "Age of sockq_listener_owner_open_fds and _max_fds: 0 when read for the latest sample; \
         with more than 256 owning processes, one below half its limit is re-read in turn (at \
         least every 10th sample).",
        Kind::Gauge,
    );
    let mut service = ServiceFamilies::new();
    let mut cpu = Family::new(
        "sockq_listener_owner_cpu_ratio",
        "CPU time of the listener's busiest owning process (all its threads: utime + stime of \
         /proc/PID/stat) over the interval since sockq read it before, as a fraction of one \
         core; above 1 with several busy threads. Absent on the first read of a process.",
        Kind::Gauge,
    );
    let mut stopped = Family::new(
        "sockq_listener_owner_stopped",
        "1 when no process holding the listener can call accept(): each is stopped (state T in \
         /proc/PID/stat), or has one thread stopped by a tracer (t) or in uninterruptible sleep \
         (D); 0 when one can; absent when no holder's state is known.",
        Kind::Gauge,
    );
    for &i in chosen {
        let l = &snap.tcp_listeners[i];
        let lab = &labels[i];
        let t = by_key.get(&ListenerKey::from(l)).copied();
        service.push(l, t, lab);
        depth.push(lab.clone(), Value::Int(l.accept_queue.into()));
        let high = t.map_or(l.accept_queue, |t| t.depth_high.max(l.accept_queue));
        peak.push(lab.clone(), Value::Int(high.into()));
        let over = t.is_some_and(|t| t.overflowed) || l.accept_queue > l.backlog;
        overflowed.push(lab.clone(), Value::Int(u64::from(over)));
        backlog.push(lab.clone(), Value::Int(l.backlog.into()));
        syn_recv.push(lab.clone(), Value::Int(l.syn_recv));
        if let Some(d) = l.drops {
            drops.push(lab.clone(), Value::Int(d));
        }
        if let Some(p) = tightest_owner(&l.owners) {
            if let Some(n) = p.fds_open {
                fds.push(lab.clone(), Value::Int(n));
            }
            if let Some(n) = p.fd_limit {
                max_fds.push(lab.clone(), Value::Int(n));
            }
            fds_age.push(lab.clone(), Value::Float(p.age_ms as f64 / 1000.0));
        }
        let procs = l.owners.processes();
        if let Some(c) = procs
            .iter()
            .filter_map(|p| p.cpu_percent)
            .max_by(f64::total_cmp)
        {
            cpu.push(lab.clone(), Value::Float(c / 100.0));
        }
        if procs.iter().any(|p| p.state.is_some()) {
            let none = l.owners.none_can_accept();
            stopped.push(lab.clone(), Value::Int(u64::from(none)));
        }
    }
    out.extend([
        depth, peak, overflowed, backlog, syn_recv, drops, fds, max_fds, fds_age, cpu, stopped,
    ]);
    out.extend(service.into_families());

    out
}

/// After accept(): the per-listener families of the service dump (an SO_REUSEPORT group's
/// numbers are the group's, shown by every member, as for SYN-RECV).
struct ServiceFamilies {
    waiting: Family,
    waiting_oldest: Family,
    in_service: Family,
    unread_conns: Family,
    unread_bytes: Family,
    unread_oldest: Family,
    unsent_conns: Family,
    unsent_bytes: Family,
    unsent_oldest: Family,
    memory: Family,
    closing: Family,
    seen: Family,
    lifetime: Family,
}

const GROUP_NOTE: &str = "With SO_REUSEPORT the number is the group's, shown by every member.";

impl ServiceFamilies {
    fn new() -> Self {
        let g = |name: &str, help: &str, kind: Kind| {
            Family::new(name, format!("{help} {GROUP_NOTE}"), kind)
        };
        Self {
            waiting: g(
                "sockq_listener_connections_waiting",
                "Connections waiting for accept(): ESTABLISHED children with inode 0 (no file yet).",
                Kind::Gauge,
            ),
            waiting_oldest: g(
                "sockq_listener_connections_waiting_oldest_seconds",
                "How long the oldest connection waiting for accept() has waited (first seen by cookie, or longer when tcp_info last_ack_recv/last_data_recv proves it); absent with none waiting.",
                Kind::Gauge,
            ),
            in_service: g(
                "sockq_listener_connections_in_service",
                "Connections accepted and open: ESTABLISHED children with an inode.",
                Kind::Gauge,
            ),
            unread_conns: g(
                "sockq_listener_connections_unread",
                "Accepted connections with unread bytes (idiag_rqueue = rcv_nxt - copied_seq > 0, the peer's FIN not counted).",
                Kind::Gauge,
            ),
            unread_bytes: g(
                "sockq_listener_unread_bytes",
                "Bytes received on accepted connections that the process has not read (ss -tn Recv-Q, less the peer's FIN in CLOSE-WAIT).",
                Kind::Gauge,
            ),
            unread_oldest: g(
                "sockq_listener_unread_oldest_seconds",
                "How long the oldest unread bytes have waited (at least tcp_info last_data_recv, and at least since copied_seq last moved); absent with none.",
                Kind::Gauge,
            ),
            unsent_conns: g(
                "sockq_listener_connections_unsent",
                "Connections with bytes not yet acknowledged by the peer (idiag_wqueue = write_seq - snd_una > 0, the own FIN not counted).",
                Kind::Gauge,
            ),
            unsent_bytes: g(
                "sockq_listener_unsent_bytes",
                "Bytes written by the process and not yet acknowledged by the peer (ss -tn Send-Q).",
                Kind::Gauge,
            ),
            unsent_oldest: g(
                "sockq_listener_unsent_oldest_seconds",
                "How long the oldest Send-Q has stayed non-empty without shrinking, as sockq saw it between dumps; absent with none.",
                Kind::Gauge,
            ),
            memory: g(
                "sockq_listener_connections_memory_bytes",
                "Memory of the listener's connections (SK_MEMINFO rmem_alloc + wmem_queued + fwd_alloc): what they are charged against net.ipv4.tcp_mem.",
                Kind::Gauge,
            ),
            closing: g(
                "sockq_listener_connections_closing",
                "The listener's connections in a closing state, by state: close_wait (peer closed, the process has not), fin_wait1, fin_wait2, time_wait.",
                Kind::Gauge,
            ),
            seen: g(
                "sockq_listener_connections_seen_total",
                "Connections first seen (by socket cookie) since sockq started: the arrivals of Little's law; connections shorter than the dump spacing are missed (compare Tcp PassiveOpens).",
                Kind::Counter,
            ),
            lifetime: g(
                "sockq_listener_connection_lifetime_seconds",
                "Mean connection lifetime by Little's law, W = in service / new connections per second, between the last two service dumps: the response time only without keep-alive.",
                Kind::Gauge,
            ),
        }
    }

    fn push(&mut self, l: &TcpListener, t: Option<&ListenerTick>, lab: &[(&'static str, String)]) {
        let Some(s) = l.service.as_ref() else {
            return;
        };
        let lab = || lab.to_vec();
        let secs = |ms: Option<u64>| ms.map(|ms| Value::Float(ms as f64 / 1000.0));
        self.waiting.push(lab(), Value::Int(s.waiting));
        if let Some(v) = secs(s.waiting_oldest_ms) {
            self.waiting_oldest.push(lab(), v);
        }
        self.in_service.push(lab(), Value::Int(s.in_service));
        self.unread_conns.push(lab(), Value::Int(s.unread_conns));
        self.unread_bytes.push(lab(), Value::Int(s.unread_bytes));
        if let Some(v) = secs(s.unread_oldest_ms) {
            self.unread_oldest.push(lab(), v);
        }
        self.unsent_conns.push(lab(), Value::Int(s.unsent_conns));
        self.unsent_bytes.push(lab(), Value::Int(s.unsent_bytes));
        if let Some(v) = secs(s.unsent_oldest_ms) {
            self.unsent_oldest.push(lab(), v);
        }
        if let Some(m) = s.mem_bytes {
            self.memory.push(lab(), Value::Int(m));
        }
        for (state, n) in [
            ("close_wait", s.close_wait),
            ("fin_wait1", s.fin_wait1),
            ("fin_wait2", s.fin_wait2),
            ("time_wait", s.time_wait),
        ] {
            let mut l = lab();
            l.push(("state", state.to_string()));
            self.closing.push(l, Value::Int(n));
        }
        self.seen.push(lab(), Value::Int(s.connections_seen_total));
        if let Some(w) = t
            .and_then(|t| t.service.as_ref())
            .and_then(|st| st.mean_conn_lifetime_s)
        {
            self.lifetime.push(lab(), Value::Float(w));
        }
    }

    fn into_families(self) -> [Family; 13] {
        [
            self.waiting,
            self.waiting_oldest,
            self.in_service,
            self.unread_conns,
            self.unread_bytes,
            self.unread_oldest,
            self.unsent_conns,
            self.unsent_bytes,
            self.unsent_oldest,
            self.memory,
            self.closing,
            self.seen,
            self.lifetime,
        ]
    }
}
