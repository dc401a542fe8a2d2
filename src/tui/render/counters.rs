//! The kernel counter strip: namespace-wide queue counters per second, with sparklines.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::text::{rate_text, spark_text, truncate};
use super::theme::{section, Theme};
use crate::engine::Engine;
use crate::model::meta::QUEUE_COUNTER_INFO;
use crate::model::Severity;

const STRIP: [usize; 5] = [0, 1, 2, 3, 4];

/// The counter strip: each queue counter's rate now and its sparkline, with a hint on a third
/// line when there is room.
pub(super) fn draw_counters(f: &mut Frame, area: Rect, engine: &Engine, theme: Theme) {
    let block = section(
        " Kernel counters, per second (namespace-wide) ",
        theme.dim(),
    );
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
