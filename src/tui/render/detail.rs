//! The detail screen of one listener: depth, SYN-RECV and drop charts; limits and owners.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, SparklineBar, Wrap};
use ratatui::Frame;

use super::chrome;
use super::text::rate_text;
use super::theme::Theme;
use crate::engine::Engine;
use crate::model::history::ListenerPoint;
use crate::model::labels::tightest_owner;
use crate::model::{Owners, Severity, Tick};
use crate::tui::app::{App, Row};

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

fn detail_side_lines(
    row: &Row,
    tick: Option<&Tick>,
    max_owners: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    let max_depth = u64::from(row.backlog) + 1;
    let mut lines: Vec<Line> = vec![Line::styled("Limits", theme.bold())];
    let tun = tick
        .map(|t| t.snapshot.tunables.clone())
        .unwrap_or_default();
    let v = |x: Option<i64>| x.map_or("?".to_string(), |v| v.to_string());
    lines.push(Line::raw(format!(
        "  backlog {} (queue holds {})",
        row.backlog, max_depth
    )));
    lines.push(Line::raw(format!(
        "  somaxconn {}  syncookies {}",
        v(tun.somaxconn),
        v(tun.tcp_syncookies)
    )));
    lines.push(Line::raw(format!(
        "  tcp_max_syn_backlog {}  abort_on_overflow {}",
        v(tun.tcp_max_syn_backlog),
        v(tun.tcp_abort_on_overflow)
    )));
    if let Some(p) = tightest_owner(&row.owners) {
        lines.push(Line::raw(format!(
            "  RLIMIT_NOFILE {} ({})",
            p.fd_limit.map_or("unlimited".into(), |n| n.to_string()),
            p.comm
        )));
    }
    lines.push(Line::styled("Owners", theme.bold()));
    match &row.owners {
        Owners::Known { processes } if !processes.is_empty() => {
            for p in processes.iter().take(max_owners) {
                // With hundreds of owning processes, sockq re-reads the roomy ones in turn.
                let age = if p.age_ms >= 1000 {
                    format!("  (read {} s ago)", p.age_ms / 1000)
                } else {
                    String::new()
                };
                lines.push(Line::raw(format!(
                    "  {}[{}]  fds {} of {}{age}",
                    p.comm,
                    p.pid,
                    p.fds_open.map_or("?".into(), |n| n.to_string()),
                    p.fd_limit.map_or("unlimited".into(), |n| n.to_string())
                )));
            }
            if processes.len() > max_owners {
                lines.push(Line::styled(
                    format!("  … and {} more", processes.len() - max_owners),
                    theme.dim(),
                ));
            }
        }
        Owners::Known { .. } => lines.push(Line::raw("  none")),
        Owners::Unknown { reason } => {
            lines.push(Line::styled(format!("  unknown: {reason}"), theme.dim()))
        }
    }
    lines
}

pub(super) fn draw_detail(
    f: &mut Frame,
    area: Rect,
    app: &mut App,
    engine: &Engine,
    rows: &[Row],
    theme: Theme,
) {
    let tick = engine.latest();
    let body = chrome(f, area, app, tick, theme);
    let Some(row) = app.selected_row(rows) else {
        f.render_widget(
            Paragraph::new("No listener selected (Esc goes back)."),
            body,
        );
        return;
    };
    let wide = body.width >= 110;
    let lines = detail_side_lines(row, tick, if wide { 12 } else { 3 }, theme);
    let side_h = (lines.len() as u16 + 2).min(body.height / 2);
    let [charts, side] = if wide {
        Layout::horizontal([Constraint::Min(40), Constraint::Length(52)]).areas(body)
    } else {
        Layout::vertical([Constraint::Min(6), Constraint::Length(side_h)]).areas(body)
    };
    let [c1, c2, c3] = Layout::vertical([Constraint::Ratio(1, 3); 3]).areas(charts);
    let width = usize::from(charts.width.saturating_sub(2));
    let window = humantime::format_duration(engine.config().window);
    let max_depth = u64::from(row.backlog) + 1;
    let depth_title = format!(
        " {} accept queue {}/{} now, peak {} (full at {}) ",
        row.endpoint, row.depth, row.backlog, row.peak, max_depth
    );
    let spark = |title: String, data: Vec<SparklineBar>, max: Option<u64>, style: Style| {
        let mut s = Sparkline::default()
            .block(Block::default().borders(Borders::ALL).title(title))
            .data(data)
            .style(style)
            .absent_value_symbol("·");
        if let Some(m) = max {
            s = s.max(m);
        }
        s
    };
    f.render_widget(
        spark(
            depth_title,
            series(engine, row, width, |p| f64::from(p.high)),
            Some(max_depth),
            theme.fill(row.fill()),
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
        spark(
            format!(" SYN-RECV (half-open): {syn_now} now, over {window} "),
            series(engine, row, width, |p| f64::from(p.syn_recv)),
            None,
            theme.fg(Color::Cyan),
        ),
        c2,
    );
    f.render_widget(
        spark(
            format!(
                " drops/s (own counter): {} now, {} since created ",
                rate_text(row.drops_per_s),
                row.drops.map_or("?".into(), |d| d.to_string())
            ),
            series(engine, row, width, |p| f64::from(p.drops_per_s)),
            None,
            theme.sev(Severity::Critical),
        ),
        c3,
    );

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
