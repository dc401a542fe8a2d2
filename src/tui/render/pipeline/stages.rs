//! What each stage of the pipeline screen shows: the SYN queue, the accept queue, the
//! connections in service (reading, writing) and those closing.

use ratatui::text::Line;

use super::super::text::{age_text, num_or, rate_text, safe, UNKNOWN};
use super::stage::Stage;
use crate::model::labels::tightest_owner;
use crate::model::Tick;
use crate::rules::{
    ACCEPT_WAIT_MS, CLOSE_WAIT_MIN, CLOSE_WAIT_RISING_S, NOT_READING_MS, SLOW_READER_MS,
};
use crate::tui::app::Row;

/// The SYN queue: half-open requests against backlog+1, and what a full one does.
pub(super) fn syn_queue(row: &Row, t: &Tick) -> Stage<'static> {
    let rate = |n: &str| t.counter_rates.get(n).copied().flatten();
    let syn = row.syn_recv.map_or(0, |s| s.0);
    let syn_limit = u64::from(row.backlog) + 1;
    let cookies = match t.snapshot.tunables.tcp_syncookies {
        Some(0) => "syncookies 0: a full SYN queue drops SYNs",
        Some(2) => "syncookies 2: no request is kept",
        Some(_) => "syncookies 1: cookies when full",
        None => "syncookies ?",
    };
    Stage {
        title: "SYN queue",
        value: syn,
        limit: syn_limit,
        big: format!("{syn}/{syn_limit}"),
        badge: (syn >= syn_limit).then_some("FULL"),
        gauge_label: None,
        warn: false,
        notes: vec![
            Line::raw("half-open requests (SYN-RECV)".to_string()),
            Line::raw(format!("holds backlog+1 = {syn_limit}")),
            Line::raw(cookies.to_string()),
            Line::raw(format!(
                "dropped {}/s · cookies {}/s",
                rate_text(rate("TCPReqQFullDrop")),
                rate_text(rate("SyncookiesSent"))
            )),
        ],
    }
}

/// The accept queue: established connections against the backlog, and where the backlog comes
/// from.
pub(super) fn accept_queue(row: &Row, t: &Tick) -> Stage<'static> {
    let tun = &t.snapshot.tunables;
    let full = row.overflowed || row.peak > row.backlog || row.depth > row.backlog;
    let oldest = row
        .service
        .as_ref()
        .and_then(|s| s.waiting_oldest_ms.filter(|_| s.waiting > 0));
    Stage {
        title: "Accept queue",
        value: u64::from(row.peak.max(row.depth)),
        limit: u64::from(row.backlog),
        big: format!("{}/{}", row.depth, row.backlog),
        badge: full.then_some("FULL: new connections dropped"),
        gauge_label: None,
        warn: oldest.is_some_and(|ms| ms > ACCEPT_WAIT_MS),
        notes: vec![
            Line::raw("established, waiting for accept()".to_string()),
            Line::raw(match (&row.service, oldest) {
                (None, _) => format!("oldest wait {UNKNOWN}"),
                (Some(_), None) => "none waits".to_string(),
                (Some(_), Some(ms)) => format!("oldest wait {} (head of line)", age_text(ms)),
            }),
            Line::raw(format!(
                "backlog = min(listen(), somaxconn {}) = {}",
                num_or(tun.somaxconn, "?"),
                row.backlog
            )),
            Line::raw(format!("peak since last tick {}", row.peak)),
            Line::raw(format!(
                "listener drops {}/s (packets, any queue) · abort_on_overflow {}",
                rate_text(row.drops_per_s),
                num_or(tun.tcp_abort_on_overflow, "?")
            )),
        ],
    }
}

/// In service: the connections the process accepted — reading requests (unread bytes),
/// writing responses (unsent bytes) — against its open fds and RLIMIT_NOFILE.
pub(super) fn in_service(row: &Row) -> Stage<'static> {
    let owner = tightest_owner(&row.owners);
    let (open, limit) = owner.map_or((0, 0), |p| {
        (p.fds_open.unwrap_or(0), p.fd_limit.unwrap_or(0))
    });
    let s = row.service.as_ref();
    let not_reading = s
        .and_then(|s| s.unread_oldest_ms.filter(|_| s.unread_bytes > 0))
        .is_some_and(|ms| ms >= NOT_READING_MS);
    let slow_readers = s
        .and_then(|s| s.unsent_oldest_ms.filter(|_| s.unsent_bytes > 0))
        .is_some_and(|ms| ms >= SLOW_READER_MS);
    let badge = if all_stopped(&row.owners) {
        Some("STOPPED: cannot accept()")
    } else if limit > 0 && open >= limit {
        Some("EMFILE: out of fds")
    } else if not_reading {
        Some("NOT READING")
    } else {
        None
    };
    let mut notes = match s {
        None => vec![format!("{UNKNOWN} connections unknown (detail: why)")],
        Some(s) => vec![
            format!(
                "reading: {}",
                // Unread counts accepted CLOSE-WAIT children too: say so when they make
                // the count exceed the connections in service.
                queued(
                    s.unread_conns,
                    s.unread_oldest_ms,
                    if s.unread_conns > s.in_service {
                        "unread (incl. CLOSE-WAIT)"
                    } else {
                        "unread"
                    }
                )
            ),
            format!(
                "writing: {}",
                queued(s.unsent_conns, s.unsent_oldest_ms, "unsent")
            ),
        ],
    };
    notes.push(owner.map_or("owner unknown".to_string(), |p| {
        format!("accepted by {}[{}]", safe(&p.comm), p.pid)
    }));
    notes.extend(busiest_line(&row.owners));
    notes.push(if limit > 0 && open * 10 >= limit * 9 {
        "near the fd limit: accept() fails with EMFILE, the queue fills".to_string()
    } else if limit > 0 {
        format!(
            "{} more fit before the fd limit",
            limit.saturating_sub(open)
        )
    } else {
        "fd limit unknown".to_string()
    });
    Stage {
        title: "In service",
        value: open,
        limit,
        big: s.map_or(UNKNOWN.to_string(), |s| s.in_service.to_string()),
        badge,
        gauge_label: (limit > 0).then(|| format!("fds {open}/{limit}")),
        warn: not_reading || slow_readers,
        notes: notes.into_iter().map(Line::raw).collect(),
    }
}

