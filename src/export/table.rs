//! The one-shot table of `sockq snapshot`. Pure: a Snapshot in, text out.

use std::fmt::Write as _;

use crate::model::labels::{bytes_label, fds_label, process_label, short_age};
use crate::model::meta::{tunable_meaning, QUEUE_COUNTER_INFO};
use crate::model::{Owners, ProcessInfo, Snapshot, TcpListener, UnixListener};

/// Column-aligned text: the first row is the header; numeric columns are right-aligned.
struct Table {
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
}

impl Table {
    fn new(header: &[&str], right: &[bool]) -> Self {
        Self {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
            right: right.to_vec(),
        }
    }

    fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    fn render(&self, out: &mut String) {
        let cols = self.right.len();
        let mut width = vec![0usize; cols];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                width[i] = width[i].max(cell.chars().count());
            }
        }
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(cols) {
                let pad = width[i].saturating_sub(cell.chars().count());
                if i > 0 {
                    line.push_str("  ");
                }
                if self.right[i] {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if i + 1 < cols {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
}

/// Fill as a percentage, allowed above 100 %.
pub fn fill_label(l: &TcpListener) -> String {
    match l.fill() {
        Some(f) => format!("{:.0}%", f * 100.0),
        None => "-".into(),
    }
}

fn syn_recv_label(l: &TcpListener) -> String {
    if l.syn_recv_group > 1 {
        format!("{} (port group of {})", l.syn_recv, l.syn_recv_group)
    } else {
        l.syn_recv.to_string()
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("?".into(), |v| v.to_string())
}

/// A process's scheduler state letter, `?` when unknown.
fn state_cell(p: Option<&ProcessInfo>) -> String {
    opt(p.and_then(|p| p.state))
}

/// A process's CPU share of one core, `?` when unknown (never read twice).
fn cpu_cell(p: Option<&ProcessInfo>) -> String {
    p.and_then(|p| p.cpu_percent)
        .map_or("?".into(), |c| format!("{c:.0}%"))
}

/// `nginx[9511] S 1%`: a holder with its state and CPU share.
fn holder_cell(p: &ProcessInfo) -> String {
    format!(
        "{}[{}] {} {}",
        p.comm,
        p.pid,
        state_cell(Some(p)),
        cpu_cell(Some(p))
    )
}

/// At most this many holders are listed for one listener.
const HOLDERS_LISTED: usize = 8;

/// Under a table: every holder, with its state and CPU share, of each listener that several
/// processes hold (the table's row names the first, the busiest).
fn render_holders<'a>(out: &mut String, rows: impl Iterator<Item = (String, &'a Owners)>) {
    for (name, owners) in rows {
        let procs = owners.processes();
        if procs.len() < 2 {
            continue;
        }
        let mut cells: Vec<String> = procs.iter().take(HOLDERS_LISTED).map(holder_cell).collect();
        if procs.len() > HOLDERS_LISTED {
            cells.push(format!("and {} more", procs.len() - HOLDERS_LISTED));
        }
        let _ = writeln!(
            out,
            "  - {name} held by {} processes: {}",
            procs.len(),
            cells.join(", ")
        );
    }
}

/// Renders the whole snapshot as the `sockq snapshot` table.
pub fn render(snap: &Snapshot, filter_note: Option<&str>) -> String {
    let mut out = String::new();
    let ns = match snap.netns.inode {
        Some(i) => format!("{} (net:[{i}])", snap.netns.label),
        None => snap.netns.label.clone(),
    };
    let _ = writeln!(
        out,
        "sockq snapshot  host {}  kernel {}  netns {}  at {}",
        snap.host.hostname, snap.host.kernel, ns, snap.time.wall
    );
    let _ = writeln!(out);
    render_tcp(&mut out, &snap.tcp_listeners, filter_note);
    let _ = writeln!(
        out,
        "SYN-RECV requests in namespace: {} (matched to no listener: {})",
        snap.syn_recv.total, snap.syn_recv.unmatched
    );
    if !snap.tcp_listeners.is_empty() {
        let _ = writeln!(out);
        render_service(&mut out, snap);
    }
    if let Some(unix) = &snap.unix_listeners {
        let _ = writeln!(out);
        render_unix(&mut out, unix, filter_note);
    }
    let _ = writeln!(out);
    render_counters(&mut out, snap);
    let _ = writeln!(out);
    render_tunables(&mut out, snap);
    if !snap.blind_spots.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "NOT SEEN IN THIS SAMPLE");
        for b in &snap.blind_spots {
            let _ = writeln!(out, "  - {b}");
        }
    }
    out
}

