//! The two header lines: host, namespace, kernel and interval; the queue tunables.

use ratatui::text::{Line, Span};

use super::text::{num_or, safe};
use super::theme::Theme;
use crate::model::{Severity, Tick, Tunables};
use crate::tui::app::App;

/// The header: who and where (and whether paused), then the tunables that bound the queues.
pub(super) fn header_lines(
    app: &App,
    tick: Option<&Tick>,
    theme: Theme,
    width: u16,
) -> Vec<Line<'static>> {
    let Some(t) = tick else {
        return vec![
            Line::from(Span::styled("sockq", theme.bold())),
            Line::from("waiting for the first sample…"),
        ];
    };
    vec![
        status_line(app, t, theme),
        tunables_line(app, &t.snapshot.tunables, theme, width),
    ]
}

/// Host, namespace, kernel and interval; PAUSED, and the SYN-RECV age when the CPU budget slows
/// the poll.
fn status_line(app: &App, t: &Tick, theme: Theme) -> Line<'static> {
    let s = &t.snapshot;
    let mut first = vec![
        Span::styled("sockq ", theme.bold()),
        Span::raw(format!(
            " host {}  netns {}  kernel {}  every {}",
            safe(&s.host.hostname),
            safe(&s.netns.label),
            safe(&s.host.kernel),
            humantime::format_duration(app.interval)
        )),
    ];
    if app.paused {
        first.push(Span::styled("  ‖ PAUSED", theme.sev(Severity::Warning)));
    }
    if t.collector.throttled {
        first.push(Span::styled(
            format!(
                "  CPU budget: SYN-RECV {:.0}s old",
                t.collector.syn_recv_age_ms as f64 / 1000.0
            ),
            theme.sev(Severity::Info),
        ));
    }
    Line::from(first)
}

/// The source's status (replay position, say), then each queue tunable, marked when its value
/// invites trouble; names lose their `tcp_` under 100 columns.
fn tunables_line(app: &App, tun: &Tunables, theme: Theme, width: u16) -> Line<'static> {
    let mark = |bad: bool| if bad { "⚠" } else { "" };
    let mut second = Vec::new();
    let items: [(&str, Option<i64>, bool); 4] = [
        (
            "somaxconn",
            tun.somaxconn,
            tun.somaxconn.is_some_and(|v| v < 512),
        ),
        ("tcp_max_syn_backlog", tun.tcp_max_syn_backlog, false),
        (
            "tcp_syncookies",
            tun.tcp_syncookies,
            tun.tcp_syncookies == Some(0),
        ),
        (
            "tcp_abort_on_overflow",
            tun.tcp_abort_on_overflow,
            tun.tcp_abort_on_overflow == Some(1),
        ),
    ];
    for (name, value, bad) in items {
        let name = if width < 100 {
            name.trim_start_matches("tcp_")
        } else {
            name
        };
        second.push(Span::styled(format!("{name} "), theme.dim()));
        let style = if bad {
            theme.sev(Severity::Warning)
        } else {
            theme.bold()
        };
        second.push(Span::styled(
            format!("{}{}  ", num_or(value, "?"), mark(bad)),
            style,
        ));
    }
    if let Some(st) = &app.source_status {
        second.insert(
            0,
            Span::styled(format!("{}  ", safe(st)), theme.sev(Severity::Info)),
        );
    }
    Line::from(second)
}
