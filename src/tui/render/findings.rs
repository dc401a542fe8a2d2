//! The findings panel: what the rules found — active ones first, then the critical ones held a
//! little after they cleared, dimmed — and what sockq could not see. Each item is shown whole
//! (wrapped, with its next step when all fit with theirs) or, when space is short, on one line:
//! its severity and first sentence, cut with `…`.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::text::{first_sentence, safe, truncate, wrap};
use super::theme::{section, Theme};
use crate::model::{Finding, ListenerKey, Severity, Tick};

/// One thing the panel lists: a finding or a blind spot.
struct Item {
    /// `CRIT`, `WARN (cleared 3 s ago)`, `NOT SEEN`…
    label: String,
    label_style: Style,
    text: String,
    text_style: Style,
    /// The next step, for findings.
    next: Option<String>,
}

impl Item {
    fn finding(f: &Finding, theme: Theme) -> Self {
        let (label, label_style, text_style) = match f.cleared_s {
            None => (
                f.severity.label().to_string(),
                theme.sev(f.severity),
                Style::default(),
            ),
            Some(s) => (
                format!("{} (cleared {:.0} s ago)", f.severity.label(), s),
                theme.dim(),
                theme.dim(),
            ),
        };
        Item {
            label,
            label_style,
            text: safe(&f.message),
            text_style,
            next: f.is_active().then(|| safe(&f.next)),
        }
    }

    fn blind_spot(b: &str, theme: Theme) -> Self {
        Item {
            label: "NOT SEEN".into(),
            label_style: theme.sev(Severity::Info),
            text: safe(b),
            text_style: Style::default(),
            next: None,
        }
    }

    /// The item wrapped at `width`: the label and text, then the next step when `with_next`.
    fn full(&self, width: usize, with_next: bool, theme: Theme) -> Vec<Line<'static>> {
        let label_w = self.label.chars().count();
        let mut lines: Vec<Line> = wrap(&format!("{} {}", self.label, self.text), width)
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                if i > 0 || l.chars().count() < label_w {
                    return Line::styled(l, self.text_style);
                }
                let rest: String = l.chars().skip(label_w).collect();
                Line::from(vec![
                    Span::styled(self.label.clone(), self.label_style),
                    Span::styled(rest, self.text_style),
                ])
            })
            .collect();
        if let Some(next) = self.next.as_ref().filter(|_| with_next) {
            // Indented under the finding, a hanging indent past the arrow.
            let wrapped = wrap(&format!("→ {next}"), width.saturating_sub(4).max(1));
            lines.extend(wrapped.into_iter().enumerate().map(|(i, l)| {
                let indent = if i == 0 { "  " } else { "    " };
                Line::styled(format!("{indent}{l}"), theme.dim())
            }));
        }
        lines
    }

    /// The item on one line: the label and the first sentence, cut to `width`.
    fn one_line(&self, width: usize) -> Line<'static> {
        let room = width.saturating_sub(self.label.chars().count() + 1);
        Line::from(vec![
            Span::styled(format!("{} ", self.label), self.label_style),
            Span::styled(truncate(first_sentence(&self.text), room), self.text_style),
        ])
    }
}

/// What the panel lists, before it is made into text: a finding or a blind spot.
#[derive(Clone, Copy)]
enum Source<'t> {
    Finding(&'t Finding),
    BlindSpot(&'t str),
}

impl Source<'_> {
    fn item(self, theme: Theme) -> Item {
        match self {
            Source::Finding(f) => Item::finding(f, theme),
            Source::BlindSpot(b) => Item::blind_spot(b, theme),
        }
    }
}

/// The findings in the order shown: active ones (those about `focus` first), then held ones;
/// then the blind spots.
fn items(tick: &Tick, focus: Option<ListenerKey>) -> Vec<Source<'_>> {
    let mut findings: Vec<&Finding> = tick.findings.iter().collect();
    findings.sort_by_key(|f| (!f.is_active(), focus.is_some() && f.key != focus));
    findings
        .into_iter()
        .map(Source::Finding)
        .chain(
            tick.snapshot
                .blind_spots
                .iter()
                .map(|b| Source::BlindSpot(b)),
        )
        .collect()
}

