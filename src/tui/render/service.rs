//! The detail screen's service section — after accept(): the listener's connections waiting
//! for accept(), in service (unread requests, unsent responses), closing; their memory; new
//! connections per second and Little's law; how many more fit before the owner's fd limit —
//! with sparklines of in service, unread and CLOSE-WAIT over the history. And why the numbers
//! are unknown when they are (`–` in the table).

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::text::{age_text, bytes_text, rate_text, safe, spark_text, wrap, UNKNOWN};
use super::theme::{section, Theme};
use crate::engine::Engine;
use crate::model::history::ServicePoint;
use crate::model::labels::tightest_owner;
use crate::model::{ServiceStats, ServiceTick, Severity, Tick};
use crate::rules::{ACCEPT_WAIT_MS, NOT_READING_MS, SLOW_READER_MS};
use crate::tui::app::Row;

/// Why a listener has no service numbers, in words: the dump failed (the collector's own
/// words), there was none (a recording made before sockq read them), or a UNIX listener.
pub(super) fn unknown_reason(row: &Row, tick: Option<&Tick>) -> String {
    if row.unix {
        return "a UNIX listener: sockq reads the connections of TCP listeners only".into();
    }
    if row.gone {
        return "the listener is gone".into();
    }
    let Some(t) = tick else {
        return "no sample yet".into();
    };
    let blind = t
        .snapshot
        .blind_spots
        .iter()
        .find(|b| b.starts_with("the listeners' connections"));
    match (&t.snapshot.service, blind) {
        (_, Some(b)) => safe(b),
        (None, None) => "this sample has no dump of the listeners' connections (a recording made before sockq read them, or one made with an older sockq)".into(),
        (Some(_), None) => "the dump of the listeners' connections did not include this listener (it appeared after the dump)".into(),
    }
}

/// The section's title: what it is, how old its numbers are, and whose they are.
fn title(row: &Row, tick: Option<&Tick>) -> String {
    let age = tick
        .and_then(|t| t.snapshot.service.as_ref())
        .map_or(0, |s| s.age_ms);
    let mut t = " After accept(): this listener's connections".to_string();
    if age >= 1000 {
        t.push_str(&format!(
            ", {} old (dump spaced out under the CPU budget)",
            age_text(age)
        ));
    }
    if let Some(s) = row.service.as_ref().filter(|s| s.group > 1) {
        t.push_str(&format!(
            ", shared by the SO_REUSEPORT group of {}",
            s.group
        ));
    }
    t.push(' ');
    t
}

/// The last points of the listener's children as one series per `get`; gaps `None`.
fn series(engine: &Engine, row: &Row, get: fn(&ServicePoint) -> u32) -> Vec<Option<f64>> {
    engine
        .listener(&row.key)
        .and_then(|h| h.service_points.as_ref())
        .map(|r| {
            r.iter()
                .map(|p| (!p.is_gap()).then(|| f64::from(get(p))))
                .collect()
        })
        .unwrap_or_default()
}

/// `label` then a sparkline filling the rest of `width`, scaled to the largest value shown.
fn spark_line(label: String, values: &[Option<f64>], width: usize, style: Style) -> Line<'static> {
    const LABEL_W: usize = 44;
    let label_w = label.chars().count().max(LABEL_W.min(width / 2));
    let spark_w = width.saturating_sub(label_w + 1);
    if spark_w < 4 {
        return Line::styled(label, style);
    }
    let shown = &values[values.len().saturating_sub(spark_w)..];
    let max = shown.iter().flatten().fold(1.0f64, |m, v| m.max(*v));
    Line::from(vec![
        Span::styled(format!("{label:<label_w$} "), style),
        Span::raw(spark_text(shown, spark_w, max)),
    ])
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `N conns B, oldest A` of unread or unsent bytes; `none` without any.
fn queued(conns: u64, bytes: u64, oldest: Option<u64>) -> String {
    if conns == 0 {
        return "none".into();
    }
    let oldest = oldest.map_or(String::new(), |ms| format!(", oldest {}", age_text(ms)));
    format!(
        "{} {}{oldest}",
        plural(conns, "conn", "conns"),
        bytes_text(bytes)
    )
}

