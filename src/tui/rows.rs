//! The rows of the listener table: one per TCP listener (current, or gone and still kept) and
//! per UNIX listener, built from the model, and their sort orders. Pure: no terminal, no I/O.

use crate::engine::Engine;
use crate::model::{
    ListenerKey, ListenerTick, Owners, ServiceStats, ServiceTick, TcpListener, Tick,
};

/// Sort orders of the listener table, cycled with `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Accept-queue fill at its peak since the last tick (the gauge's mark), fullest first: a
    /// listener that overflowed between two polls sorts with the full ones.
    Fill,
    /// Drops per second, most first.
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
        f64::from(self.depth) / f64::from(self.backlog.max(1))
    }

    /// Fill at the peak since the previous tick (what the gauge's mark shows and `s` sorts on).
    pub fn peak_fill(&self) -> f64 {
        f64::from(self.peak.max(self.depth)) / f64::from(self.backlog.max(1))
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
    fn from_tcp(lt: &ListenerTick, l: Option<&TcpListener>, gone_s: Option<u64>) -> Self {
        // An overflow means the queue held backlog+1, whether or not a poll saw it.
        let full = if lt.overflowed {
            lt.backlog.saturating_add(1)
        } else {
            0
        };
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
            peak: lt.depth_high.max(lt.depth).max(full),
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

/// A row for every TCP listener of the tick, and for those that went away earlier and are
/// still kept (from the history).
pub(super) fn tcp_rows(tick: &Tick, engine: &Engine) -> Vec<Row> {
    let by_key: std::collections::HashMap<ListenerKey, &TcpListener> = tick
        .snapshot
        .tcp_listeners
        .iter()
        .map(|l| (ListenerKey::from(l), l))
        .collect();
    let gone = engine.gone_listeners();
    let now_ns = tick.snapshot.time.monotonic_ns;
    tick.listeners
        .iter()
        .chain(gone.iter())
        .map(|lt| {
            let history = engine.listener(&lt.key);
            let l = by_key
                .get(&lt.key)
                .copied()
                .or_else(|| history.map(|h| &h.listener));
            let gone_s = history
                .filter(|_| lt.gone)
                .map(|h| (now_ns.saturating_sub(h.last_seen_ns) + 500_000_000) / 1_000_000_000);
            Row::from_tcp(lt, l, gone_s)
        })
        .collect()
}

/// A row for every UNIX listener of the tick.
pub(super) fn unix_rows(tick: &Tick) -> Vec<Row> {
    let Some(unix) = &tick.snapshot.unix_listeners else {
        return Vec::new();
    };
    unix.iter()
        .map(|u| Row {
            key: ListenerKey {
                inode: u.inode,
                cookie: 0,
            },
            endpoint: if u.name.is_empty() {
                format!("unix:(unnamed {})", u.inode).into()
            } else {
                u.name.as_str().into()
            },
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
        })
        .collect()
}

/// Sorts rows by `sort`; gone listeners sink to the bottom whatever the order.
pub(super) fn sort_rows(rows: &mut [Row], sort: SortBy) {
    let cmp_f = |a: f64, b: f64| b.total_cmp(&a);
    match sort {
        SortBy::Fill => rows
            .sort_by(|a, b| cmp_f(a.peak_fill(), b.peak_fill()).then(a.endpoint.cmp(&b.endpoint))),
        // Ties (often all 0.0/s) go to the listener that dropped most since it was created.
        SortBy::Drops => rows.sort_by(|a, b| {
            cmp_f(a.drops_per_s.unwrap_or(-1.0), b.drops_per_s.unwrap_or(-1.0))
                .then(b.drops.cmp(&a.drops))
                .then(a.endpoint.cmp(&b.endpoint))
        }),
        SortBy::SynRecv => rows.sort_by(|a, b| {
            b.syn_recv
                .map(|s| s.0)
                .cmp(&a.syn_recv.map(|s| s.0))
                .then(a.endpoint.cmp(&b.endpoint))
        }),
        SortBy::Port => rows.sort_by_key(|r| {
            (
                r.unix,
                r.port.map_or(u32::MAX, u32::from),
                r.endpoint.clone(),
            )
        }),
        SortBy::Process => rows.sort_by(|a, b| {
            a.process_name()
                .cmp(b.process_name())
                .then(a.endpoint.cmp(&b.endpoint))
        }),
    }
    // Gone listeners sink to the bottom whatever the order.
    rows.sort_by_key(|r| r.gone);
}
