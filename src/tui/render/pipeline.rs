//! The pipeline screen of one listener: SYN queue → accept queue → process, as three stages.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge, Paragraph, Wrap};
use ratatui::Frame;

use super::text::{num_or, rate_text, safe};
use super::theme::Theme;
use crate::model::labels::tightest_owner;
use crate::model::{Severity, Tick};
use crate::tui::app::Row;

/// Draws the pipeline of `row` in `area`: a title, then the three stages with arrows between
/// them.
pub(super) fn draw_pipeline(f: &mut Frame, area: Rect, row: &Row, t: &Tick, theme: Theme) {
    let body = draw_title(f, area, row, theme);
    let (boxes, arrows) = stage_areas(body);
    draw_arrows(f, &arrows, flow_phase(row, t), theme);
    stage(f, boxes[0], syn_queue(row, t), theme);
    stage(f, boxes[1], accept_queue(row, t), theme);
    stage(f, boxes[2], process(row), theme);
}

/// The endpoint and the path a connection takes, centred on the first line; returns the rest.
fn draw_title(f: &mut Frame, area: Rect, row: &Row, theme: Theme) -> Rect {
    let mut title = Line::from(vec![
        Span::styled(format!("{}  ", safe(&row.endpoint)), theme.bold()),
        Span::styled(
            "SYN → SYN queue → final ACK → accept queue → accept() → process",
            theme.dim(),
        ),
    ]);
    if row.gone {
        let ago = row.gone_s.map_or(String::new(), |s| format!(" {s} s ago"));
        title.spans.insert(
            1,
            Span::styled(format!("GONE{ago}  "), theme.sev(Severity::Warning)),
        );
    }
    let [title_area, body] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3)]).areas(area);
    f.render_widget(
        Paragraph::new(title).alignment(Alignment::Center),
        title_area,
    );
    body
}

/// The areas of the three stage boxes, and of the arrows before each: side by side on wide
/// screens; stacked, without arrows, under 100 columns.
fn stage_areas(body: Rect) -> (Vec<Rect>, Vec<Rect>) {
    if body.width < 100 {
        let parts = Layout::vertical([Constraint::Fill(1); 3]).split(body);
        return (parts.to_vec(), vec![]);
    }
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
}

/// Which of an arrow's three dots is lit: the arrows move one step per tick while anything is
/// queued, and stand still (none lit) when nothing is.
fn flow_phase(row: &Row, t: &Tick) -> Option<usize> {
    let flowing = row.depth > 0 || row.syn_recv.is_some_and(|s| s.0 > 0);
    flowing.then_some((t.seq % 3) as usize)
}

/// The arrows into the stages, each a label over `──●▶`, centred vertically in its area.
fn draw_arrows(f: &mut Frame, arrows: &[Rect], phase: Option<usize>, theme: Theme) {
    for (a, label) in arrows.iter().zip(["SYN", "ACK", "accept()"]) {
        let dots: String = (0..3)
            .map(|i| if Some(i) == phase { '●' } else { '─' })
            .collect();
        let lines = vec![
            Line::styled(label.to_string(), theme.dim()).alignment(Alignment::Center),
            Line::styled(format!("{dots}▶"), theme.bold()).alignment(Alignment::Center),
        ];
        let mid = Rect {
            y: a.y + a.height / 2,
            height: 2.min(a.height),
            ..*a
        };
        f.render_widget(Paragraph::new(lines), mid);
    }
}

/// The SYN queue: half-open requests against backlog+1, and what a full one does.
fn syn_queue(row: &Row, t: &Tick) -> Stage<'static> {
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
fn accept_queue(row: &Row, t: &Tick) -> Stage<'static> {
    let tun = &t.snapshot.tunables;
    let full = row.overflowed || row.peak > row.backlog || row.depth > row.backlog;
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

/// The process that calls accept(): its open fds against RLIMIT_NOFILE.
fn process(row: &Row) -> Stage<'static> {
    let owner = tightest_owner(&row.owners);
    let (open, limit) = owner.map_or((0, 0), |p| {
        (p.fds_open.unwrap_or(0), p.fd_limit.unwrap_or(0))
    });
    Stage {
        title: "Process",
        value: open,
        limit,
        big: if owner.is_some() {
            format!("{open}/{limit}")
        } else {
            "?".into()
        },
        badge: if all_stopped(&row.owners) {
            Some("STOPPED: cannot accept()")
        } else {
            (limit > 0 && open >= limit).then_some("EMFILE: out of fds")
        },
        notes: [
            Some(owner.map_or("owner unknown".to_string(), |p| {
                format!("{}[{}]: open fds / RLIMIT_NOFILE", safe(&p.comm), p.pid)
            })),
            busiest_line(&row.owners),
            Some(format!(
                "processes holding the socket: {}",
                row.owners.processes().len()
            )),
            Some(if limit > 0 && open * 10 >= limit * 9 {
                "near the limit: accept() fails with EMFILE, the queue fills".to_string()
            } else {
                "fds well below the limit".to_string()
            }),
        ]
        .into_iter()
        .flatten()
        .map(Line::raw)
        .collect(),
    }
}

