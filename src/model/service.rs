//! After accept(): the service side of a listener — its children (the connections it created)
//! waiting in the accept queue, being served, closing — and the namespace's TCP memory.
//!
//! Plain data. The collector fills [`ServiceStats`] from one sock_diag dump per family of the
//! non-LISTEN states (see docs/metrics.md, "After accept()"); the engine derives
//! [`ServiceTick`] (rates, Little's law) from successive dumps.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The children of one listener (for an SO_REUSEPORT group: of the whole group, see `group`)
/// as one sock_diag dump saw them. Children are the non-LISTEN TCP sockets whose local address
/// and port match the listener, by the rules SYN-RECV requests are matched with (exact
/// address, then wildcard, then dual stack).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceStats {
    /// Number of listening sockets these numbers are shared by: 1 when they are this socket's
    /// own; more with SO_REUSEPORT (a child does not say which member of the group created it).
    pub group: u32,
    /// Waiting for accept(): ESTABLISHED children with inode 0 (no file yet, so still in the
    /// accept queue).
    pub waiting: u64,
    /// Age of the oldest waiting child in milliseconds: since sockq first saw it (by socket
    /// cookie), or longer when tcp_info proves it (`tcpi_last_ack_recv`/`tcpi_last_data_recv`:
    /// both count from the child's creation until something arrives). Absent with none waiting.
    pub waiting_oldest_ms: Option<u64>,
    /// In service: ESTABLISHED children with an inode (accepted by the process).
    pub in_service: u64,
    /// Accepted children (ESTABLISHED or CLOSE-WAIT, with an inode) with unread bytes
    /// (`idiag_rqueue` > 0).
    pub unread_conns: u64,
    /// Unread bytes of those children: the sum of `idiag_rqueue` = rcv_nxt − copied_seq
    /// (`ss -tn` Recv-Q), less 1 in CLOSE-WAIT: the peer's FIN takes a sequence number that
    /// counts until the process reads the end of the stream.
    pub unread_bytes: u64,
    /// How long the oldest unread bytes have waited, in milliseconds: at least the time since
    /// the last data arrived (`tcpi_last_data_recv`) and at least the time sockq has seen the
    /// bytes sit there without the process reading any (copied_seq not moving). Absent with no
    /// unread bytes.
    pub unread_oldest_ms: Option<u64>,
    /// Children with bytes not yet acknowledged by the peer (`idiag_wqueue` > 0; any state
    /// but TIME-WAIT, orphans closed by the process included).
    pub unsent_conns: u64,
    /// Their bytes: the sum of `idiag_wqueue` = write_seq − snd_una (`ss -tn` Send-Q), less 1
    /// in FIN-WAIT-1: the process's own FIN, not yet acknowledged.
    pub unsent_bytes: u64,
    /// How long the oldest Send-Q has stayed non-empty without shrinking, as sockq saw it
    /// between dumps, in milliseconds (0 on first sight). Absent with no unsent bytes.
    pub unsent_oldest_ms: Option<u64>,
    /// Memory of the children in bytes (INET_DIAG_SKMEMINFO: receive queue `sk_rmem_alloc` +
    /// send queue `sk_wmem_queued` + forward allocation `sk_forward_alloc`: what they are
    /// charged against net.ipv4.tcp_mem). Absent when the kernel sent no SK_MEMINFO.
    pub mem_bytes: Option<u64>,
    /// CLOSE-WAIT children: the peer closed and the process has not (a leak when it grows).
    /// Those never accepted (inode 0) are still in the accept queue: counted here too (as `ss`
    /// does) and in `close_wait_unaccepted`.
    pub close_wait: u64,
    /// CLOSE-WAIT children still in the accept queue (inode 0): their clients gave up waiting
    /// for accept(); the process holds no descriptor for them, so they are no leak.
    #[serde(default)]
    pub close_wait_unaccepted: u64,
    /// FIN-WAIT-1 children: the process closed, its FIN not yet acknowledged.
    pub fin_wait1: u64,
    /// FIN-WAIT-2 children: the process closed, waiting for the peer's FIN.
    pub fin_wait2: u64,
    /// TIME-WAIT children (`inet_timewait_sock`: no inode, no memory, gone after 60 s).
    pub time_wait: u64,
    /// Children first seen (by socket cookie) since sockq started watching, cumulative: the
    /// arrivals Little's law needs. Children created and gone between two dumps are not seen
    /// (compare Tcp PassiveOpens, namespace-wide); those sockq found at its first dump are not
    /// counted.
    pub connections_seen_total: u64,
}

/// What a client of a listener is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    /// accept(): its connection is at the head of the accept queue.
    Accept,
    /// A read: its request sits unread in an accepted connection.
    Read,
}

impl WaitFor {
    /// `accept` or `unread`, as the views label it.
    pub fn label(self) -> &'static str {
        match self {
            WaitFor::Accept => "accept",
            WaitFor::Read => "unread",
        }
    }
}

impl ServiceStats {
    /// Children closing: CLOSE-WAIT, FIN-WAIT-1/2 and TIME-WAIT.
    pub fn closing(&self) -> u64 {
        self.close_wait + self.fin_wait1 + self.fin_wait2 + self.time_wait
    }

    /// Memory of the children in bytes: `mem_bytes`, or 0 when there is no child that could
    /// hold any (TIME-WAIT sockets hold none); `None` when unknown.
    pub fn memory(&self) -> Option<u64> {
        let holders =
            self.waiting + self.in_service + self.close_wait + self.fin_wait1 + self.fin_wait2;
        self.mem_bytes.or((holders == 0).then_some(0))
    }

