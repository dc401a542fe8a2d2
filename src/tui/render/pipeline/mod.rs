//! The pipeline screen of one listener: SYN queue → accept queue → in service → closing, as
//! four stages (what each shows is in `stages`, how a stage is drawn in `stage`).

mod stage;
mod stages;

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::text::safe;
use super::theme::Theme;
use crate::model::{Severity, Tick};
use crate::tui::app::Row;
use stage::stage;
use stages::{accept_queue, closing, in_service, syn_queue};

/// Stages side by side, with arrows, from this width.
const SIDE_BY_SIDE: u16 = 140;

/// Draws the pipeline of `row` in `area`: a title, then the four stages — side by side with
/// arrows between them on wide screens, two by two or stacked on narrower ones.
pub(super) fn draw_pipeline(f: &mut Frame, area: Rect, row: &Row, t: &Tick, theme: Theme) {
    let body = draw_title(f, area, row, theme);
    let (boxes, arrows) = stage_areas(body);
    draw_arrows(f, &arrows, flow_phase(row, t), theme);
    let stages = [
        syn_queue(row, t),
        accept_queue(row, t),
        in_service(row),
        closing(row),
    ];
    for (area, st) in boxes.into_iter().zip(stages) {
        stage(f, area, st, theme);
    }
}

/// The endpoint and the path a connection takes, centred on the first line; returns the rest.
fn draw_title(f: &mut Frame, area: Rect, row: &Row, theme: Theme) -> Rect {
    const LONG: &str =
        "SYN → SYN queue → final ACK → accept queue → accept() → in service → peer's FIN → closing";
    let endpoint = safe(&row.endpoint);
    let fits = endpoint.chars().count() + 2 + LONG.chars().count() <= usize::from(area.width);
    let path = if fits {
        LONG
    } else {
        "SYN queue → accept queue → accept() → in service → closing"
    };
    let mut title = Line::from(vec![
        Span::styled(format!("{endpoint}  "), theme.bold()),
        Span::styled(path, theme.dim()),
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

/// The areas of the four stage boxes, and of the arrows before each: side by side from
/// [`SIDE_BY_SIDE`] columns; two by two (reading order) from 80 columns and 12 rows; stacked
/// below. Without arrows unless side by side.
fn stage_areas(body: Rect) -> (Vec<Rect>, Vec<Rect>) {
    if body.width < SIDE_BY_SIDE {
        if body.width >= 80 && body.height >= 12 {
            let [top, bottom] = Layout::vertical([Constraint::Fill(1); 2]).areas(body);
            let [a, b] = Layout::horizontal([Constraint::Fill(1); 2]).areas(top);
            let [c, d] = Layout::horizontal([Constraint::Fill(1); 2]).areas(bottom);
            return (vec![a, b, c, d], vec![]);
        }
        let parts = Layout::vertical([Constraint::Fill(1); 4]).split(body);
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
        Constraint::Length(8),
        Constraint::Fill(1),
    ])
    .split(body);
    (
        vec![parts[1], parts[3], parts[5], parts[7]],
        vec![parts[0], parts[2], parts[4], parts[6]],
    )
}

/// Which of an arrow's three dots is lit: the arrows move one step per tick while anything is
/// queued or unread, and stand still (none lit) when nothing is.
fn flow_phase(row: &Row, t: &Tick) -> Option<usize> {
    let flowing = row.depth > 0
        || row.syn_recv.is_some_and(|s| s.0 > 0)
        || row
            .service
            .as_ref()
            .is_some_and(|s| s.unread_conns > 0 || s.waiting > 0);
    flowing.then_some((t.seq % 3) as usize)
}

/// The arrows into the stages, each a label over `──●▶`, centred vertically in its area.
fn draw_arrows(f: &mut Frame, arrows: &[Rect], phase: Option<usize>, theme: Theme) {
    for (a, label) in arrows.iter().zip(["SYN", "ACK", "accept()", "FIN"]) {
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
