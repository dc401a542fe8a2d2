//! Drawing the dashboard. Renders from the model (engine) and the dashboard state only.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, Gauge, Paragraph, Row as TRow, Sparkline, SparklineBar, Table,
    Wrap,
};
use ratatui::Frame;

use super::app::{App, Row, Screen};
use crate::engine::Engine;
use crate::model::history::ListenerPoint;
use crate::model::labels::{fds_label, process_label, tightest_owner};
use crate::model::meta::QUEUE_COUNTER_INFO;
use crate::model::Owners;
use crate::model::Tick;
use crate::model::{Finding, Severity};

/// Styles, with or without colour (NO_COLOR keeps severity visible through labels and bold).
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    color: bool,
}

impl Theme {
    /// A theme.
    pub fn new(color: bool) -> Self {
        Self { color }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    fn sev(&self, s: Severity) -> Style {
        match s {
            Severity::Critical => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Severity::Warning => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Severity::Info => self.fg(Color::Cyan),
        }
    }

    fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    fn fill(&self, fill: f64) -> Style {
        if fill > 1.0 {
            self.fg(Color::Red).add_modifier(Modifier::BOLD)
        } else if fill >= 0.8 {
            self.fg(Color::Yellow)
        } else {
            self.fg(Color::Green)
        }
    }

    fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}

const SPARK: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A text sparkline of the last `width` points (gaps blank), scaled to `max`.
pub fn spark_text(values: &[Option<f64>], width: usize, max: f64) -> String {
    let start = values.len().saturating_sub(width);
    let mut s: String = values[start..]
        .iter()
        .map(|v| match v {
            None => ' ',
            Some(v) if *v <= 0.0 || max <= 0.0 => '▁',
            Some(v) => {
                // Anything above zero is visibly above the zero line.
                let i = ((v / max).min(1.0) * 8.0).ceil() as usize;
                SPARK[i.clamp(2, 8)]
            }
        })
        .collect();
    let have = s.chars().count();
    if have < width {
        s = " ".repeat(width - have) + &s;
    }
    s
}

fn rate_text(r: Option<f64>) -> String {
    match r {
        None => "-".into(),
        Some(r) if r >= 100.0 => format!("{r:.0}"),
        Some(r) => format!("{r:.1}"),
    }
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// Draws the whole dashboard.
pub fn draw(f: &mut Frame, app: &mut App, engine: &Engine) {
    let area = f.area();
    let theme = Theme::new(app.color);
    if area.width < 40 || area.height < 10 {
        let msg = format!(
            "sockq: terminal too small ({}x{}); need 40x10. q quits.",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let rows = app.rows(engine);
    match app.screen {
        Screen::Main => draw_main(f, area, app, engine, &rows, theme),
        Screen::Detail => draw_detail(f, area, app, engine, &rows, theme),
        Screen::Pipeline => draw_pipeline(f, area, app, engine, &rows, theme),
    }
    if app.help {
        draw_help(f, area, app.lab.is_some(), theme);
    }
}

fn header_lines(app: &App, tick: Option<&Tick>, theme: Theme, width: u16) -> Vec<Line<'static>> {
    let Some(t) = tick else {
        return vec![
            Line::from(Span::styled("sockq", theme.bold())),
            Line::from("waiting for the first sample…"),
        ];
    };
    let s = &t.snapshot;
    let mut first = vec![
        Span::styled("sockq ", theme.bold()),
        Span::raw(format!(
            " host {}  netns {}  kernel {}  every {}",
            s.host.hostname,
            s.netns.label,
            s.host.kernel,
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
    let tun = &s.tunables;
    let mark = |bad: bool| if bad { "⚠" } else { "" };
    let v = |x: Option<i64>| x.map_or("?".to_string(), |v| v.to_string());
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
        second.push(Span::styled(format!("{}{}  ", v(value), mark(bad)), style));
    }
    if let Some(st) = &app.source_status {
        second.insert(
            0,
            Span::styled(format!("{st}  "), theme.sev(Severity::Info)),
        );
    }
    vec![Line::from(first), Line::from(second)]
}

const STRIP: [usize; 5] = [0, 1, 2, 3, 4];

fn draw_counters(f: &mut Frame, area: Rect, engine: &Engine, theme: Theme) {
    let block = Block::default().borders(Borders::TOP).title(Span::styled(
        " Kernel counters, per second (namespace-wide) ",
        theme.dim(),
    ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let cols = Layout::horizontal([Constraint::Ratio(1, 5); 5]).split(inner);
    let tick = engine.latest();
    for (col, &i) in cols.iter().zip(STRIP.iter()) {
        let info = &QUEUE_COUNTER_INFO[i];
        let rate = tick.and_then(|t| t.counter_rates.get(info.name).copied().flatten());
        let w = usize::from(col.width.saturating_sub(1));
        let style = if rate.is_some_and(|r| r > 0.0) {
            theme.sev(Severity::Critical)
        } else {
            theme.bold()
        };
        let history: Vec<Option<f64>> = engine
            .counter_history(info.name)
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default();
        let max = history.iter().flatten().fold(0.0f64, |a, &b| a.max(b));
        let rate_s = format!("{}/s ", rate_text(rate));
        let spark_w = w.saturating_sub(rate_s.chars().count());
        let mut lines = vec![
            Line::styled(
                truncate(
                    if info.name.len() <= w {
                        info.name
                    } else {
                        info.short
                    },
                    w,
                ),
                theme.dim(),
            ),
            Line::from(vec![
                Span::styled(rate_s, style),
                Span::styled(spark_text(&history, spark_w, max.max(1.0)), style),
            ]),
        ];
        if col.height >= 3 {
            lines.push(Line::styled(
                truncate(counter_hint(info.name), w),
                theme.dim(),
            ));
        }
        f.render_widget(Paragraph::new(lines), *col);
    }
}

/// A few words on what a counter means, for the counter strip.
pub fn counter_hint(name: &str) -> &'static str {
    match name {
        "ListenOverflows" => "accept queue full",
        "ListenDrops" => "all listen drops, incl. overflows",
        "TCPReqQFullDrop" => "SYN dropped: SYN queue full, no cookies",
        "TCPReqQFullDoCookies" => "SYN queue full: cookie sent",
        "SyncookiesSent" => "SYN cookies sent",
        _ => "",
    }
}

/// The accept-queue gauge as text: a bar of `width` cells filled to depth/backlog, a `|` at the
/// peak, `!` when over the backlog.
pub fn gauge_text(depth: u32, peak: u32, backlog: u32, width: usize) -> String {
    if width == 0 {
        return String::new();
    }
    let cells = |v: u32| -> usize {
        let frac = f64::from(v) / f64::from(backlog.max(1));
        ((frac.min(1.0)) * width as f64).round() as usize
    };
    let filled = cells(depth).min(width);
    let mut bar: Vec<char> = (0..width)
        .map(|i| if i < filled { '█' } else { '░' })
        .collect();
    if peak > depth {
        let p = cells(peak).clamp(1, width) - 1;
        if p >= filled {
            bar[p] = '|';
        }
    }
    if depth > backlog || peak > backlog {
        bar[width - 1] = '!';
    }
    bar.into_iter().collect()
}

struct Col {
    width: u16,
    priority: u8,
}

fn table_columns(width: u16, endpoint_w: u16) -> Vec<(usize, u16)> {
    let cols = [
        Col {
            width: endpoint_w,
            priority: 0,
        },
        Col {
            width: 16,
            priority: 2,
        },
        Col {
            width: 22,
            priority: 0,
        },
        Col {
            width: 5,
            priority: 3,
        },
        Col {
            width: 8,
            priority: 4,
        },
        Col {
            width: 7,
            priority: 1,
        },
        Col {
            width: 11,
            priority: 5,
        },
        Col {
            width: 24,
            priority: 6,
        },
    ];
    let mut chosen: Vec<usize> = Vec::new();
    for pr in 0..=6u8 {
        for (i, c) in cols.iter().enumerate() {
            if c.priority == pr {
                let used: u16 = chosen.iter().map(|&j| cols[j].width + 1).sum();
                if used + c.width <= width {
                    chosen.push(i);
                }
            }
        }
    }
    chosen.sort_unstable();
    let mut out: Vec<(usize, u16)> = chosen.iter().map(|&i| (i, cols[i].width)).collect();
    // Give spare width to the trend (or the address when there is no trend).
    let used: u16 = out.iter().map(|(_, w)| w + 1).sum();
    let spare = width.saturating_sub(used);
    let target = out.iter().position(|(i, _)| *i == 7).unwrap_or(0);
    if let Some(c) = out.get_mut(target) {
        c.1 += spare.min(if target == 0 { 20 } else { 36 });
    }
    out
}

const TITLES: [&str; 8] = [
    "ADDRESS",
    "PROCESS",
    "ACCEPT QUEUE",
    "FILL",
    "SYN-RECV",
    "DROPS/s",
    "FDS",
    "DEPTH TREND",
];

fn depth_history(engine: &Engine, row: &Row) -> Vec<Option<f64>> {
    engine
        .listener(&row.key)
        .map(|h| {
            h.points
                .iter()
                .map(|p: &ListenerPoint| (!p.is_gap()).then_some(f64::from(p.high)))
                .collect()
        })
        .unwrap_or_default()
}

/// An address shortened in the middle so the port stays visible.
fn fit_endpoint(ep: &str, w: usize) -> String {
    if ep.chars().count() <= w {
        return ep.to_string();
    }
    let Some(colon) = ep.rfind(':') else {
        return truncate(ep, w);
    };
    let (addr, port) = ep.split_at(colon);
    let keep = w.saturating_sub(port.chars().count() + 1);
    if keep == 0 {
        return truncate(ep, w);
    }
    format!("{}…{port}", addr.chars().take(keep).collect::<String>())
}

/// `comm[pid]` shortened in the name so the pid stays visible.
fn fit_process(owners: &Owners, w: usize) -> String {
    let label = process_label(owners);
    if label.chars().count() <= w {
        return label;
    }
    match label.find('[') {
        Some(i) => {
            let (name, rest) = label.split_at(i);
            let keep = w.saturating_sub(rest.chars().count() + 1);
            if keep == 0 {
                truncate(&label, w)
            } else {
                format!("{}…{rest}", name.chars().take(keep).collect::<String>())
            }
        }
        None => truncate(&label, w),
    }
}

fn cell_text(i: usize, row: &Row, width: u16, engine: &Engine) -> String {
    let w = usize::from(width);
    match i {
        0 => fit_endpoint(&row.endpoint, w),
        1 => fit_process(&row.owners, w),
        2 => {
            let nums = format!(" {}/{}", row.depth, row.backlog);
            let bar_w = w.saturating_sub(nums.chars().count()).max(1);
            truncate(
                &(gauge_text(row.depth, row.peak, row.backlog, bar_w) + &nums),
                w,
            )
        }
        3 => format!("{:.0}%", row.fill() * 100.0),
        4 => match row.syn_recv {
            None => "-".into(),
            Some((n, g)) if g > 1 => format!("{n}/{g}g"),
            Some((n, _)) => n.to_string(),
        },
        5 => {
            if row.unix {
                "-".into()
            } else {
                rate_text(row.drops_per_s)
            }
        }
        6 => truncate(&fds_label(&row.owners), w),
        _ => {
            let hist = depth_history(engine, row);
            spark_text(&hist, w, f64::from(row.backlog + 1))
        }
    }
}

fn draw_listeners(
    f: &mut Frame,
    area: Rect,
    app: &mut App,
    engine: &Engine,
    rows: &[Row],
    theme: Theme,
) {
    let unknown = rows
        .iter()
        .any(|r| matches!(r.owners, Owners::Unknown { .. }) && !r.gone);
    let title = format!(
        " Listeners ({}{}) sort: {}{}{} ",
        rows.len(),
        if app.show_unix { " incl. UNIX" } else { "" },
        app.sort.label(),
        if app.filter.is_empty() {
            String::new()
        } else {
            format!("  filter: {}", app.filter)
        },
        if unknown {
            "  ? = owner unknown (Enter: why)"
        } else {
            ""
        }
    );
    let block = Block::default()
        .borders(Borders::TOP)
        .title(Span::styled(title, theme.bold()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if rows.is_empty() {
        let msg = if engine.latest().is_none() {
            "Waiting for the first sample…"
        } else if app.filter.is_empty() {
            "No listening sockets in this namespace."
        } else {
            "No listener matches the filter (Esc clears it)."
        };
        f.render_widget(Paragraph::new(msg).style(theme.dim()), inner);
        return;
    }
    let endpoint_w = rows
        .iter()
        .map(|r| r.endpoint.chars().count())
        .max()
        .unwrap_or(7)
        .clamp(12, if inner.width < 100 { 24 } else { 40 }) as u16;
    let cols = table_columns(inner.width, endpoint_w);
    let visible = usize::from(inner.height.saturating_sub(1));
    let sel = app.selected_index(rows).unwrap_or(0);
    if sel < app.scroll {
        app.scroll = sel;
    } else if visible > 0 && sel >= app.scroll + visible {
        app.scroll = sel + 1 - visible;
    }
    app.scroll = app.scroll.min(rows.len().saturating_sub(1));
    app.table_top = inner.y + 1;
    let header = TRow::new(cols.iter().map(|(i, _)| Cell::from(TITLES[*i]))).style(theme.dim());
    let selected_key = app.selected;
    let body = rows
        .iter()
        .enumerate()
        .skip(app.scroll)
        .take(visible)
        .map(|(n, r)| {
            let cells = cols.iter().map(|(i, w)| {
                let text = cell_text(*i, r, *w, engine);
                let style = match i {
                    2 | 3 => theme.fill(r.fill()),
                    5 if r.drops_per_s.is_some_and(|d| d > 0.0) => theme.sev(Severity::Critical),
                    _ => Style::default(),
                };
                Cell::from(Span::styled(text, style))
            });
            let mut style = if r.gone {
                theme.dim()
            } else {
                Style::default()
            };
            if selected_key == Some(r.key) || (selected_key.is_none() && n == 0) {
                style = style.patch(theme.selected());
            }
            TRow::new(cells).style(style)
        });
    let widths: Vec<Constraint> = cols.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    f.render_widget(
        Table::new(body, widths).header(header).column_spacing(1),
        inner,
    );
}

fn finding_lines(findings: &[Finding], with_next: bool, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for fd in findings {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", fd.severity.label()), theme.sev(fd.severity)),
            Span::raw(fd.message.clone()),
        ]));
        if with_next {
            lines.push(Line::styled(format!("  → {}", fd.next), theme.dim()));
        }
    }
    lines
}

fn draw_findings(f: &mut Frame, area: Rect, engine: &Engine, theme: Theme) {
    let Some(tick) = engine.latest() else {
        let block = Block::default()
            .borders(Borders::TOP)
            .title(Span::styled(" Findings ", theme.bold()));
        let inner = block.inner(area);
        f.render_widget(block, area);
        f.render_widget(
            Paragraph::new("Waiting for the first sample…").style(theme.dim()),
            inner,
        );
        return;
    };
    let findings = tick.findings.as_slice();
    let blind = &tick.snapshot.blind_spots;
    let title = match (findings.len(), blind.len()) {
        (0, 0) => " Findings: all quiet ".to_string(),
        (0, b) => format!(" Findings: none · {b} thing(s) not seen "),
        (n, 0) => format!(" Findings ({n}) "),
        (n, b) => format!(" Findings ({n}) · {b} thing(s) not seen "),
    };
    let block = Block::default()
        .borders(Borders::TOP)
        .title(Span::styled(title, theme.bold()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let width = usize::from(inner.width.max(1));
    let wrapped = |s: &str| (s.chars().count() + 5).div_ceil(width).max(1);
    let with_next = usize::from(inner.height)
        >= findings
            .iter()
            .map(|f| wrapped(&f.message) + wrapped(&f.next))
            .sum::<usize>()
            + blind.iter().map(|b| wrapped(b)).sum::<usize>();
    let mut lines = if findings.is_empty() && blind.is_empty() {
        vec![Line::styled(
            "No queue is full, nothing is dropped, no limit is near.",
            theme.dim(),
        )]
    } else {
        finding_lines(findings, with_next, theme)
    };
    // What sockq could not see is said on screen, never shown as a silent zero.
    for b in blind {
        lines.push(Line::from(vec![
            Span::styled("NOT SEEN ", theme.sev(Severity::Info)),
            Span::raw(b.clone()),
        ]));
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

fn footer(app: &App, theme: Theme) -> Line<'static> {
    if let Some(input) = &app.filter_input {
        return Line::from(vec![
            Span::styled("filter: ", theme.bold()),
            Span::raw(format!("{input}█")),
            Span::styled("  Enter apply · Esc cancel", theme.dim()),
        ]);
    }
    let keys = match app.screen {
        Screen::Main => {
            "q quit ? help ↑↓ ⏎ detail p pipeline s sort / filter u unix ␣ pause +/- interval"
        }
        Screen::Detail => "Esc back  ↑↓ other listener  p pipeline  space pause  ? help  q quit",
        Screen::Pipeline => "Esc/p back  ↑↓ other listener  space pause  ? help  q quit",
    };
    Line::styled(keys, theme.dim())
}

fn draw_main(
    f: &mut Frame,
    area: Rect,
    app: &mut App,
    engine: &Engine,
    rows: &[Row],
    theme: Theme,
) {
    let area = with_lab_panel(f, area, app, false, theme);
    let tick = engine.latest();
    let big = area.height >= 40;
    let counters_h = if big { 4 } else { 3 };
    // The findings get the lines they need (wrapped at the width), up to half of what is left
    // after the table shows its rows; the table gets the rest.
    let findings = tick.map(|t| t.findings.as_slice()).unwrap_or(&[]);
    let width = usize::from(area.width.max(1));
    let wrapped = |s: &str| (s.chars().count() + 5).div_ceil(width).max(1);
    let with_next: usize = findings
        .iter()
        .map(|f| wrapped(&f.message) + wrapped(&f.next))
        .sum();
    let blind: usize = tick.map_or(0, |t| {
        t.snapshot.blind_spots.iter().map(|b| wrapped(b)).sum()
    });
    let with_next = with_next + blind;
    let bare: usize = findings.iter().map(|f| wrapped(&f.message)).sum::<usize>() + blind;
    let free = usize::from(area.height).saturating_sub(2 + usize::from(counters_h) + 1);
    let table_need = rows.len() + 2;
    let room = free.saturating_sub(table_need.min(free / 2)).max(free / 3);
    let need = if with_next <= room { with_next } else { bare };
    let findings_h = (need.max(1) + 1).min(room.max(2)) as u16;
    let [head, counters, table, findings, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(counters_h),
        Constraint::Min(4),
        Constraint::Length(findings_h),
        Constraint::Length(1),
    ])
    .areas(area);
    f.render_widget(
        Paragraph::new(header_lines(app, tick, theme, area.width)),
        head,
    );
    draw_counters(f, counters, engine, theme);
    draw_listeners(f, table, app, engine, rows, theme);
    draw_findings(f, findings, engine, theme);
    f.render_widget(Paragraph::new(footer(app, theme)), foot);
}

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

/// Header, footer and (during a lab) the short narration strip of the detail and pipeline
/// screens; returns the body left for the screen itself.
fn chrome(f: &mut Frame, area: Rect, app: &App, tick: Option<&Tick>, theme: Theme) -> Rect {
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(6),
        Constraint::Length(1),
    ])
    .areas(area);
    f.render_widget(
        Paragraph::new(header_lines(app, tick, theme, area.width)),
        head,
    );
    f.render_widget(Paragraph::new(footer(app, theme)), foot);
    with_lab_panel(f, body, app, true, theme)
}

fn draw_detail(
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

/// One stage box of the pipeline view.
struct Stage<'a> {
    title: &'a str,
    value: u64,
    limit: u64,
    /// The number shown big (readable from the back of a room).
    big: String,
    /// A word under it (e.g. FULL).
    badge: Option<&'static str>,
    notes: Vec<Line<'static>>,
}

/// The largest font that fits `text` in `area`: (pixel size, rows it takes).
fn big_font(text: &str, area: Rect) -> Option<(tui_big_text::PixelSize, u16)> {
    use tui_big_text::PixelSize;
    let n = text.chars().count() as u16;
    [
        (PixelSize::Full, 8u16, 8u16),
        (PixelSize::HalfHeight, 8, 4),
        (PixelSize::Quadrant, 4, 4),
        (PixelSize::Octant, 4, 2),
    ]
    .into_iter()
    .find(|(_, w, h)| n * w <= area.width && *h + 4 <= area.height)
    .map(|(p, _, h)| (p, h))
}

fn stage(f: &mut Frame, area: Rect, st: Stage, theme: Theme) {
    let Stage {
        title,
        value,
        limit,
        big,
        badge,
        notes,
    } = st;
    let fill = if limit == 0 {
        0.0
    } else {
        value as f64 / limit as f64
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.fill(fill))
        .title(Span::styled(format!(" {title} "), theme.bold()))
        .title_alignment(Alignment::Center);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let font = big_font(&big, inner);
    let big_h = font.map_or(1, |(_, h)| h);
    let [number, badge_area, gauge, rest] = Layout::vertical([
        Constraint::Length(big_h),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);
    match font {
        Some((size, _)) => f.render_widget(
            tui_big_text::BigText::builder()
                .pixel_size(size)
                .style(theme.fill(fill).add_modifier(Modifier::BOLD))
                .lines(vec![Line::raw(big.clone())])
                .centered()
                .build(),
            number,
        ),
        None => f.render_widget(
            Paragraph::new(Span::styled(big, theme.bold())).alignment(Alignment::Center),
            number,
        ),
    }
    if let Some(b) = badge {
        f.render_widget(
            Paragraph::new(Span::styled(b, theme.sev(Severity::Critical)))
                .alignment(Alignment::Center),
            badge_area,
        );
    }
    let ratio = if limit == 0 { 0.0 } else { fill.min(1.0) };
    f.render_widget(
        Gauge::default()
            .ratio(ratio)
            .label(format!("{:.0}%", fill * 100.0))
            .gauge_style(theme.fill(fill)),
        gauge,
    );
    f.render_widget(
        Paragraph::new(notes)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        rest,
    );
}

fn draw_pipeline(
    f: &mut Frame,
    area: Rect,
    app: &mut App,
    engine: &Engine,
    rows: &[Row],
    theme: Theme,
) {
    let tick = engine.latest();
    let body = chrome(f, area, app, tick, theme);
    let (Some(row), Some(t)) = (app.selected_row(rows), tick) else {
        f.render_widget(Paragraph::new("No listener to show."), body);
        return;
    };
    let tun = &t.snapshot.tunables;
    let rate = |n: &str| t.counter_rates.get(n).copied().flatten();
    let flowing = row.depth > 0 || row.syn_recv.is_some_and(|s| s.0 > 0);
    // The arrows move one step per tick while anything is queued.
    let phase = if flowing { (t.seq % 3) as usize } else { 0 };
    let arrow = |label: &str| -> Vec<Line<'static>> {
        let dots: String = (0..3)
            .map(|i| if i == phase && flowing { '●' } else { '─' })
            .collect();
        vec![
            Line::styled(label.to_string(), theme.dim()).alignment(Alignment::Center),
            Line::styled(format!("{dots}▶"), theme.bold()).alignment(Alignment::Center),
        ]
    };
    let title = Line::from(vec![
        Span::styled(format!("{}  ", row.endpoint), theme.bold()),
        Span::styled(
            "SYN → SYN queue → final ACK → accept queue → accept() → process",
            theme.dim(),
        ),
    ]);
    let [title_area, body] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(body);
    f.render_widget(
        Paragraph::new(title).alignment(Alignment::Center),
        title_area,
    );
    let vertical = body.width < 100;
    let (areas, arrows): (Vec<Rect>, Vec<Rect>) = if vertical {
        let parts = Layout::vertical([Constraint::Fill(1); 3]).split(body);
        (parts.to_vec(), vec![])
    } else {
        // Boxes no taller than their content needs, centred vertically.
        let h = body.height.min(22);
        let body = Rect {
            y: body.y + (body.height - h) / 2,
            height: h,
            ..body
        };
        let parts = Layout::horizontal([
            Constraint::Length(9),
            Constraint::Fill(1),
            Constraint::Length(10),
            Constraint::Fill(1),
            Constraint::Length(11),
            Constraint::Fill(1),
        ])
        .split(body);
        (
            vec![parts[1], parts[3], parts[5]],
            vec![parts[0], parts[2], parts[4]],
        )
    };
    for (a, label) in arrows.iter().zip(["SYN", "ACK", "accept()"]) {
        let mid = Rect {
            y: a.y + a.height / 2,
            height: 2.min(a.height),
            ..*a
        };
        f.render_widget(Paragraph::new(arrow(label)), mid);
    }
    let syn = row.syn_recv.map_or(0, |s| s.0);
    let syn_limit = u64::from(row.backlog) + 1;
    let cookies = match tun.tcp_syncookies {
        Some(0) => "syncookies 0: a full SYN queue drops SYNs",
        Some(2) => "syncookies 2: no request is kept",
        Some(_) => "syncookies 1: cookies when full",
        None => "syncookies ?",
    };
    stage(
        f,
        areas[0],
        Stage {
            title: "SYN queue",
            value: syn,
            limit: syn_limit,
            big: format!("{syn}/{syn_limit}"),
            badge: (syn >= syn_limit).then_some("FULL"),
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
        },
        theme,
    );
    let full = row.peak > row.backlog || row.depth > row.backlog;
    stage(
        f,
        areas[1],
        Stage {
            title: "Accept queue",
            value: u64::from(row.peak.max(row.depth)),
            limit: u64::from(row.backlog),
            big: format!("{}/{}", row.depth, row.backlog),
            badge: full.then_some("FULL: new connections dropped"),
            notes: vec![
                Line::raw("established, waiting for accept()".to_string()),
                Line::raw(format!(
                    "backlog = min(listen(), somaxconn {}) = {}",
                    tun.somaxconn.map_or("?".into(), |v| v.to_string()),
                    row.backlog
                )),
                Line::raw(format!("peak since last tick {}", row.peak)),
                Line::raw(format!(
                    "listener drops {}/s (packets, any queue) · abort_on_overflow {}",
                    rate_text(row.drops_per_s),
                    tun.tcp_abort_on_overflow
                        .map_or("?".into(), |v| v.to_string())
                )),
            ],
        },
        theme,
    );
    let owner = tightest_owner(&row.owners);
    let (open, limit) = owner.map_or((0, 0), |p| {
        (p.fds_open.unwrap_or(0), p.fd_limit.unwrap_or(0))
    });
    stage(
        f,
        areas[2],
        Stage {
            title: "Process",
            value: open,
            limit,
            big: if owner.is_some() {
                format!("{open}/{limit}")
            } else {
                "?".into()
            },
            badge: (limit > 0 && open >= limit).then_some("EMFILE: out of fds"),
            notes: vec![
                Line::raw(owner.map_or("owner unknown".to_string(), |p| {
                    format!("{}[{}]: open fds / RLIMIT_NOFILE", p.comm, p.pid)
                })),
                Line::raw(format!(
                    "processes holding the socket: {}",
                    row.owners.processes().len()
                )),
                Line::raw(if limit > 0 && open * 10 >= limit * 9 {
                    "near the limit: accept() fails with EMFILE, the queue fills".to_string()
                } else {
                    "fds well below the limit".to_string()
                }),
            ],
        },
        theme,
    );
}

/// The narration panel's lines: the step, what is happening, what clients feel, the knobs,
/// what to try. `compact` keeps the step, the first sentence and the clients (for the pipeline
/// and detail screens, which a room watches).
fn lab_lines(
    lab: &crate::model::lab::LabStatus,
    compact: bool,
    theme: Theme,
) -> Vec<Line<'static>> {
    let c = &lab.clients;
    let k = &lab.knobs;
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!(
                "Lab {} · step {}/{}: ",
                lab.scenario.name(),
                lab.step + 1,
                lab.steps
            ),
            theme.bold(),
        ),
        Span::raw(lab.title.clone()),
    ])];
    let narration = if compact {
        &lab.narration[..lab.narration.len().min(1)]
    } else {
        &lab.narration[..]
    };
    lines.extend(narration.iter().map(|n| Line::raw(n.clone())));
    lines.push(Line::from(vec![
        Span::styled("Clients ", theme.bold()),
        Span::raw(format!(
            "{} tried · {} ok · {} timed out · {} reset · connect p50 {} ms, p99 {} ms (of those that connected)",
            c.attempted,
            c.succeeded,
            c.timed_out,
            c.reset,
            ms(c.connect_ms_p50),
            ms(c.connect_ms_p99)
        )),
    ]));
    if !lab.last_round.is_empty() {
        lines.push(Line::raw(format!(
            "Last round: {}",
            lab.last_round.join(", ")
        )));
    }
    if let Some(p) = &lab.problem {
        lines.push(Line::from(vec![
            Span::styled("Could not: ", theme.sev(Severity::Warning)),
            Span::raw(p.clone()),
        ]));
    }
    if compact {
        return lines;
    }
    lines.push(Line::from(vec![
        Span::styled("Knobs ", theme.bold()),
        Span::raw(format!(
            "rate {:.0}/s  workers {}  service {} ms  backlog {}  somaxconn {}  syncookies {}  fd limit {}  abort {}",
            k.rate,
            k.workers,
            k.service_ms,
            k.backlog,
            k.somaxconn,
            k.syncookies,
            k.fd_limit.map_or("-".into(), |v| v.to_string()),
            k.abort_on_overflow
        )),
    ]));
    lines.push(Line::styled(
        format!("Try: {}", lab.try_next),
        theme.sev(Severity::Info),
    ));
    lines
}