    /// The longest a client waits now, in milliseconds, and for what: for accept() (the
    /// oldest waiting child) or for the process to read its request (the oldest unread
    /// bytes), whichever is longer (accept() on a tie). `None` when nothing waits.
    pub fn oldest_wait(&self) -> Option<(WaitFor, u64)> {
        let accept = self
            .waiting_oldest_ms
            .filter(|_| self.waiting > 0)
            .map(|ms| (WaitFor::Accept, ms));
        let read = self
            .unread_oldest_ms
            .filter(|_| self.unread_bytes > 0)
            .map(|ms| (WaitFor::Read, ms));
        match (accept, read) {
            (Some(a), Some(r)) => Some(if r.1 > a.1 { r } else { a }),
            (a, r) => a.or(r),
        }
    }
}

/// The service dump of a sample, namespace-wide.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceSummary {
    /// Age of the service numbers in milliseconds: 0 when dumped for this sample; more when
    /// the dump (it walks the kernel's established hash) was spaced out to keep sockq's CPU
    /// budget.
    pub age_ms: u64,
    /// CLOCK_MONOTONIC of the dump, in nanoseconds (rates are taken between dumps, not ticks).
    pub dumped_monotonic_ns: u64,
    /// Sockets the kernel sent (after its port filter), every family and state.
    pub sockets: u64,
    /// Of those, sockets on a listener's port that matched no listener's address.
    pub unmatched: u64,
    /// The dump asked for tcp_info (INET_DIAG_INFO), which refines the ages; it is asked for
    /// only when the previous dump found children waiting or unread bytes.
    pub tcp_info: bool,
    /// Port ranges of the kernel-side filter (INET_DIAG_REQ_BYTECODE); more listener ports
    /// than the filter holds are merged into wider ranges.
    pub port_ranges: u32,
}

/// The `TCP:` line of /proc/net/sockstat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TcpSockstat {
    /// TCP sockets in use in this namespace (`inuse`).
    pub inuse: Option<u64>,
    /// Orphaned TCP sockets (closed by their process, still in the kernel), host-wide
    /// (`orphan`).
    pub orphan: Option<u64>,
    /// TIME-WAIT sockets (`tw`).
    pub tw: Option<u64>,
    /// TCP sockets allocated, host-wide (`alloc`).
    pub alloc: Option<u64>,
    /// Memory charged to TCP, host-wide, in pages (`mem`, `tcp_memory_allocated`): compare
    /// net.ipv4.tcp_mem.
    pub mem_pages: Option<u64>,
    /// Size of a page in bytes.
    pub page_size: u64,
}

impl TcpSockstat {
    /// `mem_pages` in bytes.
    pub fn mem_bytes(&self) -> Option<u64> {
        self.mem_pages.map(|p| p.saturating_mul(self.page_size))
    }
}

/// What the engine derives from successive service dumps of one listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceTick {
    /// New connections per second: children first seen (by cookie) between the last two
    /// dumps. Absent before two dumps. Undercounts connections shorter than the dump spacing
    /// (see the tick's `arrivals`).
    pub new_conns_per_s: Option<f64>,
    /// Mean connection lifetime in seconds by Little's law, W = L / λ: in service / new
    /// connections per second. It is the response time only without keep-alive. Absent while
    /// no connection arrives.
    pub mean_conn_lifetime_s: Option<f64>,
    /// Growth of CLOSE-WAIT children per second over the dumps of the last minute (at least
    /// 10 s of them). Absent before that.
    pub close_wait_growth_per_s: Option<f64>,
    /// Seconds CLOSE-WAIT has risen without ever falling between two dumps.
    pub close_wait_rising_s: f64,
    /// Growth of in-service children per second over the dumps of the last minute (at least
    /// 10 s of them). Absent before that.
    pub in_service_growth_per_s: Option<f64>,
    /// Growth per second of the children that hold one of the owner's file descriptors: in
    /// service plus accepted CLOSE-WAIT (a leak holds its fds too), over the same dumps.
    /// Absent before that.
    #[serde(default)]
    pub fds_held_growth_per_s: Option<f64>,
}

/// Arrivals seen by cookie against the namespace's own count of connections created.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ArrivalCheck {
    /// Tcp PassiveOpens per second (/proc/net/snmp): children created at the final ACK,
    /// namespace-wide, between the last two service dumps.
    pub passive_opens_per_s: f64,
    /// The listeners' `new_conns_per_s` summed (an SO_REUSEPORT group once).
    pub seen_per_s: f64,
}

impl ArrivalCheck {
    /// Seen / PassiveOpens: below 1 when connections live shorter than the dump spacing (or
    /// belong to listeners filtered out). Absent with no PassiveOpens.
    pub fn coverage(&self) -> Option<f64> {
        (self.passive_opens_per_s > 0.0).then(|| self.seen_per_s / self.passive_opens_per_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_wait_is_the_longer_of_accept_and_read() {
        let s = |waiting, w, unread_bytes, u| ServiceStats {
            waiting,
            waiting_oldest_ms: w,
            unread_bytes,
            unread_oldest_ms: u,
            ..ServiceStats::default()
        };
        assert_eq!(s(0, None, 0, None).oldest_wait(), None);
        assert_eq!(
            s(3, Some(1400), 46, Some(24_300)).oldest_wait(),
            Some((WaitFor::Read, 24_300))
        );
        assert_eq!(
            s(3, Some(1400), 46, Some(300)).oldest_wait(),
            Some((WaitFor::Accept, 1400))
        );
        assert_eq!(
            s(0, Some(9), 1, Some(5)).oldest_wait(),
            Some((WaitFor::Read, 5))
        );
        assert_eq!(
            s(2, Some(9), 0, Some(5)).oldest_wait(),
            Some((WaitFor::Accept, 9))
        );
    }
}