/// `N <what>, oldest A` (connections with unread or unsent bytes; the detail has the bytes),
/// or `none`.
fn queued(conns: u64, oldest: Option<u64>, what: &str) -> String {
    if conns == 0 {
        return "none".into();
    }
    let oldest = oldest.map_or(String::new(), |ms| format!(", oldest {}", age_text(ms)));
    format!("{conns} {what}{oldest}")
}

/// Closing: CLOSE-WAIT (the peer closed, the process has not: a leak when it grows), how long
/// it has risen, and the states of connections the process closed.
pub(super) fn closing(row: &Row) -> Stage<'static> {
    let Some(s) = row.service.as_ref() else {
        return Stage {
            title: "Closing",
            value: 0,
            limit: 0,
            big: UNKNOWN.into(),
            badge: None,
            gauge_label: None,
            warn: false,
            notes: vec![Line::raw("connections unknown (detail: why)")],
        };
    };
    let held = s.close_wait.saturating_sub(s.close_wait_unaccepted);
    let rates = row.service_rates.as_ref();
    let rising = rates.map_or(0.0, |r| r.close_wait_rising_s);
    let growing = rising >= CLOSE_WAIT_RISING_S && held >= CLOSE_WAIT_MIN;
    let mut notes = vec!["in CLOSE-WAIT: peer closed, app not".to_string()];
    if s.close_wait_unaccepted > 0 {
        notes.push(format!(
            "+{} never accepted (clients gave up)",
            s.close_wait_unaccepted
        ));
    }
    if rising > 0.0 {
        let per_s = rates
            .and_then(|r| r.close_wait_growth_per_s)
            .map_or(String::new(), |g| format!(", {g:+.2}/s"));
        notes.push(format!("rising for {rising:.0} s{per_s}"));
    }
    notes.push(format!(
        "FIN-WAIT-1 {} · FIN-WAIT-2 {} · TIME-WAIT {}",
        s.fin_wait1, s.fin_wait2, s.time_wait
    ));
    Stage {
        title: "Closing",
        value: held,
        limit: 0,
        big: held.to_string(),
        badge: growing.then_some("GROWING: a leak?"),
        gauge_label: None,
        warn: growing,
        notes: notes.into_iter().map(Line::raw).collect(),
    }
}

/// True when every holder is stopped (state T, or t: by a tracer): none can call accept().
pub(super) fn all_stopped(owners: &crate::model::Owners) -> bool {
    let p = owners.processes();
    !p.is_empty() && p.iter().all(|p| matches!(p.state, Some('T' | 't')))
}

/// The busiest holder (owners come busiest first) with its state and CPU, e.g.
/// "busiest: nginx[9512] T (stopped), CPU 0%"; `None` before either was read.
pub(super) fn busiest_line(owners: &crate::model::Owners) -> Option<String> {
    let p = owners.processes().first()?;
    if p.state.is_none() && p.cpu_percent.is_none() {
        return None;
    }
    let state = match p.state {
        Some('T') => "T (stopped)".to_string(),
        Some('t') => "t (stopped by a tracer)".to_string(),
        Some('D') => "D (uninterruptible)".to_string(),
        Some('Z') => "Z (zombie)".to_string(),
        Some(c) => c.to_string(),
        None => "?".to_string(),
    };
    let cpu = p
        .cpu_percent
        .map_or("?".to_string(), |c| format!("{c:.0}%"));
    Some(format!(
        "busiest: {}[{}] {state}, CPU {cpu}",
        safe(&p.comm),
        p.pid
    ))
}

#[cfg(test)]
mod tests {
    use super::{all_stopped, busiest_line};
    use crate::model::testing::process_in_state;
    use crate::model::Owners;

    #[test]
    fn a_stopped_holder_is_named_with_its_state_and_cpu() {
        let stopped = Owners::Known {
            processes: vec![process_in_state(9512, "nginx", 'T', Some(0.0), 1)].into(),
        };
        assert!(all_stopped(&stopped));
        assert_eq!(
            busiest_line(&stopped).as_deref(),
            Some("busiest: nginx[9512] T (stopped), CPU 0%")
        );
        let mixed = Owners::Known {
            processes: vec![
                process_in_state(9513, "nginx", 'R', Some(97.4), 1),
                process_in_state(9512, "nginx", 'T', Some(0.0), 1),
            ]
            .into(),
        };
        assert!(!all_stopped(&mixed));
        assert_eq!(
            busiest_line(&mixed).as_deref(),
            Some("busiest: nginx[9513] R, CPU 97%")
        );
        let unread = Owners::Known {
            processes: vec![crate::model::testing::process(1, "x", Some(3), Some(10))].into(),
        };
        assert_eq!(busiest_line(&unread), None);
        assert!(!all_stopped(&unread));
    }
}
