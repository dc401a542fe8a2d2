//! The two text formats of one metric model ([`Family`]), written by hand after their
//! specifications:
//!
//! - the Prometheus text format 0.0.4 (prometheus.io, "Exposition formats"): `# HELP` (with `\`
//!   and line feed escaped), `# TYPE` (`counter` or `gauge`; an info family is a gauge), then the
//!   samples; label values escape `\`, `"` and line feed;
//! - OpenMetrics 1.0 text: the family is named without its sample suffix — a counter
//!   `x_total` is the family `x` (its sample keeps `_total`), an info `x_info` the family `x` of
//!   type `info` —, `# UNIT` when the name ends in a base unit (`_seconds`, `_bytes`), HELP and
//!   label values escape `\`, `"` and line feed, and the exposition ends with `# EOF`.
//!
//! In both, a family without samples is left out, an integer is written as an integer, and a
//! float as Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes it (the Prometheus server and the
//! Go client do): the shortest digits that read back as the same float (the closest of them;
//! of two equally close, the even one), exponent form below 1e-4 and from 1e6 on (`1.5e-05`,
//! `1.7040672e+09`). tests/prometheus_format.rs compares thousands with Go's own output. [`Family`] never holds a NaN or an
//! infinite value; were one given here it would be written `NaN`, `+Inf`, `-Inf`, as both
//! formats spell them. An info sample's value is always 1.
//!
//! Why not a crate: `prometheus` writes only 0.0.4 and `prometheus-client` only OpenMetrics, each
//! from its own registry model; the crates that write both are registries of typed,
//! long-lived metrics too, while sockq builds its families afresh from each tick. Gauges,
//! counters and one info metric need only this module.

use std::fmt::Write as _;

use super::{Family, Kind, Value};

/// Encodes in the Prometheus text format 0.0.4 ([`super::TEXT_CONTENT_TYPE`]).
pub fn encode_text(families: &[Family]) -> String {
    let mut out = String::with_capacity(size_hint(families));
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        let ty = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge | Kind::Info => "gauge",
        };
        if !f.help.is_empty() {
            out.push_str("# HELP ");
            out.push_str(&f.name);
            out.push(' ');
            escape_into(&mut out, &f.help, false);
            out.push('\n');
        }
        let _ = writeln!(out, "# TYPE {} {ty}", f.name);
        write_samples(&mut out, f, &f.name);
    }
    out
}

/// Encodes in the OpenMetrics 1.0 text format ([`super::OPENMETRICS_CONTENT_TYPE`]), `# EOF`
/// included.
pub fn encode_openmetrics(families: &[Family]) -> String {
    let mut out = String::with_capacity(size_hint(families) + 6);
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        let (family, sample, ty) = openmetrics_names(f);
        if !f.help.is_empty() {
            out.push_str("# HELP ");
            out.push_str(family);
            out.push(' ');
            escape_into(&mut out, &f.help, true);
            out.push('\n');
        }
        let _ = writeln!(out, "# TYPE {family} {ty}");
        if let Some(unit) = unit_of(f.kind, family) {
            let _ = writeln!(out, "# UNIT {family} {unit}");
        }
        write_samples(&mut out, f, &sample);
    }
    out.push_str("# EOF\n");
    out
}

/// OpenMetrics names of a family: (family name, sample name, type). A counter's samples end in
/// `_total` and an info family's in `_info`; the family's name is without that suffix.
fn openmetrics_names(f: &Family) -> (&str, String, &'static str) {
    let (suffix, ty) = match f.kind {
        Kind::Counter => ("_total", "counter"),
        Kind::Info => ("_info", "info"),
        Kind::Gauge => return (&f.name, f.name.clone(), "gauge"),
    };
    let family = f.name.strip_suffix(suffix).unwrap_or(&f.name);
    (family, format!("{family}{suffix}"), ty)
}

/// The OpenMetrics unit of a gauge or counter family whose name ends in `_<unit>` (a base
/// unit); the spec requires the unit to be the name's suffix.
fn unit_of(kind: Kind, family: &str) -> Option<&'static str> {
    if kind == Kind::Info {
        return None;
    }
    ["seconds", "bytes"].into_iter().find(|unit| {
        family
            .strip_suffix(unit)
            .is_some_and(|rest| rest.ends_with('_') && rest.len() > 1)
    })
}

