//! `sockq watch`: one line per tick for people, or one JSON object per tick (JSON lines).

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::model::labels::short_age;
use crate::model::Tick;
use crate::model::{Finding, ListenerKey};

/// Column header of the human format. IN-SVC: connections accepted and open (every listener,
/// an SO_REUSEPORT group once); OLDEST-WAIT: the longest a client waits now, for accept() or
/// for its request to be read (`unread:24s`).
pub const HEADER: &str = "TIME      LISTEN  FULL   OVFL/s   DROP/s COOKIE/s  SYNDROP/s  IN-SVC OLDEST-WAIT  BUSIEST (depth/backlog, ^peak)";

/// IN-SVC and OLDEST-WAIT: the listeners' connections in service (an SO_REUSEPORT group
/// once: its members share the numbers) and the longest wait among them; `-` when no listener
/// has service numbers.
fn service_cells(t: &Tick) -> (String, String) {
    let mut endpoints = crate::model::fast_set(t.snapshot.tcp_listeners.len());
    let known: Vec<_> = t
        .snapshot
        .tcp_listeners
        .iter()
        .filter_map(|l| Some((l.endpoint_id(), l.service.as_ref()?)))
        .filter(|(ep, _)| endpoints.insert(*ep))
        .map(|(_, s)| s)
        .collect();
    if known.is_empty() {
        return ("-".into(), "-".into());
    }
    let in_service: u64 = known.iter().map(|s| s.in_service).sum();
    let wait = known
        .iter()
        .filter_map(|s| s.oldest_wait())
        .max_by_key(|w| w.1)
        .map_or("none".into(), |(what, ms)| {
            format!("{}:{}", what.label(), short_age(ms))
        });
    (in_service.to_string(), wait)
}

fn rate_cell(t: &Tick, name: &str) -> String {
    match t.counter_rates.get(name).copied().flatten() {
        Some(r) => format!("{r:.1}"),
        None => "-".into(),
    }
}

/// Formats one tick as a line (plus indented lines for findings that are new since `seen`).
/// `seen` holds the (rule, listener) of findings already printed; it is updated.
pub fn human_line(t: &Tick, seen: &mut HashSet<(String, Option<ListenerKey>)>) -> String {
    let time = t
        .snapshot
        .time
        .wall
        .get(11..19)
        .unwrap_or(&t.snapshot.time.wall)
        .to_string();
    let live: Vec<_> = t.listeners.iter().filter(|l| !l.gone).collect();
    let full = live.iter().filter(|l| l.depth_high > l.backlog).count();
    let mut busiest: Vec<_> = live.iter().filter(|l| l.depth_high > 0).collect();
    busiest.sort_by(|a, b| {
        let fa = f64::from(a.depth_high) / f64::from(a.backlog.max(1));
        let fb = f64::from(b.depth_high) / f64::from(b.backlog.max(1));
        fb.total_cmp(&fa)
    });
    let mut busy = String::new();
    for l in busiest.iter().take(3) {
        let _ = write!(busy, "{} {}/{}", l.endpoint, l.depth, l.backlog);
        if l.depth_high > l.depth {
            let _ = write!(busy, "^{}", l.depth_high);
        }
        busy.push_str("  ");
    }
    if busiest.is_empty() {
        busy.push_str("(all accept queues empty)");
    }
    let (in_service, wait) = service_cells(t);
    let mut line = format!(
        "{time:<9} {:>6} {:>5} {:>8} {:>8} {:>8} {:>10}  {in_service:>6} {wait:<11}  {}",
        live.len(),
        full,
        rate_cell(t, "ListenOverflows"),
        rate_cell(t, "ListenDrops"),
        rate_cell(t, "SyncookiesSent"),
        rate_cell(t, "TCPReqQFullDrop"),
        busy.trim_end()
    );
    if t.gap_before {
        line.push_str("  [gap: samples missed before this one]");
    }
    if t.collector.throttled {
        let _ = write!(
            line,
            "  [CPU budget {:.1}%: SYN-RECV {:.1} s old, polling every {} ms]",
            t.collector.budget_percent,
            t.collector.syn_recv_age_ms as f64 / 1000.0,
            t.collector.fast_interval_ms
        );
    }
    // After the CPU-budget note: the service dump is spaced out with the SYN-RECV dump.
    if let Some(age) = t
        .snapshot
        .service
        .as_ref()
        .map(|s| s.age_ms)
        .filter(|&a| a >= 1000)
    {
        let _ = write!(line, "  [connections {:.1} s old]", age as f64 / 1000.0);
    }
    let current: HashSet<(String, Option<ListenerKey>)> =
        t.findings.iter().map(|f| (f.rule.clone(), f.key)).collect();
    for f in &t.findings {
        if !seen.contains(&(f.rule.clone(), f.key)) {
            let _ = write!(line, "\n  {}", finding_text(f));
        }
    }
    *seen = current;
    line
}

/// `CRIT message → next` on one line.
pub fn finding_text(f: &Finding) -> String {
    format!("{} {} Next: {}", f.severity.label(), f.message, f.next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, EngineConfig};
    use crate::model::testing::{idle_service, service_summary, snapshot, tcp_listener};
    use crate::model::{CollectorStats, Sample, ServiceStats};

    fn line(listeners: Vec<crate::model::TcpListener>, dumped: bool) -> String {
        let mut snap = snapshot(listeners, 1_000_000_000);
        if dumped {
            snap.service = Some(service_summary(1_000_000_000));
        }
        let mut e = Engine::new(EngineConfig::default());
        let t = e.ingest(Sample {
            snapshot: snap,
            depth_ranges: vec![],
            collector: CollectorStats::default(),
        });
        human_line(t, &mut HashSet::new())
    }

    #[test]
    fn in_service_counts_a_reuseport_group_once_and_the_wait_names_what_it_waits_for() {
        let group = |cookie: u64| {
            tcp_listener(80)
                .identity(cookie, cookie)
                .service(Some(ServiceStats {
                    group: 2,
                    in_service: 12,
                    ..idle_service()
                }))
                .build()
        };
        let blocked = tcp_listener(8000)
            .service(Some(ServiceStats {
                in_service: 40,
                unread_conns: 40,
                unread_bytes: 1840,
                unread_oldest_ms: Some(24_300),
                waiting: 1,
                waiting_oldest_ms: Some(900),
                ..idle_service()
            }))
            .build();
        let l = line(vec![group(1), group(2), blocked], true);
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f[7..9], ["52", "unread:24s"], "{l}");
        // Nothing waits: none; no numbers at all: -, never 0.
        let l = line(vec![group(1)], true);
        assert_eq!(
            l.split_whitespace().collect::<Vec<_>>()[7..9],
            ["12", "none"],
            "{l}"
        );
        let l = line(vec![tcp_listener(80).build()], false);
        assert_eq!(
            l.split_whitespace().collect::<Vec<_>>()[7..9],
            ["-", "-"],
            "{l}"
        );
    }
}