/// The three charted numbers, each with its sparkline.
fn chart_lines(
    row: &Row,
    s: &ServiceStats,
    engine: &Engine,
    width: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    let unread_style = if s.unread_oldest_ms.is_some_and(|ms| ms >= NOT_READING_MS) {
        theme.sev(Severity::Warning)
    } else {
        Style::default()
    };
    let queued_cw = if s.close_wait_unaccepted > 0 {
        format!(" (+{} still in the accept queue)", s.close_wait_unaccepted)
    } else {
        String::new()
    };
    vec![
        spark_line(
            format!("in service (accepted, open) {}", s.in_service),
            &series(engine, row, |p| p.in_service),
            width,
            Style::default(),
        ),
        spark_line(
            format!(
                "unread requests {}",
                queued(s.unread_conns, s.unread_bytes, s.unread_oldest_ms)
            ),
            &series(engine, row, |p| p.unread_conns),
            width,
            unread_style,
        ),
        spark_line(
            format!(
                "CLOSE-WAIT {}{queued_cw}",
                s.close_wait.saturating_sub(s.close_wait_unaccepted)
            ),
            &series(engine, row, |p| p.close_wait),
            width,
            Style::default(),
        ),
    ]
}

/// The rest in sentences, most telling first: the head-of-line wait, unsent responses,
/// arrivals and Little's law, the fd headroom, the other closing states, memory.
fn facts(
    row: &Row,
    s: &ServiceStats,
    rates: Option<&ServiceTick>,
    tick: Option<&Tick>,
) -> Vec<String> {
    let waiting = match s.waiting_oldest_ms.filter(|_| s.waiting > 0) {
        Some(ms) => format!(
            "waiting for accept() {}, oldest {} (head of line)",
            s.waiting,
            age_text(ms)
        ),
        None => format!("waiting for accept() {}", s.waiting),
    };
    let new = rates.and_then(|r| r.new_conns_per_s);
    let w = rates.and_then(|r| r.mean_conn_lifetime_s);
    let lifetime = match w {
        Some(w) => format!(
            "mean connection lifetime (L/λ) {w:.2} s, = response time only without keep-alive"
        ),
        None => format!("mean connection lifetime (L/λ) {UNKNOWN}: no new connection seen"),
    };
    let mut facts = vec![
        waiting,
        format!("new connections {}/s", rate_text(new)),
        format!(
            "unsent responses {}",
            queued(s.unsent_conns, s.unsent_bytes, s.unsent_oldest_ms)
        ),
        lifetime,
    ];
    facts.extend(fd_headroom(row, s, w));
    facts.push(format!(
        "FIN-WAIT-1 {} · FIN-WAIT-2 {} · TIME-WAIT {}",
        s.fin_wait1, s.fin_wait2, s.time_wait
    ));
    facts.extend(memory(s, tick));
    facts
}

/// How many more connections fit before the tightest owner's fd limit, and at the current
/// lifetime W the arrival rate its descriptors allow (the notes' "fd limit / response time").
fn fd_headroom(row: &Row, s: &ServiceStats, w: Option<f64>) -> Vec<String> {
    let Some(p) = tightest_owner(&row.owners) else {
        return vec!["fd limit: owner unknown".into()];
    };
    let who = format!("{}[{}]", safe(&p.comm), p.pid);
    let (Some(open), Some(limit)) = (p.fds_open, p.fd_limit) else {
        return vec![format!("fd limit of {who}: unknown or unlimited")];
    };
    let left = limit.saturating_sub(open);
    let mut out = vec![format!(
        "{left} more connections fit before {who}'s fd limit ({open}/{limit})"
    )];
    if let Some(w) = w.filter(|&w| w > 0.0) {
        out.push(format!(
            "fds allow {} new/s at this lifetime",
            rate_text(Some((s.in_service + left) as f64 / w))
        ));
    }
    out
}