fn write_samples(out: &mut String, f: &Family, name: &str) {
    for s in &f.samples {
        out.push_str(name);
        if !s.labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in s.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                escape_into(out, v, true);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        match (f.kind, s.value) {
            (Kind::Info, _) => out.push('1'),
            (_, Value::Int(v)) => {
                let _ = write!(out, "{v}");
            }
            (_, Value::Float(v)) => push_go_float(out, v),
        }
        out.push('\n');
    }
}

/// Appends `s` escaped: `\` as `\\`, line feed as `\n`, and `"` as `\"` when `quote` (label
/// values in both formats, HELP in OpenMetrics; 0.0.4's HELP keeps `"` as it is).
fn escape_into(out: &mut String, s: &str, quote: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// `v` as Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes it.
pub fn format_float(v: f64) -> String {
    let mut s = String::new();
    push_go_float(&mut s, v);
    s
}

fn push_go_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    let (digits, exp) = shortest_digits(v.abs());
    if v.is_sign_negative() {
        out.push('-');
    }
    if digits.iter().all(|&d| d == b'0') {
        out.push('0');
        return;
    }
    let push = |out: &mut String, ds: &[u8]| ds.iter().for_each(|&d| out.push(char::from(d)));
    if !(-4..6).contains(&exp) {
        // %e: d[.ddd]e±XX, at least two exponent digits.
        push(out, &digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            push(out, &digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let _ = write!(out, "{:02}", exp.unsigned_abs());
        return;
    }
    // %f with as many decimals as the digits need; -4 <= exp < 6 here.
    let point = usize::try_from(exp + 1).unwrap_or(0); // digits before the decimal point
    if point == 0 {
        out.push('0');
    } else {
        push(out, &digits[..point.min(digits.len())]);
        (digits.len()..point).for_each(|_| out.push('0'));
    }
    if digits.len() > point {
        out.push('.');
        (exp + 1..0).for_each(|_| out.push('0'));
        push(out, &digits[point..]);
    }
}

/// Splits `{:e}` output (`d[.ddd]e[-]N`) into its digits and decimal exponent.
fn split_exp(sci: &str) -> (Vec<u8>, i32) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// The shortest digits that read back as `v` (finite, not negative) and the decimal exponent of
/// the first, as Go chooses them: the closest to `v` of the shortest, and on a tie — `v`
/// exactly halfway between two — the even one. Rust's `{:e}` makes the same choice except on a
/// tie, where it rounds up; a tie needs 16 or more digits (the decimal spacing must be at most
/// the float's spacing, about 2.2e-16 of the value) or a subnormal.
fn shortest_digits(v: f64) -> (Vec<u8>, i32) {
    let (digits, exp) = split_exp(&format!("{v:e}"));
    let n = digits.len();
    let odd = digits.last().is_some_and(|d| (d - b'0') % 2 == 1);
    if !odd || (n < 16 && v >= f64::MIN_POSITIVE) {
        return (digits, exp);
    }
    // All of v's digits: a double has at most 767 significant ones.
    let (exact, exact_exp) = split_exp(&format!("{v:.800e}"));
    let tie = exact_exp == exp
        && exact.get(n) == Some(&b'5')
        && exact
            .get(n + 1..)
            .is_some_and(|rest| rest.iter().all(|&d| d == b'0'));
    if !tie {
        return (digits, exp);
    }
    // The two halves' neighbours: the truncation and the one above it.
    let mut other = exact[..n].to_vec();
    let mut other_exp = exp;
    if other == digits {
        // `digits` is the truncation: the other is one more in the last place.
        let mut i = n;
        loop {
            if i == 0 {
                other.insert(0, b'1');
                other.pop();
                other_exp += 1;
                break;
            }
            i -= 1;
            if other[i] == b'9' {
                other[i] = b'0';
            } else {
                other[i] += 1;
                break;
            }
        }
    }
    while other.len() > 1 && other.last() == Some(&b'0') {
        other.pop();
    }
    let text: String = other.iter().map(|&d| char::from(d)).collect();
    let reads_back = format!("0.{text}e{}", other_exp + 1).parse::<f64>().ok() == Some(v);
    if reads_back && other.len() <= n {
        (other, other_exp)
    } else {
        (digits, exp)
    }
}

/// A guess at the output's size (avoids most reallocations of a large scrape).
fn size_hint(families: &[Family]) -> usize {
    families
        .iter()
        .map(|f| 2 * f.name.len() + f.help.len() + 32 + f.samples.len() * (f.name.len() + 80))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::prometheus::MetricSample;

    #[test]
    fn floats_are_written_as_go_writes_them() {
        // Go 1.19: strconv.FormatFloat(v, 'g', -1, 64) (and promtool tsdb dump's %g).
        for (v, go) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (0.001, "0.001"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (0.000015, "1.5e-05"),
            (0.00001, "1e-05"),
            (123456.7, "123456.7"),
            (100000.0, "100000"),
            (999999.0, "999999"),
            (1000000.0, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (1704067200.5, "1.7040672005e+09"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (1.8446744073709552e19, "1.8446744073709552e+19"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (0.30000000000000004, "0.30000000000000004"),
            // Exactly halfway between two 17-digit candidates: Go takes the even one.
            (-(1_149_636_667_324_797.0 + 0.25), "-1.1496366673247972e+15"),
            (1_149_636_667_324_797.0 + 0.75, "1.1496366673247978e+15"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(format_float(v), go, "{v:?}");
        }
    }

    #[test]
    fn formatted_floats_read_back_exactly() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            // xorshift64*: arbitrary bit patterns, i.e. every exponent.
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = f64::from_bits(x.wrapping_mul(0x2545_F491_4F6C_DD1D));
            if !v.is_finite() {
                continue;
            }
            let s = format_float(v);
            assert_eq!(s.parse::<f64>().ok(), Some(v), "{v:e} written {s}");
        }
    }

    fn family(name: &str, help: &str, kind: Kind, samples: Vec<MetricSample>) -> Family {
        Family {
            name: name.into(),
            help: help.into(),
            kind,
            samples,
        }
    }

    fn sample(labels: &[(&'static str, &str)], value: Value) -> MetricSample {
        MetricSample {
            labels: labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect(),
            value,
        }
    }

    #[test]
    fn escaping_follows_each_format() {
        let fs = [family(
            "x_total",
            "a \\ b \"c\"\nd",
            Kind::Counter,
            vec![sample(&[("l", "q\"b\\n\né")], Value::Int(3))],
        )];
        assert_eq!(
            encode_text(&fs),
            "# HELP x_total a \\\\ b \"c\"\\nd\n# TYPE x_total counter\n\
             x_total{l=\"q\\\"b\\\\n\\né\"} 3\n"
        );
        assert_eq!(
            encode_openmetrics(&fs),
            "# HELP x a \\\\ b \\\"c\\\"\\nd\n# TYPE x counter\n\
             x_total{l=\"q\\\"b\\\\n\\né\"} 3\n# EOF\n"
        );
    }

    #[test]
    fn openmetrics_names_families_without_their_sample_suffix() {
        let fs = [
            family(
                "a_seconds_total",
                "h",
                Kind::Counter,
                vec![sample(&[], Value::Float(1.5))],
            ),
            family(
                "b_info",
                "h",
                Kind::Info,
                vec![sample(&[("v", "1")], Value::Int(7))],
            ),
            family(
                "c_bytes",
                "h",
                Kind::Gauge,
                vec![sample(&[], Value::Int(4096))],
            ),
            family(
                "seconds",
                "h",
                Kind::Gauge,
                vec![sample(&[], Value::Int(1))],
            ),
            family("empty_total", "h", Kind::Counter, vec![]),
            family("d", "", Kind::Gauge, vec![sample(&[], Value::Float(1e6))]),
        ];
        assert_eq!(
            encode_openmetrics(&fs),
            "# HELP a_seconds h\n# TYPE a_seconds counter\n# UNIT a_seconds seconds\n\
             a_seconds_total 1.5\n\
             # HELP b h\n# TYPE b info\nb_info{v=\"1\"} 1\n\
             # HELP c_bytes h\n# TYPE c_bytes gauge\n# UNIT c_bytes bytes\nc_bytes 4096\n\
             # HELP seconds h\n# TYPE seconds gauge\nseconds 1\n\
             # TYPE d gauge\nd 1e+06\n\
             # EOF\n"
        );
        assert_eq!(
            encode_text(&fs),
            "# HELP a_seconds_total h\n# TYPE a_seconds_total counter\na_seconds_total 1.5\n\
             # HELP b_info h\n# TYPE b_info gauge\nb_info{v=\"1\"} 1\n\
             # HELP c_bytes h\n# TYPE c_bytes gauge\nc_bytes 4096\n\
             # HELP seconds h\n# TYPE seconds gauge\nseconds 1\n\
             # TYPE d gauge\nd 1e+06\n"
        );
        assert_eq!(encode_openmetrics(&[]), "# EOF\n");
        assert_eq!(encode_text(&[]), "");
    }
}