fn render_tcp(out: &mut String, listeners: &[TcpListener], filter_note: Option<&str>) {
    let _ = writeln!(
        out,
        "TCP LISTENERS  Accept Q = established connections waiting for accept() (ss Recv-Q);"
    );
    let _ = writeln!(
        out,
        "  Backlog = limit in force (ss Send-Q), full when Accept Q > Backlog; Drops = the listener's"
    );
    let _ = writeln!(
        out,
        "  own drop counter since it was created (ss -m d); FDs = open/RLIMIT_NOFILE of the owner"
    );
    let _ = writeln!(
        out,
        "  closest to its limit; PROCESS = the busiest holder, with its STATE (R running, S sleeping,"
    );
    let _ = writeln!(
        out,
        "  D uninterruptible sleep, T stopped) and CPU (% of one core over --cpu-window; ? unknown)"
    );
    if listeners.is_empty() {
        let _ = match filter_note {
            Some(f) => writeln!(out, "  (no TCP listener matches {f})"),
            None => writeln!(out, "  (no TCP listeners)"),
        };
        return;
    }
    let mut t = Table::new(
        &[
            "ADDRESS", "PROCESS", "STATE", "CPU", "ACCEPT Q", "BACKLOG", "FILL", "SYN-RECV",
            "DROPS", "FDS",
        ],
        &[false, false, true, true, true, true, true, true, true, true],
    );
    let mut unknown_reasons: Vec<&str> = Vec::new();
    for l in listeners {
        let mut fill = fill_label(l);
        if l.is_full() {
            fill = format!("FULL {fill}");
        }
        if let Owners::Unknown { reason } = &l.owners {
            if !unknown_reasons.contains(&reason.as_str()) {
                unknown_reasons.push(reason);
            }
        }
        let first = l.owners.processes().first();
        t.push(vec![
            l.endpoint(),
            process_label(&l.owners),
            state_cell(first),
            cpu_cell(first),
            l.accept_queue.to_string(),
            l.backlog.to_string(),
            fill,
            syn_recv_label(l),
            opt(l.drops),
            fds_label(&l.owners),
        ]);
    }
    t.render(out);
    render_holders(out, listeners.iter().map(|l| (l.endpoint(), &l.owners)));
    for r in unknown_reasons {
        let _ = writeln!(out, "  ? process unknown: {r}");
    }
}

/// `N, B, oldest A` of connections with unread or unsent bytes; `0` without any.
fn queued_cell(conns: u64, bytes: u64, oldest: Option<u64>) -> String {
    if conns == 0 {
        return "0".into();
    }
    let oldest = oldest.map_or(String::new(), |ms| format!(", {}", short_age(ms)));
    format!("{conns}, {}{oldest}", bytes_label(bytes))
}

/// After accept(): each TCP listener's connections, from the service dump; `–` for a listener
/// the dump did not cover, and the reason when there is no dump at all.
fn render_service(out: &mut String, snap: &Snapshot) {
    let age = match &snap.service {
        Some(s) if s.age_ms >= 1000 => format!(" (dump {:.1} s old)", s.age_ms as f64 / 1000.0),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "AFTER accept(){age}  WAITING = established, not yet accepted (inode 0), and the oldest's"
    );
    let _ = writeln!(
        out,
        "  age; IN SERVICE = accepted (ESTABLISHED with an inode); UNREAD / UNSENT = connections with"
    );
    let _ = writeln!(
        out,
        "  Recv-Q / Send-Q > 0, their bytes and the oldest's age; CLOSE-WAIT (+ never accepted);"
    );
    let _ = writeln!(
        out,
        "  FIN-WAIT = FIN-WAIT-1/FIN-WAIT-2; MEMORY = SK_MEMINFO r+w+f; a group's numbers are shared"
    );
    if snap.service.is_none() {
        let why = snap
            .blind_spots
            .iter()
            .find(|b| b.starts_with("the listeners' connections"))
            .map_or("not read in this sample", String::as_str);
        let _ = writeln!(out, "  – unknown: {why}");
        return;
    }
    let mut t = Table::new(
        &[
            "ADDRESS",
            "WAITING",
            "IN SERVICE",
            "UNREAD",
            "UNSENT",
            "CLOSE-WAIT",
            "FIN-WAIT",
            "TIME-WAIT",
            "MEMORY",
        ],
        &[false, true, true, true, true, true, true, true, true],
    );
    let mut seen = std::collections::HashSet::new();
    for l in &snap.tcp_listeners {
        let ep = l.endpoint();
        // An SO_REUSEPORT group's members share one set of numbers: one row.
        if !seen.insert(ep.clone()) {
            continue;
        }
        let Some(s) = &l.service else {
            t.push(vec![
                ep,
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
            ]);
            continue;
        };
        let waiting = match s.waiting_oldest_ms.filter(|_| s.waiting > 0) {
            Some(ms) => format!("{}, {}", s.waiting, short_age(ms)),
            None => s.waiting.to_string(),
        };
        let in_service = if s.group > 1 {
            format!("{} (group of {})", s.in_service, s.group)
        } else {
            s.in_service.to_string()
        };
        let held = s.close_wait.saturating_sub(s.close_wait_unaccepted);
        let close_wait = if s.close_wait_unaccepted > 0 {
            format!("{held} +{}", s.close_wait_unaccepted)
        } else {
            held.to_string()
        };
        t.push(vec![
            ep,
            waiting,
            in_service,
            queued_cell(s.unread_conns, s.unread_bytes, s.unread_oldest_ms),
            queued_cell(s.unsent_conns, s.unsent_bytes, s.unsent_oldest_ms),
            close_wait,
            format!("{}/{}", s.fin_wait1, s.fin_wait2),
            s.time_wait.to_string(),
            s.memory().map_or("?".into(), bytes_label),
        ]);
    }
    t.render(out);
}

