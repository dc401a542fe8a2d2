//! sockq's two Prometheus exposition formats (src/export/prometheus/encode.rs) against golden
//! files and the Prometheus project's own parsers: `promtool check metrics` (the 0.0.4 text
//! parser and linter) and promtool's OpenMetrics parser (backfill), whose stored values
//! `promtool tsdb dump` prints with Go's `%g`, so floats are compared with Go's formatting.
//! Accept changed golden files with `INSTA_UPDATE=always cargo test --test prometheus_format`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

mod common;

use std::collections::BTreeSet;

use common::{exposition, promtool};
use sockq::export::prometheus::{self as prom, Family, Kind, MetricSample, Value};

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

/// One family per rule of the two formats.
fn golden_families() -> Vec<Family> {
    vec![
        family(
            "demo_requests_total",
            "Requests served. HELP escapes: a backslash \\ a quote \" and a\nline feed.",
            Kind::Counter,
            vec![
                sample(&[("path", "/"), ("code", "200")], Value::Int(1027)),
                sample(
                    &[("path", "C:\\dir \"quoted\"\nnext line"), ("code", "404")],
                    Value::Int(3),
                ),
                sample(&[("path", "/ünïcødé ✓"), ("code", "500")], Value::Int(0)),
                sample(&[("path", "/max"), ("code", "200")], Value::Int(u64::MAX)),
            ],
        ),
        family(
            "demo_cpu_seconds_total",
            "A counter with a unit.",
            Kind::Counter,
            vec![sample(&[], Value::Float(12.34))],
        ),
        family(
            "demo_queue_depth",
            "A gauge of integers, with and without labels.",
            Kind::Gauge,
            vec![
                sample(&[], Value::Int(0)),
                sample(&[("queue", "a")], Value::Int(1_000_000)),
            ],
        ),
        family(
            "demo_temperature_celsius",
            "A gauge of floats as Go writes them.",
            Kind::Gauge,
            [
                ("zero", 0.0),
                ("negative", -2.5),
                ("small", 0.0001),
                ("smaller", 0.000015),
                ("tenth", 0.1),
                ("below_1e6", 999_999.5),
                ("million", 1e6),
                ("huge", 1.8446744073709552e19),
                ("tiny", 5e-324),
            ]
            .into_iter()
            .map(|(k, v)| sample(&[("case", k)], Value::Float(v)))
            .collect(),
        ),
        family(
            "demo_last_run_timestamp_seconds",
            "A gauge in seconds (OpenMetrics: UNIT seconds).",
            Kind::Gauge,
            vec![sample(&[], Value::Float(1_735_689_600.25))],
        ),
        family(
            "demo_memory_bytes",
            "A gauge in bytes (OpenMetrics: UNIT bytes).",
            Kind::Gauge,
            vec![sample(&[], Value::Int(8_388_608))],
        ),
        family(
            "demo_build_info",
            "An info metric (0.0.4: a gauge of 1).",
            Kind::Info,
            vec![sample(
                &[("version", "1.2.3"), ("revision", "0123456789ab")],
                Value::Int(1),
            )],
        ),
        family(
            "demo_never_total",
            "A family without samples: left out of both formats.",
            Kind::Counter,
            vec![],
        ),
    ]
}

