//! Text helpers: sparklines as text, rates, and truncation that keeps what matters visible.

use std::fmt::Display;

pub(super) use crate::model::labels::short_age;
use crate::model::labels::{bytes_label, process_label, terminal_safe};
use crate::model::Owners;

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

/// Text from the system (process names, socket paths, host names, error texts) made safe for
/// the terminal. ratatui drops C0 and C1 control characters silently (a name changes without a
/// trace) and passes bidirectional overrides through raw; both become visible escapes here.
pub(super) fn safe(text: &str) -> String {
    terminal_safe(text).into_owned()
}

/// What a cell shows for a number sockq does not know (the detail view says why).
pub(super) const UNKNOWN: &str = "–";

/// An age in words: `450 ms`, `2.3 s`, `42 s`, `12 min`.
pub(super) fn age_text(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..10_000 => format!("{:.1} s", ms as f64 / 1000.0),
        10_000..600_000 => format!("{} s", ms / 1000),
        _ => format!("{} min", ms / 60_000),
    }
}

/// Bytes in binary units (`model::labels::bytes_label`).
pub(super) fn bytes_text(b: u64) -> String {
    bytes_label(b)
}

/// A rate per second: whole from 100 up, one decimal below that, `-` when unknown.
pub(super) fn rate_text(r: Option<f64>) -> String {
    match r {
        None => "-".into(),
        Some(r) if r >= 100.0 => format!("{r:.0}"),
        Some(r) => format!("{r:.1}"),
    }
}

/// A number, or `absent` (`?`, `-`, `unlimited`) when there is none.
pub(super) fn num_or<T: Display>(v: Option<T>, absent: &str) -> String {
    v.map_or_else(|| absent.to_string(), |v| v.to_string())
}

/// `s` cut to `width` characters, an ellipsis marking the cut.
pub(super) fn truncate(s: &str, width: usize) -> String {
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

/// An address shortened in the middle so the port stays visible.
pub(super) fn fit_endpoint(ep: &str, w: usize) -> String {
    let ep = safe(ep);
    let ep = ep.as_str();
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
pub(super) fn fit_process(owners: &Owners, w: usize) -> String {
    let label = safe(&process_label(owners));
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

/// `text` wrapped at `width` columns on spaces (greedy, as a paragraph wraps), a word longer
/// than the width cut across lines. Drawn without ratatui's wrapping, so the lines counted are
/// the lines drawn.
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut cur_w = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let mut word: Vec<char> = word.chars().collect();
        // A word wider than a line gets lines of its own, cut at the width.
        if word.len() > width {
            if cur_w > 0 {
                lines.push(std::mem::take(&mut cur));
                cur_w = 0;
            }
            while word.len() > width {
                lines.push(word.drain(..width).collect());
            }
        }
        if cur_w > 0 && cur_w + 1 + word.len() > width {
            lines.push(std::mem::take(&mut cur));
            cur_w = 0;
        }
        if cur_w > 0 {
            cur.push(' ');
            cur_w += 1;
        }
        cur_w += word.len();
        cur.extend(word);
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// The first sentence of `text`: up to the first period followed by a space (a decimal point
/// is not one), or all of it.
pub(super) fn first_sentence(text: &str) -> &str {
    text.find(". ").map_or(text, |i| &text[..=i])
}

#[cfg(test)]
mod tests {
    use super::{first_sentence, wrap};

    #[test]
    fn wrap_breaks_on_spaces_and_cuts_long_words() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("aa bb cc", 8), ["aa bb cc"]);
        assert_eq!(wrap("abcdefgh ij", 3), ["abc", "def", "gh", "ij"]);
        assert_eq!(wrap("", 4), [""]);
        assert_eq!(wrap("a  b", 4), ["a b"]);
    }

    #[test]
    fn first_sentence_stops_at_a_period_and_a_space() {
        assert_eq!(
            first_sentence("3.0 drops/s (on a:1). With more."),
            "3.0 drops/s (on a:1)."
        );
        assert_eq!(first_sentence("One only."), "One only.");
    }
}
