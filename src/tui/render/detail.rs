//! The detail screen of one listener: what is special about it now in words (gone, overflowed),
//! its depth, SYN-RECV and drop charts, and what bounds it (`bounds`).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, SparklineBar, Wrap};
use ratatui::Frame;

use super::bounds::{narrow_side_lines, side_lines};
use super::service::{draw_service, service_lines};
use super::text::{num_or, rate_text, safe, spark_text, wrap};
use super::theme::Theme;
use crate::engine::Engine;
use crate::model::history::ListenerPoint;
use crate::model::Severity;
use crate::tui::app::Row;

/// Draws the detail of `row` in `area`: what is special about it now (gone, overflowed) in
/// words at the top, three charts, beside (wide) or under them what bounds the listener, and
/// the service section (after accept()) across the bottom.
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
    let service = service_lines(row, engine, usize::from(rest.width), theme);
    let lines = if wide {
        side_lines(row, tick, 12, theme)
    } else {
        narrow_side_lines(row, tick, usize::from(rest.width.saturating_sub(2)), theme)
    };
    let h = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
    let (service_h, side_h) = heights(rest.height, wide, h(service.len() + 1), h(lines.len() + 2));
    let [top, service_area] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(service_h)]).areas(rest);
    let [charts, side] = if wide {
        Layout::horizontal([Constraint::Min(40), Constraint::Length(52)]).areas(top)
    } else {
        Layout::vertical([Constraint::Min(0), Constraint::Length(side_h)]).areas(top)
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
    draw_service(f, service_area, row, tick, service, theme);
}

/// Heights of the service section and (narrow) of the side panel in `height` rows, from what
/// they need: the queue charts keep a line each (3), the service section comes next, the
/// side panel gets what is left up to its need; the charts take the rest (boxed from 9 rows).
fn heights(height: u16, wide: bool, service_need: u16, side_need: u16) -> (u16, u16) {
    const CHARTS_MIN: u16 = 3;
    let room = height.saturating_sub(CHARTS_MIN);
    let service = service_need
        .min(room)
        .min(if wide { height / 2 } else { room });
    if wide {
        return (service, 0);
    }
    // A box of fewer than 4 rows shows too little: the room goes to the charts.
    let side = side_need
        .min(room - service)
        .min(height.saturating_sub(9).max(height / 3));
    (service, if side < 4 { 0 } else { side })
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
/// other: boxed from 9 rows, a line each (label, then a text sparkline) below that.
fn draw_charts(f: &mut Frame, area: Rect, row: &Row, engine: &Engine, theme: Theme) {
    let max_depth = u64::from(row.backlog) + 1;
    let syn_now = row.syn_recv.map_or("-".to_string(), |(n, g)| {
        if g > 1 {
            format!("{n} (port group of {g})")
        } else {
            n.to_string()
        }
    });
    let drops_now = (rate_text(row.drops_per_s), num_or(row.drops, "?"));
    if area.height < 9 {
        let charts = [
            (
                format!(
                    "{} accept queue {}/{}, peak {} (full at {max_depth})",
                    safe(&row.endpoint),
                    row.depth,
                    row.backlog,
                    row.peak
                ),
                values(engine, row, |p| f64::from(p.high)),
                Some(max_depth as f64),
                theme.fill(row.peak_fill()),
            ),
            (
                format!("SYN-RECV (half-open) {syn_now}"),
                values(engine, row, |p| f64::from(p.syn_recv)),
                None,
                theme.fg(Color::Cyan),
            ),
            (
                format!(
                    "drops/s (own counter) {} ({} since created)",
                    drops_now.0, drops_now.1
                ),
                values(engine, row, |p| f64::from(p.drops_per_s)),
                None,
                theme.sev(Severity::Critical),
            ),
        ];
        let width = usize::from(area.width);
        // From 6 rows, each label over its sparkline; below, side by side.
        let (label_w, under) = if area.height >= 6 {
            (0, true)
        } else {
            let longest = charts.iter().map(|c| c.0.chars().count()).max();
            (longest.unwrap_or(0).max(width / 2), false)
        };
        let lines: Vec<Line> = charts
            .into_iter()
            .flat_map(|(label, values, max, style)| {
                compact(label, &values, width, label_w, under, max, style)
            })
            .collect();
        f.render_widget(Paragraph::new(lines), area);
        return;
    }
    let [c1, c2, c3] = Layout::vertical([Constraint::Ratio(1, 3); 3]).areas(area);
    let width = usize::from(area.width.saturating_sub(2));
    let window = humantime::format_duration(engine.config().window);
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
                drops_now.0, drops_now.1
            ),
            series(engine, row, width, |p| f64::from(p.drops_per_s)),
            None,
            theme.sev(Severity::Critical),
        ),
        c3,
    );
}

/// `row`'s history as values for a text sparkline (gaps and values not finite `None`).
fn values(engine: &Engine, row: &Row, get: fn(&ListenerPoint) -> f64) -> Vec<Option<f64>> {
    engine.listener(&row.key).map_or_else(Vec::new, |h| {
        h.points
            .iter()
            .map(|p| Some(get(p)).filter(|v| !p.is_gap() && v.is_finite()))
            .collect()
    })
}

/// One chart in text: `label` (padded to `label_w`), then a text sparkline filling the rest
/// of `width` — or the whole of the next line when `under` —, scaled to `max` (or to the
/// largest value shown).
fn compact(
    label: String,
    values: &[Option<f64>],
    width: usize,
    label_w: usize,
    under: bool,
    max: Option<f64>,
    style: Style,
) -> Vec<Line<'static>> {
    let spark_w = if under {
        width
    } else {
        width.saturating_sub(label_w + 1)
    };
    let shown = &values[values.len().saturating_sub(spark_w)..];
    let max = max.unwrap_or_else(|| shown.iter().flatten().fold(1.0f64, |m, v| m.max(*v)));
    let spark = Span::styled(spark_text(shown, spark_w, max), style);
    if under {
        vec![Line::styled(label, style), Line::from(spark)]
    } else {
        vec![Line::from(vec![
            Span::styled(format!("{label:<label_w$} "), style),
            spark,
        ])]
    }
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