/// The panel's first `height` lines in `width`, and how many lines it has in all: every item
/// with its next step when all fit so, else items whole from the top while the rest still fit
/// on a line each, then one line each. Only the items that reach the first `height` lines are
/// made into text: a host with thousands of findings costs a screenful.
fn layout(
    items: &[Source<'_>],
    width: usize,
    height: usize,
    theme: Theme,
) -> (Vec<Line<'static>>, usize) {
    let mut lines: Vec<Line> = Vec::new();
    let mut all_fit = true;
    for src in items {
        lines.extend(src.item(theme).full(width, true, theme));
        if lines.len() > height {
            all_fit = false;
            break;
        }
    }
    if all_fit {
        let n = lines.len();
        return (lines, n);
    }
    lines.clear();
    let mut whole = true;
    for (n, src) in items.iter().enumerate() {
        let left = items.len() - n - 1;
        if whole {
            let full = src.item(theme).full(width, false, theme);
            whole = lines.len() + full.len() + left <= height;
            if whole {
                lines.extend(full);
                continue;
            }
        }
        if lines.len() >= height {
            // One line each from here on, none of them on screen.
            return (lines, height + left + 1);
        }
        lines.push(src.item(theme).one_line(width));
    }
    let n = lines.len();
    (lines, n)
}

/// Lines the panel's content takes at `width` when given at most `height`.
pub(super) fn lines_used(tick: Option<&Tick>, width: u16, height: usize, theme: Theme) -> usize {
    let Some(tick) = tick else { return 1 };
    let items = items(tick, None);
    layout(&items, usize::from(width), height, theme)
        .0
        .len()
        .clamp(1, height.max(1))
}

/// How many items the panel lists (at least one line: the quiet message).
pub(super) fn item_count(tick: Option<&Tick>) -> usize {
    tick.map_or(1, |t| {
        (t.findings.len() + t.snapshot.blind_spots.len()).max(1)
    })
}

/// Draws the findings of `tick` in `area`, those about `focus` first.
pub(super) fn draw_findings(
    f: &mut Frame,
    area: Rect,
    tick: Option<&Tick>,
    focus: Option<ListenerKey>,
    theme: Theme,
) {
    let Some(tick) = tick else {
        let block = section(" Findings ", theme.bold());
        let inner = block.inner(area);
        f.render_widget(block, area);
        f.render_widget(
            Paragraph::new("Waiting for the first sample…").style(theme.dim()),
            inner,
        );
        return;
    };
    let items = items(tick, focus);
    let inner = section("", theme.bold()).inner(area);
    let height = usize::from(inner.height);
    let (mut lines, count) = if items.is_empty() {
        let quiet = Line::styled(
            "No queue is full, nothing is dropped, no limit is near.",
            theme.dim(),
        );
        (vec![quiet], 1)
    } else {
        layout(&items, usize::from(inner.width), height, theme)
    };
    let shown = count.min(height).min(items.len());
    lines.truncate(height);
    let block = section(title(tick, shown, items.len()), theme.bold());
    f.render_widget(Paragraph::new(lines).block(block), area);
}

/// The panel's title: active findings, held ones, blind spots, and how many are shown when
/// not all fit.
fn title(tick: &Tick, shown: usize, listed: usize) -> String {
    let active = tick.findings.iter().filter(|f| f.is_active()).count();
    let cleared = tick.findings.len() - active;
    let blind = tick.snapshot.blind_spots.len();
    let mut t = match (active, cleared) {
        (0, 0) if blind == 0 => " Findings: all quiet".to_string(),
        (0, 0) => " Findings: none".to_string(),
        (n, 0) => format!(" Findings ({n})"),
        (n, c) => format!(" Findings ({n}, {c} cleared)"),
    };
    if blind > 0 {
        t.push_str(&format!(" · {blind} thing(s) not seen"));
    }
    if listed > 0 && shown < listed {
        t.push_str(&format!(" · {shown} of {listed} shown"));
    }
    t.push(' ');
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    /// The panel as it was laid out before `layout` stopped at the screen: every item made
    /// into text, then cut. The reference the new layout must agree with.
    fn reference(items: &[Item], width: usize, height: usize, theme: Theme) -> Vec<Line<'static>> {
        let with_next: Vec<Line> = items
            .iter()
            .flat_map(|i| i.full(width, true, theme))
            .collect();
        if with_next.len() <= height {
            return with_next;
        }
        let mut lines = Vec::new();
        let mut whole = true;
        for (n, item) in items.iter().enumerate() {
            let left = items.len() - n - 1;
            let full = item.full(width, false, theme);
            whole = whole && lines.len() + full.len() + left <= height;
            if whole {
                lines.extend(full);
            } else {
                lines.push(item.one_line(width));
            }
        }
        lines
    }

    fn finding(n: usize, active: bool) -> Finding {
        Finding {
            severity: [Severity::Critical, Severity::Warning, Severity::Info][n % 3],
            rule: "test".into(),
            listener: None,
            key: None,
            message: format!(
                "Finding {n} says something{}. Then more.",
                " long".repeat(n % 7)
            ),
            evidence: Default::default(),
            next: format!("Do thing {n}{}", " and more".repeat(n % 4)),
            cleared_s: (!active).then_some(3.0),
        }
    }

    #[test]
    fn the_panel_shows_what_laying_out_every_item_showed() {
        let theme = Theme::new(true);
        let findings: Vec<Finding> = (0..12).map(|n| finding(n, n % 5 != 4)).collect();
        let blind = ["the service dump is 3 s old".to_string()];
        for count in [0, 1, 2, 5, 12] {
            let sources: Vec<Source> = (findings[..count].iter().map(Source::Finding))
                .chain(blind.iter().map(|b| Source::BlindSpot(b)))
                .collect();
            let items: Vec<Item> = sources.iter().map(|s| s.item(theme)).collect();
            for width in [20, 50, 120] {
                for height in 0..40 {
                    let want = reference(&items, width, height, theme);
                    let (mut got, n) = layout(&sources, width, height, theme);
                    assert_eq!(n, want.len(), "{count} items, {width}x{height}");
                    assert!(got.len() <= height, "at most a screenful is made");
                    got.truncate(height);
                    let mut want = want;
                    want.truncate(height);
                    assert_eq!(got, want, "{count} items, {width}x{height}");
                }
            }
        }
    }
}
