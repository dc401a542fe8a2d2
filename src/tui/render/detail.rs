//! The detail screen of one listener: what is special about it now in words (gone, overflowed),
//! its depth, SYN-RECV and drop charts, and what bounds it (`bounds`).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, SparklineBar, Wrap};
use ratatui::Frame;

use super::bounds::{narrow_side_lines, side_lines};
use super::text::{num_or, rate_text, safe, wrap};
use super::theme::Theme;
use crate::engine::Engine;
use crate::model::history::ListenerPoint;
use crate::model::Severity;
use crate::tui::app::Row;

/// Draws the detail of `row` in `area`: what is special about it now (gone, overflowed) in
/// words at the top, three charts, and beside (wide) or under them what bounds the listener.
pub(super) fn draw_detail(f: &mut Frame, area: Rect, row: &Row, engine: &Engine, theme: Theme) {
    let status = status_lines(row, usize::from(area.width), theme);
    let status_h = u16::try_from(status.len())
        .unwrap_or(0)
        .min(area.height / 3);
    let [status_area, rest] =
        Layout::vertical([Constraint::Length(status_h), Constraint::Min(0)]).areas(area);
    f.render_widget(Paragraph::new(status), status_area);
    let wide = rest.width >= 110;
    let tick = engine.latest();
    let lines = if wide {
        side_lines(row, tick, 12, theme)
    } else {
        narrow_side_lines(row, tick, usize::from(rest.width.saturating_sub(2)), theme)
    };
    // Under the charts: what the lines need, leaving the three charts a line of data each.
    let side_h = (u16::try_from(lines.len()).unwrap_or(u16::MAX) + 2)
        .min(rest.height.saturating_sub(9).max(rest.height / 3));
    let [charts, side] = if wide {
        Layout::horizontal([Constraint::Min(40), Constraint::Length(52)]).areas(rest)
    } else {
        Layout::vertical([Constraint::Min(0), Constraint::Length(side_h)]).areas(rest)
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

/// What is special about the listener now, in words: gone (since when), or its accept queue
/// overflowed in this tick — seen by a poll, or proven by the drop counters between two polls.
fn status_lines(row: &Row, width: usize, theme: Theme) -> Vec<Line<'static>> {
    let drops = row
        .drops_delta
        .map_or("its drop counter rose".to_string(), |d| {
            format!("{d} drops this tick")
        });
    let (text, style) = if row.gone {
        let ago = row.gone_s.map_or(String::new(), |s| format!(" {s} s ago"));
        (
            format!("GONE{ago}: this listener is no longer in the kernel's table; its last numbers are shown."),
            theme.sev(Severity::Warning),
        )
    } else if row.overflow_proven {
        (
            format!(
                "Accept queue overflowed between polls: {drops} (counter-proven): the queue held {} (backlog+1) though no poll saw it.",
                u64::from(row.backlog) + 1
            ),
            theme.sev(Severity::Critical),
        )
    } else if row.overflowed {
        (
            format!(
                "Accept queue overflowed: a poll saw it full ({}/{}); {drops}.",
                row.peak, row.backlog
            ),
            theme.sev(Severity::Critical),
        )
    } else {
        return Vec::new();
    };
    wrap(&text, width)
        .into_iter()
        .map(|l| Line::styled(l, style))
        .collect()
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