/// Height the lab lines need at `width` (wrapped), borders included.
fn lab_height(lines: &[Line], width: u16) -> u16 {
    let w = usize::from(width.saturating_sub(2).max(1));
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(w).max(1)).sum();
    u16::try_from(rows + 2).unwrap_or(u16::MAX)
}

fn draw_lab(f: &mut Frame, area: Rect, lines: Vec<Line<'static>>, theme: Theme) {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.sev(Severity::Info));
    f.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        area,
    );
}

/// Splits off the lab panel (right on wide screens, bottom otherwise); returns the rest.
fn with_lab_panel(f: &mut Frame, area: Rect, app: &App, compact: bool, theme: Theme) -> Rect {
    let Some(lab) = app.lab.as_ref() else {
        return area;
    };
    let lines = lab_lines(lab, compact, theme);
    if area.width >= 150 && !compact {
        let [main, panel] =
            Layout::horizontal([Constraint::Min(90), Constraint::Length(56)]).areas(area);
        draw_lab(f, panel, lines, theme);
        return main;
    }
    let h = lab_height(&lines, area.width).min(area.height / 2);
    let [main, panel] = Layout::vertical([Constraint::Min(6), Constraint::Length(h)]).areas(area);
    draw_lab(f, panel, lines, theme);
    main
}

