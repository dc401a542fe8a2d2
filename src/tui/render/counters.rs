//! The kernel counters: namespace-wide queue counters per second, as a strip with sparklines on
//! the main screen and as one line on the detail and pipeline screens. Which counters show when
//! not all fit: those a finding relies on, then those moving, then by importance.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::text::{rate_text, spark_text, truncate};
use super::theme::{section, Theme};
use crate::engine::Engine;
use crate::model::meta::{CounterInfo, QUEUE_COUNTER_INFO};
use crate::model::{Severity, Tick};

/// The counters by importance: when fewer fit, the last go first (after those findings rely on
/// and those moving).
const IMPORTANCE: [&str; 8] = [
    "ListenOverflows",
    "ListenDrops",
    "TCPReqQFullDrop",
    "SyncookiesSent",
    "EmbryonicRsts",
    "SyncookiesRecv",
    "TCPReqQFullDoCookies",
    "SyncookiesFailed",
];

/// Narrowest column of the strip: a rate like `1234/s` and a few sparkline cells.
const MIN_COLUMN: usize = 10;

/// A counter's rate per second in `tick`, if known.
fn rate(tick: Option<&Tick>, name: &str) -> Option<f64> {
    tick.and_then(|t| t.counter_rates.get(name).copied().flatten())
}

/// The counters in the order they are given room: those an active finding relies on (named in
/// its evidence as `NAME_per_s`, above zero), then those moving, then by importance.
fn by_priority(tick: Option<&Tick>) -> Vec<&'static CounterInfo> {
    let cited = cited(tick);
    let mut infos: Vec<(usize, &'static CounterInfo)> = IMPORTANCE
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            QUEUE_COUNTER_INFO
                .iter()
                .find(|c| c.name == *n)
                .map(|c| (i, c))
        })
        .collect();
    infos.sort_by_key(|(i, c)| {
        let moving = rate(tick, c.name).is_some_and(|r| r > 0.0);
        (!cited[*i], !moving, *i)
    });
    infos.into_iter().map(|(_, c)| c).collect()
}

/// Which of the [`IMPORTANCE`] counters an active finding relies on: one pass over the
/// findings (a busy host has thousands), not one per counter and comparison.
fn cited(tick: Option<&Tick>) -> [bool; IMPORTANCE.len()] {
    let mut cited = [false; IMPORTANCE.len()];
    let findings = tick.map_or(&[][..], |t| &t.findings[..]);
    for f in findings.iter().filter(|f| f.is_active()) {
        for (key, v) in &f.evidence {
            let name = key.strip_suffix("_per_s");
            let i = name.and_then(|n| IMPORTANCE.iter().position(|c| *c == n));
            if let Some(i) = i.filter(|_| *v > 0.0) {
                cited[i] = true;
            }
        }
        if cited.iter().all(|c| *c) {
            break;
        }
    }
    cited
}

/// The counters that fit in `width` when each takes `cost(counter, label)` columns, and whether
/// they fit with their kernel names (else with their short ones); in display order.
fn choose(
    tick: Option<&Tick>,
    width: usize,
    cost: impl Fn(&CounterInfo, &str) -> usize,
) -> (Vec<&'static CounterInfo>, bool) {
    let total = |cs: &[&CounterInfo], full: bool| -> usize {
        cs.iter()
            .map(|c| cost(c, if full { c.name } else { c.short }))
            .sum()
    };
    let mut chosen: Vec<&'static CounterInfo> = Vec::new();
    for c in by_priority(tick) {
        chosen.push(c);
        if total(&chosen, false) > width {
            chosen.pop();
            break;
        }
    }
    chosen.sort_by_key(|c| QUEUE_COUNTER_INFO.iter().position(|q| q.name == c.name));
    let full = total(&chosen, true) <= width;
    (chosen, full)
}

/// How a moving counter's rate is drawn: drops loud, cookies and resets a warning, cookies
/// that came back (connections made) quiet.
fn moving_style(name: &str, theme: Theme) -> Style {
    match name {
        "ListenOverflows" | "ListenDrops" | "TCPReqQFullDrop" => theme.sev(Severity::Critical),
        "SyncookiesRecv" => theme.sev(Severity::Info),
        _ => theme.sev(Severity::Warning),
    }
}

