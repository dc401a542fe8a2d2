//! The rows of the listener table: one per TCP listener (current, or gone and still kept) and
//! per UNIX listener, built from the model, and their sort orders. Pure: no terminal, no I/O.

use crate::engine::Engine;
use crate::model::{ListenerKey, ListenerTick, Owners, TcpListener, Tick};

/// Sort orders of the listener table, cycled with `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Accept-queue fill (peak since the last tick), fullest first.
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
            SortBy::Fill => "fill",
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
    pub endpoint: String,
    /// Local port (TCP only).
    pub port: Option<u16>,
    /// Owning processes.
    pub owners: Owners,
    /// Depth now.
    pub depth: u32,
    /// Peak since the previous tick.
    pub peak: u32,
    /// Backlog.
    pub backlog: u32,
    /// SYN-RECV (TCP only) and the size of the group it is shared with.
    pub syn_recv: Option<(u64, u32)>,
    /// Drops per second.
    pub drops_per_s: Option<f64>,
    /// Cumulative drops.
    pub drops: Option<u64>,
    /// Gone from the latest sample.
    pub gone: bool,
    /// A UNIX listener.
    pub unix: bool,
}

impl Row {
    /// Peak fill (may exceed 1).
    pub fn fill(&self) -> f64 {
        f64::from(self.peak.max(self.depth)) / f64::from(self.backlog.max(1))
    }

    /// Name of the first owner, for sorting and filtering.
    pub fn process_name(&self) -> &str {
        self.owners
            .processes()
            .first()
            .map_or("", |p| p.comm.as_str())
    }

    fn from_tcp(lt: &ListenerTick, l: Option<&TcpListener>) -> Self {
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
            peak: lt.depth_high,
            backlog: lt.backlog,
            syn_recv: l.map(|l| (l.syn_recv, l.syn_recv_group)),
            drops_per_s: lt.drops_per_s,
            drops: l.and_then(|l| l.drops),
            gone: lt.gone,
            unix: false,
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
    tick.listeners
        .iter()
        .chain(gone.iter())
        .map(|lt| {
            let l = by_key
                .get(&lt.key)
                .copied()
                .or_else(|| engine.listener(&lt.key).map(|h| &h.listener));
            Row::from_tcp(lt, l)
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
                format!("unix:(unnamed {})", u.inode)
            } else {
                u.name.clone()
            },
            port: None,
            owners: u.owners.clone(),
            depth: u.accept_queue,
            peak: u.accept_queue,
            backlog: u.backlog,
            syn_recv: None,
            drops_per_s: None,
            drops: None,
            gone: false,
            unix: true,
        })
        .collect()
}

/// Sorts rows by `sort`; gone listeners sink to the bottom whatever the order.
pub(super) fn sort_rows(rows: &mut [Row], sort: SortBy) {
    let cmp_f = |a: f64, b: f64| b.total_cmp(&a);
    match sort {
        SortBy::Fill => {
            rows.sort_by(|a, b| cmp_f(a.fill(), b.fill()).then(a.endpoint.cmp(&b.endpoint)))
        }
        SortBy::Drops => rows.sort_by(|a, b| {
            cmp_f(a.drops_per_s.unwrap_or(-1.0), b.drops_per_s.unwrap_or(-1.0))
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