fn render_unix(out: &mut String, unix: &[UnixListener], filter_note: Option<&str>) {
    let _ = writeln!(
        out,
        "UNIX LISTENERS  Accept Q = connections waiting for accept(); Backlog = limit in force"
    );
    if unix.is_empty() {
        let _ = match filter_note {
            Some(f) => writeln!(out, "  (no UNIX stream listener matches {f})"),
            None => writeln!(out, "  (no UNIX stream listeners)"),
        };
        return;
    }
    let mut t = Table::new(
        &[
            "PATH", "PROCESS", "STATE", "CPU", "ACCEPT Q", "BACKLOG", "FDS",
        ],
        &[false, false, true, true, true, true, true],
    );
    let name = |l: &UnixListener| {
        if l.name.is_empty() {
            "(unnamed)".to_string()
        } else {
            l.name.clone()
        }
    };
    for l in unix {
        let first = l.owners.processes().first();
        t.push(vec![
            name(l),
            process_label(&l.owners),
            state_cell(first),
            cpu_cell(first),
            l.accept_queue.to_string(),
            l.backlog.to_string(),
            fds_label(&l.owners),
        ]);
    }
    t.render(out);
    render_holders(out, unix.iter().map(|l| (name(l), &l.owners)));
}

fn render_counters(out: &mut String, snap: &Snapshot) {
    let _ = writeln!(
        out,
        "QUEUE COUNTERS  TcpExt, cumulative since the namespace was created"
    );
    let mut t = Table::new(&["COUNTER", "VALUE", "MEANING"], &[false, true, false]);
    for c in QUEUE_COUNTER_INFO {
        let value = snap
            .counters
            .tcp_ext(c.name)
            .map_or("absent".to_string(), |v| v.to_string());
        t.push(vec![c.name.to_string(), value, c.meaning.to_string()]);
    }
    t.render(out);
}