/// Every key, for the help overlay and the README.
pub const HELP: [(&str, &str); 15] = [
    ("↑ ↓ / j k", "select a listener (mouse click and wheel too)"),
    ("PgUp PgDn Home End", "move faster"),
    ("Enter", "detail of the selected listener"),
    ("Esc", "back / clear the filter"),
    ("p", "pipeline view: SYN queue → accept queue → process"),
    ("s", "sort: fill, drops, SYN-RECV, port, process"),
    ("/", "filter by address or process"),
    ("u", "show UNIX listeners"),
    ("space", "pause the view (collection goes on)"),
    ("+ / -", "longer / shorter interval"),
    ("?", "this help"),
    ("q, Ctrl-C", "quit"),
    (
        "Accept Q",
        "depth/backlog; full when depth > backlog (holds backlog+1)",
    ),
    ("| in a gauge", "peak since the last tick (fast sampler)"),
    (
        "ListenDrops",
        "every listen drop incl. overflows (not SYN-queue overflow)",
    ),
];

/// Keys of the workshop lab (shown in the help when a lab runs).
pub const LAB_HELP: [(&str, &str); 10] = [
    ("n", "lab: next step of the scenario"),
    ("a / A", "lab: arrival rate down / up"),
    ("w / W", "lab: server workers down / up"),
    ("t / T", "lab: service time down / up"),
    ("b / B", "lab: backlog down / up (listen() again)"),
    ("m / M, l", "lab: somaxconn down / up; l: listen() again"),
    ("c", "lab: tcp_syncookies 0 → 1 → 2"),
    ("f / F", "lab: server fd limit down / up"),
    ("o", "lab: tcp_abort_on_overflow 0 ↔ 1"),
    ("x", "lab: SYN flood on / off"),
];

fn draw_help(f: &mut Frame, area: Rect, with_lab: bool, theme: Theme) {
    let w = area.width.min(84);
    let entries: Vec<(&str, &str)> = HELP
        .iter()
        .chain(if with_lab { LAB_HELP.iter() } else { [].iter() })
        .copied()
        .collect();
    let h = area.height.min(entries.len() as u16 + 2);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    let lines: Vec<Line> = entries
        .iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(format!("{k:>18}  "), theme.bold()),
                Span::raw(*v),
            ])
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" sockq keys — any key closes ", theme.bold())),
        ),
        r,
    );
}