/// A counter's rate style: [`moving_style`] above zero, bold otherwise.
fn rate_style(name: &str, rate: Option<f64>, theme: Theme) -> Style {
    if rate.is_some_and(|r| r > 0.0) {
        moving_style(name, theme)
    } else {
        theme.bold()
    }
}

/// The strip: each counter's name, its rate now and its sparkline, and a hint on a third line
/// when there is room. As many counters as fit the width.
pub(super) fn draw_counters(f: &mut Frame, area: Rect, engine: &Engine, theme: Theme) {
    let block = section(
        " Kernel counters, per second (namespace-wide) ",
        theme.dim(),
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    let tick = engine.latest();
    let width = usize::from(inner.width);
    let (chosen, full) = choose(tick, width + 1, |_, label| {
        label.chars().count().max(MIN_COLUMN) + 1
    });
    let labels: Vec<&str> = chosen
        .iter()
        .map(|c| if full { c.name } else { c.short })
        .collect();
    let widths = column_widths(&labels, width);
    let mut x = inner.x;
    for ((info, label), w) in chosen.iter().zip(&labels).zip(widths) {
        let col = Rect {
            x,
            width: w,
            ..inner
        };
        x += w + 1;
        let lines = counter_lines(info, label, engine, usize::from(w), col.height, theme);
        f.render_widget(Paragraph::new(lines), col);
    }
}

/// Each label's column width in `width` (one column between them): its label (at least
/// [`MIN_COLUMN`]) and an equal share of what is left over.
fn column_widths(labels: &[&str], width: usize) -> Vec<u16> {
    let base: Vec<usize> = labels
        .iter()
        .map(|l| l.chars().count().max(MIN_COLUMN))
        .collect();
    let used = base.iter().sum::<usize>() + labels.len().saturating_sub(1);
    let spare = width.saturating_sub(used);
    let n = labels.len().max(1);
    base.iter()
        .enumerate()
        .map(|(i, b)| {
            let extra = spare / n + usize::from(i < spare % n);
            u16::try_from(b + extra).unwrap_or(u16::MAX)
        })
        .collect()
}

/// One counter's column: its label, its rate and sparkline, and its hint when `height` allows.
fn counter_lines(
    info: &CounterInfo,
    label: &str,
    engine: &Engine,
    w: usize,
    height: u16,
    theme: Theme,
) -> Vec<Line<'static>> {
    let rate = rate(engine.latest(), info.name);
    let style = rate_style(info.name, rate, theme);
    let history: Vec<Option<f64>> = engine
        .counter_history(info.name)
        .map(|r| r.iter().copied().collect())
        .unwrap_or_default();
    let max = history.iter().flatten().fold(0.0f64, |a, &b| a.max(b));
    let rate_s = format!("{}/s ", rate_text(rate));
    let spark_w = w.saturating_sub(rate_s.chars().count());
    let mut lines = vec![
        Line::styled(truncate(label, w), theme.dim()),
        Line::from(vec![
            Span::styled(rate_s, style),
            Span::styled(spark_text(&history, spark_w, max.max(1.0)), style),
        ]),
    ];
    if height >= 3 {
        lines.push(Line::styled(
            truncate(counter_hint(info.name), w),
            theme.dim(),
        ));
    }
    lines
}

/// The same counters on one line, for the detail and pipeline screens: `kernel/s` then each
/// counter's name and rate, as many as fit `width` (those findings cite and those moving
/// first).
pub(super) fn counters_line(tick: Option<&Tick>, width: u16, theme: Theme) -> Line<'static> {
    const PREFIX: &str = "kernel/s ";
    let item = |c: &CounterInfo, label: &str| format!("{label} {}", rate_text(rate(tick, c.name)));
    let width = usize::from(width).saturating_sub(PREFIX.len());
    let (chosen, full) = choose(tick, width, |c, label| item(c, label).chars().count() + 2);
    let mut spans = vec![Span::styled(PREFIX, theme.dim())];
    for c in chosen {
        let label = if full { c.name } else { c.short };
        spans.push(Span::styled(format!("{label} "), theme.dim()));
        let r = rate(tick, c.name);
        spans.push(Span::styled(rate_text(r), rate_style(c.name, r, theme)));
        spans.push(Span::raw("  "));
    }
    Line::from(spans)
}

