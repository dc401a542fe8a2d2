//! One stage box of the pipeline screen: its number big (letters from the back of a room when
//! they fit), a badge when it is full, a gauge against its bound, and notes.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge, Paragraph, Wrap};
use ratatui::Frame;

use super::super::theme::Theme;
use crate::model::Severity;

/// One stage box of the pipeline view.
pub(super) struct Stage<'a> {
    pub title: &'a str,
    pub value: u64,
    /// What `value` is measured against; 0: no gauge (a stage without a bound).
    pub limit: u64,
    /// The number shown big (readable from the back of a room).
    pub big: String,
    /// A word under it (e.g. FULL).
    pub badge: Option<&'static str>,
    /// The gauge's label; its fill in percent when `None`.
    pub gauge_label: Option<String>,
    /// Something is wrong whatever the fill (the box is drawn at least as a warning).
    pub warn: bool,
    pub notes: Vec<Line<'static>>,
}

/// Draws one stage: a box coloured by how full it is, the number big, a badge when it is full,
/// a gauge and the notes.
pub(super) fn stage(f: &mut Frame, area: Rect, st: Stage, theme: Theme) {
    let Stage {
        title,
        value,
        limit,
        big,
        badge,
        gauge_label,
        warn,
        notes,
    } = st;
    let fill = if limit == 0 {
        0.0
    } else {
        value as f64 / limit as f64
    };
    let shown_fill = if warn { fill.max(0.8) } else { fill };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.fill(shown_fill))
        .title(Span::styled(format!(" {title} "), theme.bold()))
        .title_alignment(Alignment::Center);
    let inner = block.inner(area);
    f.render_widget(block, area);
    // Octants (two rows) are left out: few terminal fonts have them, and the notes need the
    // rows more.
    let font = big::font(&big, inner).filter(|(_, h)| *h > 2);
    // Without big letters the badge goes on the number's line, leaving a line for the notes.
    let (big_h, badge_h) = font.as_ref().map_or((1, 0), |(_, h)| (*h, 1));
    let gauge_h = u16::from(limit > 0);
    let [number, badge_area, gauge, rest] = Layout::vertical([
        Constraint::Length(big_h),
        Constraint::Length(badge_h),
        Constraint::Length(gauge_h),
        Constraint::Min(0),
    ])
    .areas(inner);
    let badge = badge.map(|b| Span::styled(b, theme.sev(Severity::Critical)));
    let number_style = theme.fill(shown_fill).add_modifier(Modifier::BOLD);
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
    if limit > 0 {
        f.render_widget(
            Gauge::default()
                .ratio(fill.min(1.0))
                .label(gauge_label.unwrap_or_else(|| format!("{:.0}%", fill * 100.0)))
                .gauge_style(theme.fill(fill)),
            gauge,
        );
    }
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
