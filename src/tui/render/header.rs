//! The two header lines: host, namespace, kernel and interval; the queue tunables. A line too
//! wide for the terminal drops its least important parts first, and is cut with `…` only when
//! what is left still does not fit.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::text::{num_or, safe, truncate};
use super::theme::Theme;
use crate::model::{Severity, Tick, Tunables};
use crate::tui::app::App;

/// A part of a header line, and how readily it goes when the line is too wide (higher first;
/// 0 never).
struct Part {
    spans: Vec<Span<'static>>,
    drop_rank: u8,
}

impl Part {
    fn new(drop_rank: u8, spans: Vec<Span<'static>>) -> Self {
        Part { spans, drop_rank }
    }

    fn width(&self) -> usize {
        self.spans.iter().map(|s| s.content.chars().count()).sum()
    }
}

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
    let width = usize::from(width);
    vec![
        fit(status_parts(app, t, theme), width),
        fit(
            tunables_parts(app, &t.snapshot.tunables, theme, width),
            width,
        ),
    ]
}

/// The parts that fit `width`, the most readily dropped going first (the order kept); the rest
/// cut with `…` if it still does not fit.
fn fit(mut parts: Vec<Part>, width: usize) -> Line<'static> {
    while parts.iter().map(Part::width).sum::<usize>() > width {
        let Some((i, _)) = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.drop_rank > 0)
            .max_by_key(|(i, p)| (p.drop_rank, *i))
        else {
            break;
        };
        parts.remove(i);
    }
    let mut left = width;
    let mut spans = Vec::new();
    for span in parts.into_iter().flat_map(|p| p.spans) {
        let w = span.content.chars().count();
        if w > left {
            spans.push(Span::styled(truncate(&span.content, left), span.style));
            break;
        }
        left -= w;
        spans.push(span);
    }
    Line::from(spans)
}

/// Host, namespace, kernel and interval; PAUSED, and the SYN-RECV age when the CPU budget slows
/// the poll. The kernel goes first when the line is too wide, then the interval, the host.
fn status_parts(app: &App, t: &Tick, theme: Theme) -> Vec<Part> {
    let s = &t.snapshot;
    let raw = |text: String| vec![Span::raw(text)];
    let mut parts = vec![
        Part::new(0, vec![Span::styled("sockq ", theme.bold())]),
        Part::new(2, raw(format!(" host {}", safe(&s.host.hostname)))),
        Part::new(1, raw(format!("  netns {}", safe(&s.netns.label)))),
        Part::new(4, raw(format!("  kernel {}", safe(&s.host.kernel)))),
        Part::new(
            3,
            raw(format!(
                "  every {}",
                humantime::format_duration(app.interval)
            )),
        ),
    ];
    if app.paused {
        let paused = Span::styled("  ‖ PAUSED", theme.sev(Severity::Warning));
        parts.push(Part::new(0, vec![paused]));
    }
    if t.collector.throttled {
        let age = t.collector.syn_recv_age_ms as f64 / 1000.0;
        let budget = Span::styled(
            format!("  CPU budget: SYN-RECV {age:.0}s old"),
            theme.sev(Severity::Info),
        );
        parts.push(Part::new(2, vec![budget]));
    }
    parts
}

/// The source's status (replay position, say), then each queue tunable, marked when its value
/// invites trouble; names lose their `tcp_` under 100 columns. tcp_max_syn_backlog (which
/// matters only with syncookies off) goes first when the line is too wide, then
/// abort_on_overflow.
fn tunables_parts(app: &App, tun: &Tunables, theme: Theme, width: usize) -> Vec<Part> {
    let items: [(&str, Option<i64>, bool, u8); 4] = [
        (
            "somaxconn",
            tun.somaxconn,
            tun.somaxconn.is_some_and(|v| v < 512),
            1,
        ),
        ("tcp_max_syn_backlog", tun.tcp_max_syn_backlog, false, 3),
        (
            "tcp_syncookies",
            tun.tcp_syncookies,
            tun.tcp_syncookies == Some(0),
            1,
        ),
        (
            "tcp_abort_on_overflow",
            tun.tcp_abort_on_overflow,
            tun.tcp_abort_on_overflow == Some(1),
            2,
        ),
    ];
    let mut parts = Vec::new();
    if let Some(st) = &app.source_status {
        let status = Span::styled(format!("{}  ", safe(st)), theme.sev(Severity::Info));
        parts.push(Part::new(0, vec![status]));
    }
    for (name, value, bad, rank) in items {
        let name = if width < 100 {
            name.trim_start_matches("tcp_")
        } else {
            name
        };
        let (mark, style): (&str, Style) = if bad {
            ("⚠", theme.sev(Severity::Warning))
        } else {
            ("", theme.bold())
        };
        parts.push(Part::new(
            rank,
            vec![
                Span::styled(format!("{name} "), theme.dim()),
                Span::styled(format!("{}{mark}  ", num_or(value, "?")), style),
            ],
        ));
    }
    parts
}