/// A few words on what a counter means, for the counter strip.
pub fn counter_hint(name: &str) -> &'static str {
    match name {
        "ListenOverflows" => "accept queue full",
        "ListenDrops" => "includes overflows",
        "TCPReqQFullDrop" => "SYN dropped, no cookies",
        "TCPReqQFullDoCookies" => "SYN queue full: cookie sent",
        "SyncookiesSent" => "SYN cookies sent",
        "SyncookiesRecv" => "cookies back: connected",
        "SyncookiesFailed" => "invalid cookie ACKs",
        "EmbryonicRsts" => "handshakes reset",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use crate::model::testing::{snapshot, tcp_listener};
    use crate::model::{CollectorStats, Finding, Sample};

    /// The order as it was computed before `cited`: a scan of the findings per counter and
    /// comparison.
    fn reference(tick: Option<&Tick>) -> Vec<&'static str> {
        let cited = |name: &str| {
            let key = format!("{name}_per_s");
            tick.is_some_and(|t| {
                (t.findings.iter().filter(|f| f.is_active()))
                    .any(|f| f.evidence.get(&key).is_some_and(|v| *v > 0.0))
            })
        };
        let mut infos: Vec<(usize, &'static CounterInfo)> = (IMPORTANCE.iter().enumerate())
            .filter_map(|(i, n)| {
                QUEUE_COUNTER_INFO
                    .iter()
                    .find(|c| c.name == *n)
                    .map(|c| (i, c))
            })
            .collect();
        infos.sort_by_key(|(i, c)| {
            let moving = rate(tick, c.name).is_some_and(|r| r > 0.0);
            (!cited(c.name), !moving, *i)
        });
        infos.into_iter().map(|(_, c)| c.name).collect()
    }

    fn finding(evidence: &[(&str, f64)], active: bool) -> Finding {
        Finding {
            severity: Severity::Warning,
            rule: "test".into(),
            listener: None,
            key: None,
            message: "m".into(),
            evidence: evidence.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            next: "n".into(),
            cleared_s: (!active).then_some(1.0),
        }
    }

    #[test]
    fn counters_a_finding_cites_come_first_as_before() {
        let mut engine = Engine::new(EngineConfig::default());
        engine.ingest(Sample {
            snapshot: snapshot(vec![tcp_listener(80).build()], 1_000_000_000),
            depth_ranges: vec![],
            collector: CollectorStats::default(),
        });
        let base = engine.latest().cloned();
        // Findings, and counter rates per second.
        type Case = (Vec<Finding>, Vec<(&'static str, f64)>);
        let cases: Vec<Case> = vec![
            (vec![], vec![]),
            (
                vec![],
                vec![("SyncookiesFailed", 2.0), ("ListenDrops", 0.0)],
            ),
            (
                vec![
                    finding(&[("SyncookiesSent_per_s", 3.0), ("depth", 9.0)], true),
                    finding(&[("TCPReqQFullDoCookies_per_s", 1.0)], false),
                    finding(&[("EmbryonicRsts_per_s", 0.0), ("Other_per_s", 5.0)], true),
                ],
                vec![("ListenOverflows", 1.0)],
            ),
            (
                vec![finding(&[("SyncookiesFailed_per_s", f64::NAN)], true)],
                vec![("TCPReqQFullDrop", 4.0)],
            ),
        ];
        assert_eq!(
            reference(None),
            by_priority(None).iter().map(|c| c.name).collect::<Vec<_>>()
        );
        for (findings, rates) in cases {
            let mut tick = base.clone().expect("a tick");
            tick.findings = findings;
            for (name, r) in rates {
                tick.counter_rates.insert(name.into(), Some(r));
            }
            let got: Vec<&str> = by_priority(Some(&tick)).iter().map(|c| c.name).collect();
            assert_eq!(got, reference(Some(&tick)), "{:?}", tick.findings);
        }
    }
}