/// The children's memory, and the host's TCP memory against net.ipv4.tcp_mem.
fn memory(s: &ServiceStats, tick: Option<&Tick>) -> Vec<String> {
    let mut out = vec![format!(
        "socket memory {}",
        s.memory().map_or(UNKNOWN.to_string(), bytes_text)
    )];
    let snap = tick.map(|t| &t.snapshot);
    if let Some(b) = snap
        .and_then(|s| s.sockstat.as_ref())
        .and_then(|s| s.mem_bytes())
    {
        let limits = snap
            .and_then(|s| s.tunables.tcp_mem)
            .map_or(String::new(), |l| {
                format!(", tcp_mem {}/{}/{} pages", l[0], l[1], l[2])
            });
        out.push(format!("TCP memory {} host-wide{limits}", bytes_text(b)));
    }
    out
}

/// `items` on as few lines of `width` as first fit allows, ` · ` between items on a line; an
/// item wider than a line is wrapped on lines of its own.
fn pack(items: Vec<String>, width: usize) -> Vec<String> {
    const SEP: &str = " · ";
    let mut lines: Vec<String> = Vec::new();
    for item in items {
        let n = item.chars().count();
        if n > width {
            lines.extend(wrap(&item, width));
            continue;
        }
        match lines
            .iter_mut()
            .find(|l| l.chars().count() + SEP.chars().count() + n <= width)
        {
            Some(l) => {
                l.push_str(SEP);
                l.push_str(&item);
            }
            None => lines.push(item),
        }
    }
    lines
}

/// The section's lines at `width`: the three charts, then the facts packed into as few lines as
/// they wrap to (`·` between them); or the reason the numbers are unknown.
pub(super) fn service_lines(
    row: &Row,
    engine: &Engine,
    width: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    let tick = engine.latest();
    let Some(s) = row.service.as_ref() else {
        return wrap(&format!("{UNKNOWN} {}", unknown_reason(row, tick)), width)
            .into_iter()
            .map(|l| Line::styled(l, theme.dim()))
            .collect();
    };
    let mut lines = chart_lines(row, s, engine, width, theme);
    let facts = facts(row, s, row.service_rates.as_ref(), tick);
    let warn = s
        .waiting_oldest_ms
        .is_some_and(|ms| ms > ACCEPT_WAIT_MS && s.waiting > 0)
        || s.unsent_oldest_ms.is_some_and(|ms| ms >= SLOW_READER_MS);
    let style = if warn {
        theme.sev(Severity::Warning)
    } else {
        Style::default()
    };
    lines.extend(
        pack(facts, width)
            .into_iter()
            .map(|l| Line::styled(l, style)),
    );
    lines
}

/// Draws the section in `area`: a titled rule, then `lines` (from [`service_lines`]).
pub(super) fn draw_service(
    f: &mut Frame,
    area: Rect,
    row: &Row,
    tick: Option<&Tick>,
    lines: Vec<Line<'static>>,
    theme: Theme,
) {
    let block = section(title(row, tick), theme.bold());
    f.render_widget(Paragraph::new(lines).block(block), area);
}

#[cfg(test)]
mod tests {
    use super::pack;

    #[test]
    fn pack_puts_each_item_on_the_first_line_it_fits_and_wraps_long_ones() {
        let items = ["aaaa", "bbbbbb", "cc", "dddddddddddd"]
            .map(String::from)
            .to_vec();
        assert_eq!(pack(items, 10), ["aaaa · cc", "bbbbbb", "dddddddddd", "dd"]);
        assert_eq!(pack(vec!["ab".into(), "cd".into()], 7), ["ab · cd"]);
        assert_eq!(pack(vec!["ab".into(), "cd".into()], 6), ["ab", "cd"]);
    }
}
