//! The rows of the listener table: one per TCP listener (current, or gone and still kept) and
//! per UNIX listener, built from the model, and their sort orders (applied in `listing`).
//! Pure: no terminal, no I/O.

use super::listing::{unix_endpoint, unix_key};
use crate::model::{
    ListenerKey, ListenerTick, Owners, ServiceStats, ServiceTick, TcpListener, UnixListener,
};

/// Sort orders of the listener table, cycled with `s`. Ties go by endpoint, then as the
/// listeners come; gone listeners sink to the bottom whatever the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Accept-queue fill at its peak since the last tick (the gauge's mark), fullest first: a
    /// listener that overflowed between two polls sorts with the full ones.
    Fill,
    /// Drops per second, most first; ties (often all 0.0/s) go to the listener that dropped
    /// most since it was created.
    Drops,
    /// SYN-RECV requests, most first.
    SynRecv,
    /// Local port, ascending.
    Port,
    /// Process name.
    Process,
}

impl SortBy {
    /// The next order.
    pub fn next(self) -> Self {
        match self {
            SortBy::Fill => SortBy::Drops,
            SortBy::Drops => SortBy::SynRecv,
            SortBy::SynRecv => SortBy::Port,
            SortBy::Port => SortBy::Process,
            SortBy::Process => SortBy::Fill,
        }
    }

    /// Name shown in the table title.
    pub fn label(self) -> &'static str {
        match self {
            SortBy::Fill => "fill (peak)",
            SortBy::Drops => "drops",
            SortBy::SynRecv => "SYN-RECV",
            SortBy::Port => "port",
            SortBy::Process => "process",
        }
    }
}

/// One row of the listener table (a TCP or UNIX listener).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Identity (UNIX listeners use their inode with cookie 0).
    pub key: ListenerKey,
    /// Address:port, or the UNIX path.
    pub endpoint: std::sync::Arc<str>,
    /// Local port (TCP only).
    pub port: Option<u16>,
    /// Owning processes.
    pub owners: Owners,
    /// Depth now.
    pub depth: u32,
    /// Peak since the previous tick; backlog+1 at least when the queue overflowed (a poll saw
    /// it, or the drop counters prove it).
    pub peak: u32,
    /// Backlog.
    pub backlog: u32,
    /// SYN-RECV (TCP only) and the size of the group it is shared with.
    pub syn_recv: Option<(u64, u32)>,
    /// Drops per second.
    pub drops_per_s: Option<f64>,
    /// Cumulative drops.
    pub drops: Option<u64>,
    /// The accept queue overflowed in the latest tick.
    pub overflowed: bool,
    /// The overflow was proven by the drop counters, not seen by a poll (it happened between
    /// two polls).
    pub overflow_proven: bool,
    /// Drops counted by the listener's own counter in the latest tick.
    pub drops_delta: Option<u64>,
    /// Gone from the latest sample.
    pub gone: bool,
    /// Seconds since a gone listener was last seen.
    pub gone_s: Option<u64>,
    /// A UNIX listener.
    pub unix: bool,
    /// After accept(): its children (waiting, in service, closing); `None` when unknown (no
    /// service dump, or a UNIX listener).
    pub service: Option<ServiceStats>,
    /// Rates of its children (new connections per second, Little's law).
    pub service_rates: Option<ServiceTick>,
}

impl Row {
    /// Fill now: depth / backlog (above 1 when full), as docs/metrics.md defines it.
    pub fn fill(&self) -> f64 {
        fill(self.depth, self.backlog)
    }

    /// Fill at the peak since the previous tick (what the gauge's mark shows and `s` sorts on).
    pub fn peak_fill(&self) -> f64 {
        fill(self.peak.max(self.depth), self.backlog)
    }

    /// Name of the first owner, for sorting and filtering.
    pub fn process_name(&self) -> &str {
        self.owners
            .processes()
            .first()
            .map_or("", |p| p.comm.as_str())
    }

    /// The row of a TCP listener: its tick, its latest reading (if any) and, when gone, the
    /// seconds since it was last seen.
    pub(super) fn from_tcp(
        lt: &ListenerTick,
        l: Option<&TcpListener>,
        gone_s: Option<u64>,
    ) -> Self {
        Row {
            key: lt.key,
            endpoint: lt.endpoint.clone(),
            port: l.map(|l| l.port),
            owners: l.map_or(
                Owners::Unknown {
                    reason: "gone".into(),
                },
                |l| l.owners.clone(),
            ),
            depth: lt.depth,
            peak: tcp_peak(lt),
            backlog: lt.backlog,
            syn_recv: l.map(|l| (l.syn_recv, l.syn_recv_group)),
            drops_per_s: lt.drops_per_s,
            drops: l.and_then(|l| l.drops),
            overflowed: lt.overflowed,
            overflow_proven: lt.overflow_proven,
            drops_delta: lt.drops_delta,
            gone: lt.gone,
            gone_s,
            unix: false,
            service: l.and_then(|l| l.service.clone()),
            service_rates: lt.service.clone(),
        }
    }
}

/// The peak of a TCP listener's accept queue since the previous tick: backlog+1 at least when
/// it overflowed, whether or not a poll saw it.
pub(super) fn tcp_peak(lt: &ListenerTick) -> u32 {
    let full = if lt.overflowed {
        lt.backlog.saturating_add(1)
    } else {
        0
    };
    lt.depth_high.max(lt.depth).max(full)
}

/// `depth` over the backlog (above 1 when full), as docs/metrics.md defines the fill.
pub(super) fn fill(depth: u32, backlog: u32) -> f64 {
    f64::from(depth) / f64::from(backlog.max(1))
}

/// The row of a UNIX listener.
pub(super) fn unix_row(u: &UnixListener) -> Row {
    Row {
        key: unix_key(u),
        endpoint: unix_endpoint(u).into(),
        port: None,
        owners: u.owners.clone(),
        depth: u.accept_queue,
        peak: u.accept_queue,
        backlog: u.backlog,
        syn_recv: None,
        drops_per_s: None,
        drops: None,
        overflowed: u.accept_queue > u.backlog,
        overflow_proven: false,
        drops_delta: None,
        gone: false,
        gone_s: None,
        unix: true,
        service: None,
        service_rates: None,
    }
}
