//! Value parsers of the command line: each error names the value (quoted, cut short) and what
//! is accepted; none panics on any input (huge, negative, NaN).

use std::net::SocketAddr;
use std::time::Duration;

use crate::model::lab::Scenario;

/// Parses a duration such as `1s`, `500ms`, `2m` or a bare number of seconds (`0.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = match s.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("{} is too long a duration", shown(s)))?,
        Ok(_) => return Err(format!("{} is not a positive duration", shown(s))),
        Err(_) => humantime::parse_duration(s.trim()).map_err(|e| {
            format!(
                "{} is not a duration ({e}); use e.g. 1s, 500ms, 2m or 0.5",
                shown(s)
            )
        })?,
    };
    Ok(d)
}

/// A value from the command line or the environment as an error message shows it: quoted,
/// escaped, and cut to 60 characters (a value can be anything, of any length).
pub(super) fn shown(s: &str) -> String {
    let cut: String = s.chars().take(60).collect();
    let more = if cut.len() < s.len() { "…" } else { "" };
    format!("{cut:?}{more}")
}

/// A number within `lo..=hi` (finite); the error names the value and the accepted range.
pub(super) fn number_within(s: &str, what: &str, lo: f64, hi: f64) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (lo..=hi).contains(&v) => Ok(v),
        _ => Err(format!(
            "{} is not accepted: {what} must be a number from {lo} to {hi}",
            shown(s)
        )),
    }
}

pub(super) fn parse_rate(s: &str) -> Result<f64, String> {
    number_within(s, "the arrival rate (clients per second)", 0.0, 10_000.0)
}

pub(super) fn parse_flood_rate(s: &str) -> Result<f64, String> {
    number_within(
        s,
        "the flood rate (spoofed SYNs per second)",
        0.0,
        1_000_000.0,
    )
}

pub(super) fn parse_lab_duration(s: &str) -> Result<Duration, String> {
    duration_within(
        s,
        "the lab's duration",
        Duration::from_secs(1),
        Duration::from_secs(24 * 3600),
    )
}

/// A duration within `lo..=hi`; the error names the value and the accepted range.
pub(super) fn duration_within(
    s: &str,
    what: &str,
    lo: Duration,
    hi: Duration,
) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < lo || d > hi {
        return Err(format!(
            "{} is out of range: {what} must be between {} and {}",
            shown(s),
            humantime::format_duration(lo),
            humantime::format_duration(hi)
        ));
    }
    Ok(d)
}

pub(super) fn parse_interval(s: &str) -> Result<Duration, String> {
    duration_within(
        s,
        "the interval",
        Duration::from_millis(100),
        Duration::from_secs(3600),
    )
}

pub(super) fn parse_fast_interval(s: &str) -> Result<Duration, String> {
    duration_within(
        s,
        "the fast interval",
        Duration::from_millis(10),
        Duration::from_secs(60),
    )
}

pub(super) fn parse_window(s: &str) -> Result<Duration, String> {
    duration_within(
        s,
        "the window",
        Duration::from_secs(10),
        Duration::from_secs(7 * 24 * 3600),
    )
}

pub(super) fn parse_budget(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().trim_end_matches('%').parse().map_err(|_| {
        format!(
            "{} is not a number; give a percentage of one core such as 2 or 0.5",
            shown(s)
        )
    })?;
    if !(0.1..=100.0).contains(&v) {
        return Err(format!(
            "{} is out of range: the CPU budget must be between 0.1 and 100 (% of one core)",
            shown(s)
        ));
    }
    Ok(v)
}

pub(super) fn parse_size(s: &str) -> Result<u64, String> {
    let b: bytesize::ByteSize = s.trim().parse().map_err(|e| {
        format!(
            "{} is not a size ({e}); use e.g. 64MiB, 1GB or 500000",
            shown(s)
        )
    })?;
    if b.as_u64() < 4096 {
        return Err(format!(
            "{} is too small: the size cap must be at least 4KiB",
            shown(s)
        ));
    }
    Ok(b.as_u64())
}

pub(super) fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse::<SocketAddr>().map_err(|_| {
        format!(
            "{} is not an IP address and port such as 127.0.0.1:9911 or [::1]:9911",
            shown(s)
        )
    })
}

/// `snapshot --cpu-window`: 0 (no second read), or from [`MIN_CPU_INTERVAL`] (two reads closer
/// together give no CPU share) to 10 s.
///
/// [`MIN_CPU_INTERVAL`]: crate::collect::owners::MIN_CPU_INTERVAL
pub(super) fn parse_cpu_window(s: &str) -> Result<Duration, String> {
    let (lo, hi) = (
        crate::collect::owners::MIN_CPU_INTERVAL,
        Duration::from_secs(10),
    );
    let d = parse_duration(s)?;
    if d.is_zero() || (lo..=hi).contains(&d) {
        return Ok(d);
    }
    Err(format!(
        "{} is out of range: the CPU window must be 0 (no CPU share, no wait) or between {} \
         and {} (two reads of a process closer together give no CPU share)",
        shown(s),
        humantime::format_duration(lo),
        humantime::format_duration(hi)
    ))
}

pub(super) fn parse_header_timeout(s: &str) -> Result<Duration, String> {
    // (allow_hyphen_values on the flag lets "-1" reach this parser and its message)
    duration_within(
        s,
        "the header timeout",
        Duration::from_millis(100),
        Duration::from_secs(300),
    )
}

/// The lab's scenarios on the command line, with their names and help in `--help`.
impl clap::ValueEnum for Scenario {
    fn value_variants<'a>() -> &'a [Self] {
        &Scenario::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.summary()))
    }
}

/// An on/off environment value: 1/0, true/false, yes/no, on/off, y/n (any case), or empty for
/// off. Anything else is refused with what is accepted (a typo must not turn a switch on).
pub(super) fn parse_onoff(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" | "n" | "off" => Ok(false),
        "1" | "true" | "yes" | "y" | "on" => Ok(true),
        _ => Err(format!(
            "{} is not on or off; use 1/0, true/false, yes/no, on/off, or empty for off",
            shown(s)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::SNAPSHOT_CPU_WINDOW;
    use clap::CommandFactory;

    #[test]
    fn cpu_window_is_0_or_200ms_to_10s() {
        let ms = Duration::from_millis;
        for (s, want) in [
            ("0", ms(0)),
            ("0s", ms(0)),
            ("200ms", ms(200)),
            ("250ms", ms(250)),
            ("0.5", ms(500)),
            ("10s", ms(10_000)),
        ] {
            assert_eq!(parse_cpu_window(s), Ok(want), "{s}");
        }
        for s in ["1ms", "199ms", "10.001s", "1m"] {
            let e = parse_cpu_window(s).unwrap_err();
            assert!(
                e.starts_with(&format!("{s:?} is out of range"))
                    && e.contains("0 (no CPU share, no wait) or between 200ms and 10s"),
                "{s}: {e}"
            );
        }
        for s in ["-1", "soon", "nan"] {
            assert!(parse_cpu_window(s).is_err(), "{s}");
        }
    }

    #[test]
    fn cpu_window_default_is_the_collectors() {
        let cmd = super::super::Cli::command();
        let snapshot = cmd.find_subcommand("snapshot").expect("snapshot");
        let arg = snapshot
            .get_arguments()
            .find(|a| a.get_id() == "cpu_window")
            .expect("--cpu-window");
        let default = arg.get_default_values();
        assert_eq!(default.len(), 1);
        let text = default[0].to_str().expect("utf-8");
        assert_eq!(parse_cpu_window(text), Ok(SNAPSHOT_CPU_WINDOW));
    }
}
