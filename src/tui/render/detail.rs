//! The detail screen of one listener: depth, SYN-RECV and drop charts; limits and owners.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, SparklineBar, Wrap};
use ratatui::Frame;

use super::text::{num_or, rate_text, safe};
use super::theme::Theme;
use crate::engine::Engine;
use crate::model::history::ListenerPoint;
use crate::model::labels::tightest_owner;
use crate::model::{Owners, ProcessInfo, Severity, Tick};
use crate::tui::app::Row;

/// Draws the detail of `row` in `area`: three charts, and beside (wide) or under them what bounds
/// the listener.
pub(super) fn draw_detail(f: &mut Frame, area: Rect, row: &Row, engine: &Engine, theme: Theme) {
    let wide = area.width >= 110;
    let lines = side_lines(row, engine.latest(), if wide { 12 } else { 3 }, theme);
    let side_h = (lines.len() as u16 + 2).min(area.height / 2);
    let [charts, side] = if wide {
        Layout::horizontal([Constraint::Min(40), Constraint::Length(52)]).areas(area)
    } else {
        Layout::vertical([Constraint::Min(6), Constraint::Length(side_h)]).areas(area)
    };
    draw_charts(f, charts, row, engine, theme);
    f.render_widget(
        Paragraph::new(lines)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" Who and what bounds it "),
            )
            .wrap(Wrap { trim: false }),
        side,
    );
}

/// The accept-queue depth, SYN-RECV and drops of `row` over the history window, one above the
/// other.
fn draw_charts(f: &mut Frame, area: Rect, row: &Row, engine: &Engine, theme: Theme) {
    let [c1, c2, c3] = Layout::vertical([Constraint::Ratio(1, 3); 3]).areas(area);
    let width = usize::from(area.width.saturating_sub(2));
    let window = humantime::format_duration(engine.config().window);
    let max_depth = u64::from(row.backlog) + 1;
    let depth_title = format!(
        " {} accept queue {}/{} now, peak {} (full at {}) ",
        safe(&row.endpoint),
        row.depth,
        row.backlog,
        row.peak,
        max_depth
    );
    f.render_widget(
        chart(
            depth_title,
            series(engine, row, width, |p| f64::from(p.high)),
            Some(max_depth),
            theme.fill(row.peak_fill()),
        ),
        c1,
    );
    let syn_now = row.syn_recv.map_or("-".to_string(), |(n, g)| {
        if g > 1 {
            format!("{n} (port group of {g})")
        } else {
            n.to_string()
        }
    });
    f.render_widget(
        chart(
            format!(" SYN-RECV (half-open): {syn_now} now, over {window} "),
            series(engine, row, width, |p| f64::from(p.syn_recv)),
            None,
            theme.fg(Color::Cyan),
        ),
        c2,
    );
    f.render_widget(
        chart(
            format!(
                " drops/s (own counter): {} now, {} since created ",
                rate_text(row.drops_per_s),
                num_or(row.drops, "?")
            ),
            series(engine, row, width, |p| f64::from(p.drops_per_s)),
            None,
            theme.sev(Severity::Critical),
        ),
        c3,
    );
}

/// One chart: a boxed sparkline, gaps drawn as `·`, scaled to `max` (or to its data).
fn chart(
    title: String,
    data: Vec<SparklineBar>,
    max: Option<u64>,
    style: Style,
) -> Sparkline<'static> {
    let mut s = Sparkline::default()
        .block(Block::default().borders(Borders::ALL).title(title))
        .data(data)
        .style(style)
        .absent_value_symbol("·");
    if let Some(m) = max {
        s = s.max(m);
    }
    s
}

/// The last `width` points of `row`'s history as sparkline bars, `get` picking the value; gaps
/// (and values that are not finite) absent.
fn series<F: Fn(&ListenerPoint) -> f64>(
    engine: &Engine,
    row: &Row,
    width: usize,
    get: F,
) -> Vec<SparklineBar> {
    let Some(h) = engine.listener(&row.key) else {
        return Vec::new();
    };
    let pts: Vec<&ListenerPoint> = h.points.iter().collect();
    let start = pts.len().saturating_sub(width);
    pts[start..]
        .iter()
        .map(|p| {
            let v = get(p);
            SparklineBar::from((!p.is_gap() && v.is_finite()).then(|| v.round().max(0.0) as u64))
        })
        .collect()
}

/// The side panel: the limits that bound the queue, then at most `max_owners` owning processes.
fn side_lines(
    row: &Row,
    tick: Option<&Tick>,
    max_owners: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    let mut lines = limit_lines(row, tick, theme);
    lines.push(Line::styled("Owners", theme.bold()));
    match &row.owners {
        Owners::Known { processes } if !processes.is_empty() => {
            lines.extend(owner_lines(processes, max_owners, theme));
        }
        Owners::Known { .. } => lines.push(Line::raw("  none")),
        Owners::Unknown { reason } => lines.push(Line::styled(
            format!("  unknown: {}", safe(reason)),
            theme.dim(),
        )),
    }
    lines
}

/// Backlog, the tunables and the tightest owner's fd limit.
fn limit_lines(row: &Row, tick: Option<&Tick>, theme: Theme) -> Vec<Line<'static>> {
    let max_depth = u64::from(row.backlog) + 1;
    let mut lines: Vec<Line> = vec![Line::styled("Limits", theme.bold())];
    let tun = tick
        .map(|t| t.snapshot.tunables.clone())
        .unwrap_or_default();
    lines.push(Line::raw(format!(
        "  backlog {} (queue holds {})",
        row.backlog, max_depth
    )));
    lines.push(Line::raw(format!(
        "  somaxconn {}  syncookies {}",
        num_or(tun.somaxconn, "?"),
        num_or(tun.tcp_syncookies, "?")
    )));
    lines.push(Line::raw(format!(
        "  tcp_max_syn_backlog {}  abort_on_overflow {}",
        num_or(tun.tcp_max_syn_backlog, "?"),
        num_or(tun.tcp_abort_on_overflow, "?")
    )));
    if let Some(p) = tightest_owner(&row.owners) {
        lines.push(Line::raw(format!(
            "  RLIMIT_NOFILE {} ({})",
            num_or(p.fd_limit, "unlimited"),
            safe(&p.comm)
        )));
    }
    lines
}

/// One line per owning process (at most `max`), then how many more there are.
fn owner_lines(processes: &[ProcessInfo], max: usize, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for p in processes.iter().take(max) {
        // With hundreds of owning processes, sockq re-reads the roomy ones in turn.
        let age = if p.age_ms >= 1000 {
            format!("  (read {} s ago)", p.age_ms / 1000)
        } else {
            String::new()
        };
        lines.push(Line::raw(format!(
            "  {}[{}]  fds {} of {}{age}",
            safe(&p.comm),
            p.pid,
            num_or(p.fds_open, "?"),
            num_or(p.fd_limit, "unlimited")
        )));
    }
    if processes.len() > max {
        lines.push(Line::styled(
            format!("  … and {} more", processes.len() - max),
            theme.dim(),
        ));
    }
    lines
}