fn render_tunables(out: &mut String, snap: &Snapshot) {
    let _ = writeln!(out, "TUNABLES");
    let mut t = Table::new(&["TUNABLE", "VALUE", "MEANING"], &[false, true, false]);
    for (name, value) in snap.tunables.entries() {
        t.push(vec![
            name.to_string(),
            value.map_or("absent".into(), |v| v.to_string()),
            tunable_meaning(name, value).to_string(),
        ]);
    }
    t.render(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{process, process_in_state, snapshot, tcp_listener};

    #[test]
    fn state_and_cpu_next_to_each_process() {
        let prefork = Owners::Known {
            processes: vec![
                process_in_state(9511, "nginx", 'S', Some(1.4), 1),
                process_in_state(9510, "nginx", 'S', Some(0.0), 1),
                process_in_state(9512, "nginx", 'T', Some(0.0), 1),
            ]
            .into(),
        };
        let snap = snapshot(
            vec![
                tcp_listener(80).queue(3, 511).owners(prefork).build(),
                tcp_listener(8000)
                    .owner(process_in_state(311, "python3", 'R', Some(98.0), 1))
                    .build(),
                // Read once only: no CPU share yet.
                tcp_listener(9000)
                    .owner(process_in_state(77, "redis", 'S', None, 4))
                    .build(),
                tcp_listener(9001)
                    .owner(process(78, "old", Some(3), Some(64)))
                    .build(),
                tcp_listener(9002)
                    .owners(Owners::Unknown {
                        reason: "not root".into(),
                    })
                    .build(),
            ],
            1,
        );
        let text = render(&snap, None);
        let row = |addr: &str| -> Vec<&str> {
            text.lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .find(|f| f.first() == Some(&addr))
                .unwrap_or_else(|| panic!("no {addr} in\n{text}"))
        };
        // ADDRESS PROCESS STATE CPU ACCEPT-Q BACKLOG FILL SYN-RECV DROPS FDS
        assert_eq!(
            row("127.0.0.1:80")[..6],
            ["127.0.0.1:80", "nginx[9511]+2", "S", "1%", "3", "511"]
        );
        assert_eq!(row("127.0.0.1:8000")[1..4], ["python3[311]", "R", "98%"]);
        assert_eq!(row("127.0.0.1:9000")[1..4], ["redis[77]", "S", "?"]);
        assert_eq!(row("127.0.0.1:9001")[1..4], ["old[78]", "?", "?"]);
        assert_eq!(row("127.0.0.1:9002")[1..4], ["?", "?", "?"]);
        // Every holder of a listener held by several, under the table.
        assert!(
            text.contains(
                "\n  - 127.0.0.1:80 held by 3 processes: nginx[9511] S 1%, nginx[9510] S 0%, \
                 nginx[9512] T 0%\n"
            ),
            "{text}"
        );
        assert_eq!(text.matches(" held by ").count(), 1, "{text}");
    }

    #[test]
    fn after_accept_one_row_per_listener_or_group_and_a_dash_when_unknown() {
        use crate::model::testing::{idle_service, service_summary};
        use crate::model::ServiceStats;
        let blocked = tcp_listener(8000)
            .service(Some(ServiceStats {
                waiting: 3,
                waiting_oldest_ms: Some(1400),
                in_service: 40,
                unread_conns: 50,
                unread_bytes: 2300,
                unread_oldest_ms: Some(24_300),
                close_wait: 11,
                close_wait_unaccepted: 1,
                fin_wait2: 2,
                time_wait: 607,
                mem_bytes: Some(204_800),
                ..idle_service()
            }))
            .build();
        let member = |cookie| {
            tcp_listener(80)
                .identity(cookie, cookie)
                .service(Some(ServiceStats {
                    group: 2,
                    in_service: 12,
                    ..idle_service()
                }))
                .build()
        };
        let mut snap = snapshot(
            vec![blocked, member(1), member(2), tcp_listener(9000).build()],
            1,
        );
        snap.service = Some(service_summary(1));
        let text = render(&snap, None);
        let after = &text[text.find("AFTER accept()").unwrap()..];
        let row = |addr: &str| {
            after
                .lines()
                .find(|l| l.starts_with(&format!("{addr} ")))
                .unwrap_or_else(|| panic!("no {addr}:\n{text}"))
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            row("127.0.0.1:8000"),
            [
                "127.0.0.1:8000",
                "3, 1.4s",
                "40",
                "50, 2.2 KiB, 24s",
                "0",
                "10 +1",
                "0/2",
                "607",
                "200.0 KiB"
            ]
        );
        assert_eq!(row("127.0.0.1:80")[2], "12 (group of 2)");
        assert_eq!(after.matches("127.0.0.1:80 ").count(), 1, "{after}");
        assert!(
            row("127.0.0.1:9000")[1..].iter().all(|c| *c == "–"),
            "{after}"
        );
        // No dump at all: said once, with the collector's reason.
        snap.service = None;
        snap.blind_spots = vec!["the listeners' connections are unknown: EPERM".into()];
        let text = render(&snap, None);
        assert!(
            text.contains("  – unknown: the listeners' connections are unknown: EPERM\n"),
            "{text}"
        );
    }

    #[test]
    fn many_holders_are_listed_up_to_eight() {
        let workers = Owners::Known {
            processes: (1..=11)
                .map(|pid| process_in_state(pid, "php-fpm", 'S', Some(0.0), 1))
                .collect::<Vec<_>>()
                .into(),
        };
        let snap = snapshot(vec![tcp_listener(9000).owners(workers).build()], 1);
        let text = render(&snap, None);
        let line = text
            .lines()
            .find(|l| l.contains(" held by "))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.starts_with("  - 127.0.0.1:9000 held by 11 processes: php-fpm[1] S 0%,"));
        assert!(line.ends_with("php-fpm[8] S 0%, and 3 more"), "{line}");
    }
}