#[test]
fn golden_files_of_both_formats_pass_promtool() {
    let fs = golden_families();
    let text = prom::encode_text(&fs);
    let om = prom::encode_openmetrics(&fs);
    insta::assert_snapshot!("text_0_0_4", text);
    insta::assert_snapshot!("openmetrics_1_0", om);
    promtool::check_metrics(&text).unwrap();
    let Some(parsed) = promtool::parse_openmetrics(&om).unwrap() else {
        return;
    };
    // Every sample reached the store, with its labels unescaped as written.
    assert_eq!(
        parsed.len(),
        fs.iter().map(|f| f.samples.len()).sum::<usize>()
    );
    assert!(
        parsed.iter().any(|(series, value)| series
            .contains(r#"path="C:\\dir \"quoted\"\nnext line""#)
            && value == "3"),
        "{parsed:#?}"
    );
}

/// Floats of every kind: the formats' corner cases, arbitrary bit patterns (every exponent),
/// short decimals (what a measurement usually is), ties and subnormals.
fn float_cases() -> Vec<f64> {
    let mut v = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.1,
        0.5,
        1e-4,
        9.999e-5,
        1e-5,
        123_456.0,
        999_999.0,
        999_999.9,
        1e6,
        1_000_001.0,
        1e21,
        1e22,
        1e100,
        1.7e308,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        2f64.powi(53),
        2f64.powi(53) + 2.0,
        1_735_689_600.123,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    while v.len() < 2_000 {
        let bits = f64::from_bits(next());
        if bits.is_finite() {
            v.push(bits);
        }
        let scale = 10f64.powi((next() % 20) as i32 - 8);
        v.push((next() % 100_000) as f64 * scale);
    }
    // Halfway between two shortest candidates (Go takes the even one), and subnormals.
    for _ in 0..300 {
        let k = (1u64 << 48) + next() % (1u64 << 52);
        v.push(k as f64 + [0.25, 0.5, 0.75][(next() % 3) as usize]);
        v.push(-(((1u64 << 54) + next() % (1u64 << 60)) as f64));
    }
    v.extend((1..50).map(f64::from_bits));
    v
}

#[test]
fn floats_are_written_as_go_writes_them() {
    let values = float_cases();
    let f = family(
        "demo_value",
        "Floats.",
        Kind::Gauge,
        values
            .iter()
            .enumerate()
            .map(|(i, v)| sample(&[("i", &i.to_string())], Value::Float(*v)))
            .collect(),
    );
    let om = prom::encode_openmetrics(std::slice::from_ref(&f));
    // The 0.0.4 text writes the same values.
    let text = prom::encode_text(std::slice::from_ref(&f));
    let values_of = |body: &str| -> Vec<String> {
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(values_of(&om), values_of(&text));
    for (v, written) in values.iter().zip(values_of(&text)) {
        if !v.is_nan() {
            assert_eq!(
                written.parse::<f64>().ok(),
                Some(*v),
                "{v:e} written {written}"
            );
        }
    }

    let Some(parsed) = promtool::parse_openmetrics(&om).unwrap() else {
        return;
    };
    assert_eq!(parsed.len(), values.len());
    let mut differ = Vec::new();
    for (series, go) in parsed {
        let i: usize = series
            .split("i=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("no index in {series}"));
        let ours = prom::format_float(values[i]);
        if ours != go {
            differ.push(format!("{:e}: sockq {ours}, Go {go}", values[i]));
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
}

#[test]
fn a_scrapes_families_pass_promtool_in_both_formats_with_the_same_samples() {
    let fs = exposition::rich_families();
    let text = prom::encode_text(&fs);
    let om = prom::encode_openmetrics(&fs);
    promtool::check_metrics(&text).unwrap();
    promtool::parse_openmetrics(&om).unwrap();
    let samples = |body: &str| -> BTreeSet<String> {
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(samples(&text), samples(&om));
    assert!(om.ends_with("\n# EOF\n") && !text.contains("# EOF"));
    // OpenMetrics names the families without the sample suffixes.
    for line in [
        "# TYPE sockq_listener_drops counter\n",
        "# TYPE sockq_build info\n",
        "# TYPE process_cpu_seconds counter\n",
        "# UNIT process_cpu_seconds seconds\n",
        "# UNIT process_resident_memory_bytes bytes\n",
        "# UNIT sockq_last_sample_timestamp_seconds seconds\n",
    ] {
        assert!(om.contains(line), "{line}");
    }
    for line in [
        "# TYPE sockq_listener_drops_total counter\n",
        "# TYPE sockq_build_info gauge\n",
        "sockq_syn_recv_age_seconds 1.5\n",
        "process_start_time_seconds 1.73568900027e+09\n",
        "process_max_fds 1048576\n",
    ] {
        assert!(text.contains(line), "{line}");
    }
    assert!(text.contains(r#"process="we\"ird\\ name\nx""#), "{text}");
}