/// True when every holder is stopped (state T, or t: by a tracer): none can call accept().
fn all_stopped(owners: &crate::model::Owners) -> bool {
    let p = owners.processes();
    !p.is_empty() && p.iter().all(|p| matches!(p.state, Some('T' | 't')))
}

/// The busiest holder (owners come busiest first) with its state and CPU, e.g.
/// "busiest: nginx[9512] T (stopped), CPU 0%"; `None` before either was read.
fn busiest_line(owners: &crate::model::Owners) -> Option<String> {
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

/// Draws one stage: a box coloured by how full it is, the number big, a badge when it is full,
/// a gauge and the notes.
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
    let font = big::font(&big, inner);
    // Without big letters the badge goes on the number's line, leaving a line for the notes.
    let (big_h, badge_h) = font.as_ref().map_or((1, 0), |(_, h)| (*h, 1));
    let [number, badge_area, gauge, rest] = Layout::vertical([
        Constraint::Length(big_h),
        Constraint::Length(badge_h),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);
    let badge = badge.map(|b| Span::styled(b, theme.sev(Severity::Critical)));
    let number_style = theme.fill(fill).add_modifier(Modifier::BOLD);
    match font {
        Some((size, _)) => {
            big::draw(f, number, big, size, number_style);
            if let Some(b) = badge {
                f.render_widget(Paragraph::new(b).alignment(Alignment::Center), badge_area);
            }
        }
        None => {
            let mut spans = vec![Span::styled(big, number_style)];
            if let Some(b) = badge {
                spans.push(Span::raw("  "));
                spans.push(b);
            }
            f.render_widget(
                Paragraph::new(Line::from(spans)).alignment(Alignment::Center),
                number,
            );
        }
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

/// Big letters for the room (the `big-text` feature, on by default); without it, plain numbers.
#[cfg(feature = "big-text")]
mod big {
    use ratatui::layout::Rect;
    use ratatui::style::Style;
    use ratatui::text::Line;
    use ratatui::Frame;
    use tui_big_text::PixelSize;

    /// A font size.
    pub type Font = PixelSize;

    /// The largest font that fits `text` in `area`: (pixel size, rows it takes).
    pub fn font(text: &str, area: Rect) -> Option<(Font, u16)> {
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

    /// A stage's number in big letters of `size`, centred.
    pub fn draw(f: &mut Frame, area: Rect, big: String, size: Font, style: Style) {
        f.render_widget(
            tui_big_text::BigText::builder()
                .pixel_size(size)
                .style(style)
                .lines(vec![Line::raw(big)])
                .centered()
                .build(),
            area,
        );
    }
}

/// Without the `big-text` feature: no font fits, numbers are drawn plain.
#[cfg(not(feature = "big-text"))]
mod big {
    use ratatui::layout::Rect;
    use ratatui::style::Style;
    use ratatui::Frame;

    /// No font exists.
    #[derive(Debug, Clone, Copy)]
    pub enum Font {}

    /// Never a font.
    pub fn font(_text: &str, _area: Rect) -> Option<(Font, u16)> {
        None
    }

    /// Unreachable: there is no font to draw with.
    pub fn draw(_f: &mut Frame, _area: Rect, _big: String, size: Font, _style: Style) {
        match size {}
    }
}

#[cfg(test)]
mod tests {
    use super::{all_stopped, busiest_line};
    use crate::model::testing::process_in_state;
    use crate::model::Owners;

    #[test]
    fn a_stopped_holder_is_named_with_its_state_and_cpu() {
        let stopped = Owners::Known {
            processes: vec![process_in_state(9512, "nginx", 'T', Some(0.0), 1)],
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
            ],
        };
        assert!(!all_stopped(&mixed));
        assert_eq!(
            busiest_line(&mixed).as_deref(),
            Some("busiest: nginx[9513] R, CPU 97%")
        );
        let unread = Owners::Known {
            processes: vec![crate::model::testing::process(1, "x", Some(3), Some(10))],
        };
        assert_eq!(busiest_line(&unread), None);
        assert!(!all_stopped(&unread));
    }
}
