//! Command-line interface. Every flag is also an environment variable (`SOCKQ_…`).

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::collect::netns::{NetnsError, NetnsTarget};
use crate::collect::sampler::{Sampler, SamplerConfig, SamplerEvent};
use crate::collect::{Collector, CollectorOptions};
use crate::engine::{Engine, EngineConfig};
use crate::export;
use crate::model::Filter;

/// Exit codes (documented in README.md and `sockq --help`).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The kernel or /proc could not be read.
    pub const RUNTIME: u8 = 1;
    /// Bad usage: an unknown flag or a bad value (clap's own code).
    pub const USAGE: u8 = 2;
    /// The requested network namespace does not exist or cannot be entered.
    pub const NETNS: u8 = 3;
}

const AFTER_HELP: &str = "\
Exit codes: 0 ok; 1 the kernel or /proc could not be read; 2 bad usage, or the dashboard
started without a terminal; 3 the network namespace does not exist or cannot be entered.

Numbers: Accept Q is the kernel's sk_ack_backlog (ss Recv-Q), Backlog is sk_max_ack_backlog
(ss Send-Q); the accept queue is full when Accept Q > Backlog. See docs/metrics.md.";

/// sockq: a live monitor of Linux socket queues (SYN queue, accept queue, drops, and the
/// process that calls accept()).
#[derive(Debug, Parser)]
#[command(
    name = "sockq",
    version,
    about,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; without one, the live dashboard.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Dashboard options (when no subcommand is given).
    #[command(flatten)]
    pub dashboard: DashboardArgs,
}

/// Options of the dashboard (plain `sockq`).
#[derive(Debug, Clone, Args)]
pub struct DashboardArgs {
    /// No colours (severity stays visible by its label); NO_COLOR in the environment does the same.
    #[arg(long, env = "SOCKQ_NO_COLOR")]
    pub no_color: bool,
    #[command(flatten)]
    pub live: LiveArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print one sample of every listening socket, the queue counters and the tunables.
    Snapshot(SnapshotArgs),
    /// Print one line per tick (or JSON lines with --json): busiest listeners, counter rates,
    /// findings. Stops after --count ticks, or on Ctrl-C / SIGTERM / a closed pipe.
    Watch(WatchArgs),
    /// Serve Prometheus metrics over HTTP (GET /metrics; OpenMetrics on request) from the live
    /// model, on 127.0.0.1:9911 unless --listen says otherwise. Stops on Ctrl-C / SIGTERM.
    Serve(crate::export::serve::ServeArgs),
    /// Workshop lab: a private network namespace with a demo server and clients that reproduce
    /// one queue phenomenon, with the dashboard, a narration panel and knobs.
    Lab(LabArgs),
    /// Record every sample to a compressed file (rotating at a size cap) for later replay.
    Record(RecordArgs),
    /// Replay a recording in the dashboard (or as JSON lines with --json).
    Replay(ReplayArgs),
    /// (internal) the lab's demo server process.
    #[command(name = "__lab-server", hide = true)]
    LabServer(crate::lab::server::ServerArgs),
    /// Print the JSON Schema of `snapshot --json` (default) or of `watch --json` lines (`tick`).
    Schema {
        /// Which document: `snapshot` or `tick`.
        #[arg(default_value = "snapshot", value_parser = ["snapshot", "tick"])]
        which: String,
    },
}

/// Parses a duration such as `1s`, `500ms`, `2m` or a bare number of seconds (`0.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = match s.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        Ok(_) => return Err(format!("{s:?} is not a positive duration")),
        Err(_) => humantime::parse_duration(s.trim())
            .map_err(|e| format!("{s:?} is not a duration ({e}); use e.g. 1s, 500ms, 2m or 0.5"))?,
    };
    Ok(d)
}

/// A duration within `lo..=hi`; the error names the value and the accepted range.
fn duration_within(s: &str, what: &str, lo: Duration, hi: Duration) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < lo || d > hi {
        return Err(format!(
            "{s:?} is out of range: {what} must be between {} and {}",
            humantime::format_duration(lo),
            humantime::format_duration(hi)
        ));
    }
    Ok(d)
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    duration_within(
        s,
        "the interval",
        Duration::from_millis(100),
        Duration::from_secs(3600),
    )
}

fn parse_fast_interval(s: &str) -> Result<Duration, String> {
    duration_within(
        s,
        "the fast interval",
        Duration::from_millis(10),
        Duration::from_secs(60),
    )
}

fn parse_window(s: &str) -> Result<Duration, String> {
    duration_within(
        s,
        "the window",
        Duration::from_secs(10),
        Duration::from_secs(7 * 24 * 3600),
    )
}

fn parse_budget(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().trim_end_matches('%').parse().map_err(|_| {
        format!("{s:?} is not a number; give a percentage of one core such as 2 or 0.5")
    })?;
    if !(0.1..=100.0).contains(&v) {
        return Err(format!(
            "{s:?} is out of range: the CPU budget must be between 0.1 and 100 (% of one core)"
        ));
    }
    Ok(v)
}

/// Live-sampling settings shared by `watch` and the dashboard.
#[derive(Debug, Clone, Args)]
pub struct LiveArgs {
    /// Display interval: one full sample per tick (e.g. 1s, 500ms, 2).
    #[arg(long, default_value = "1s", value_parser = parse_interval, env = "SOCKQ_INTERVAL")]
    pub interval: Duration,
    /// Fast listener sampling interval, catching bursts between ticks (10 Hz by default).
    #[arg(long, default_value = "100ms", value_parser = parse_fast_interval, env = "SOCKQ_FAST_INTERVAL")]
    pub fast_interval: Duration,
    /// CPU budget of the sampler, in percent of one core; expensive dumps are spaced to keep it.
    #[arg(long, default_value = "2", value_parser = parse_budget, env = "SOCKQ_CPU_BUDGET")]
    pub cpu_budget: f64,
    /// History window kept in memory (e.g. 15m).
    #[arg(long, default_value = "15m", value_parser = parse_window, env = "SOCKQ_WINDOW")]
    pub window: Duration,
    /// Leave out UNIX stream listeners.
    #[arg(long, env = "SOCKQ_NO_UNIX")]
    pub no_unix: bool,
    /// Do not look up owning processes (skips reading /proc/PID/fd).
    #[arg(long, env = "SOCKQ_NO_OWNERS")]
    pub no_owners: bool,
    #[command(flatten)]
    pub netns: NetnsArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
}

impl LiveArgs {
    /// Sampler settings.
    pub fn sampler_config(&self) -> SamplerConfig {
        SamplerConfig {
            interval: self.interval,
            fast_interval: self.fast_interval,
            budget_percent: self.cpu_budget,
            collector: CollectorOptions {
                unix: !self.no_unix,
                owners: !self.no_owners,
                ..CollectorOptions::default()
            },
        }
    }

    /// Engine settings.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            interval: self.interval,
            window: self.window,
            ..EngineConfig::default()
        }
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    let b: bytesize::ByteSize = s
        .trim()
        .parse()
        .map_err(|e| format!("{s:?} is not a size ({e}); use e.g. 64MiB, 1GB or 500000"))?;
    if b.as_u64() < 4096 {
        return Err(format!(
            "{s:?} is too small: the size cap must be at least 4KiB"
        ));
    }
    Ok(b.as_u64())
}

/// `sockq record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The file to write (gzip JSON lines; rotated to FILE.1, FILE.2, … at --max-size).
    pub file: std::path::PathBuf,
    /// Rotate when the file reaches this size.
    #[arg(long, default_value = "64MiB", value_parser = parse_size, env = "SOCKQ_MAX_SIZE")]
    pub max_size: u64,
    /// How many rotated files to keep.
    #[arg(long, default_value = "4", env = "SOCKQ_KEEP")]
    pub keep: u32,
    /// Stop after N samples.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    #[command(flatten)]
    pub live: LiveArgs,
}

/// `sockq replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A file written by `sockq record`.
    pub file: std::path::PathBuf,
    /// Print one JSON object per tick (as `watch --json`) instead of the dashboard.
    #[arg(long)]
    pub json: bool,
    /// No colours.
    #[arg(long, env = "SOCKQ_NO_COLOR")]
    pub no_color: bool,
    /// History window kept in memory.
    #[arg(long, default_value = "15m", value_parser = parse_window)]
    pub window: Duration,
}

fn record(args: RecordArgs) -> anyhow::Result<()> {
    let stop = stop_flag()?;
    let live = &args.live;
    let sampler = Sampler::start(live.netns.target(), live.sampler_config())?;
    let header = crate::record::Header {
        format: "sockq-recording".into(),
        version: crate::record::RECORDING_VERSION,
        sockq: env!("CARGO_PKG_VERSION").into(),
        interval_s: live.interval.as_secs_f64(),
        netns: live.netns.target().label(),
    };
    let mut rec = crate::record::Recorder::create(&args.file, header, args.max_size, args.keep)?;
    eprintln!(
        "sockq: recording to {} every {} (rotating at {}, keeping {}); Ctrl-C stops",
        args.file.display(),
        humantime::format_duration(live.interval),
        bytesize::ByteSize(args.max_size),
        args.keep
    );
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Some(event) = sampler.recv_timeout(Duration::from_millis(100))? else {
            continue;
        };
        match event {
            SamplerEvent::Error(e) => {
                eprintln!("sockq: sample failed (a gap in the recording): {e}")
            }
            SamplerEvent::Sample(s) => {
                rec.write(&s)?;
                n += 1;
                if args.count.is_some_and(|c| n >= c) {
                    break;
                }
            }
        }
    }
    eprintln!("sockq: recorded {n} samples");
    Ok(())
}

fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let rec = crate::record::read(&args.file)?;
    let engine_cfg = EngineConfig {
        interval: Duration::from_secs_f64(rec.header.interval_s.clamp(0.1, 3600.0)),
        window: args.window,
        ..EngineConfig::default()
    };
    if args.json {
        let mut engine = Engine::new(engine_cfg);
        let mut out = std::io::stdout().lock();
        for s in rec.samples {
            serde_json::to_writer(&mut out, engine.ingest(s))?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        if let Some(d) = rec.damage {
            anyhow::bail!(
                "{}: {d}; every sample before it was replayed",
                args.file.display()
            );
        }
        return Ok(());
    }
    if rec.samples.is_empty() {
        anyhow::bail!(
            "{}: no samples to replay{}",
            args.file.display(),
            rec.damage.map(|d| format!(" ({d})")).unwrap_or_default()
        );
    }
    let color = !(args.no_color || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()));
    crate::tui::run_replay(
        engine_cfg,
        color,
        crate::tui::source::Replay::new(rec.samples, rec.damage),
    )
}

/// `sockq lab`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// The scenario.
    #[arg(value_enum, default_value = "slow-consumer")]
    pub scenario: crate::lab::Scenario,
    /// No dashboard: print one JSON object per tick (the tick and the lab's status).
    #[arg(long)]
    pub headless: bool,
    /// With --headless: stop after this long (default: the scenario's script).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stay on the first step with the given knobs (no script).
    #[arg(long)]
    pub no_steps: bool,
    /// Display interval.
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Client arrivals per second.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Server worker threads.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: Option<u32>,
    /// Server time per connection, ms.
    #[arg(long)]
    pub service_ms: Option<u64>,
    /// listen() backlog the server asks for.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub backlog: Option<u32>,
    /// net.core.somaxconn of the lab namespace.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub somaxconn: Option<u32>,
    /// net.ipv4.tcp_syncookies of the lab namespace (0, 1 or 2).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub syncookies: Option<u8>,
    /// The server's RLIMIT_NOFILE.
    #[arg(long, value_parser = clap::value_parser!(u64).range(16..))]
    pub fd_limit: Option<u64>,
    /// net.ipv4.tcp_abort_on_overflow of the lab namespace (0 or 1).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub abort_on_overflow: Option<u8>,
    /// Spoofed SYNs per second (syn-flood).
    #[arg(long)]
    pub flood_rate: Option<f64>,
    /// No colours.
    #[arg(long, env = "SOCKQ_NO_COLOR")]
    pub no_color: bool,
}

impl LabArgs {
    fn knobs(&self) -> crate::lab::Knobs {
        let mut k = self.scenario.defaults();
        if let Some(v) = self.rate {
            k.rate = v.max(0.0);
        }
        if let Some(v) = self.workers {
            k.workers = v;
        }
        if let Some(v) = self.service_ms {
            k.service_ms = v.max(1);
        }
        if let Some(v) = self.backlog {
            k.backlog = v;
        }
        if let Some(v) = self.somaxconn {
            k.somaxconn = v;
        }
        if let Some(v) = self.syncookies {
            k.syncookies = v;
        }
        if self.fd_limit.is_some() {
            k.fd_limit = self.fd_limit;
        }
        if let Some(v) = self.abort_on_overflow {
            k.abort_on_overflow = v;
        }
        if let Some(v) = self.flood_rate {
            k.flood_rate = v.max(0.0);
        }
        k
    }
}

/// One line of `sockq lab --headless`.
#[derive(Debug, serde::Serialize)]
struct LabLine<'a> {
    tick: &'a crate::model::Tick,
    lab: crate::lab::LabStatus,
}

fn lab(args: LabArgs) -> anyhow::Result<()> {
    // First, while the process is still single-threaded: every thread and child made after
    // this lives in the lab's private namespace.
    crate::lab::enter_private_namespace()?;
    let stop = stop_flag()?;
    let mut lab = crate::lab::Lab::start(args.scenario, args.knobs())?;
    let sampler_cfg = SamplerConfig {
        interval: args.interval,
        ..SamplerConfig::default()
    };
    let engine_cfg = EngineConfig {
        interval: args.interval,
        ..EngineConfig::default()
    };
    if !args.headless {
        return crate::tui::run_with_lab(
            crate::tui::DashboardConfig {
                target: crate::collect::netns::NetnsTarget::Lab,
                sampler: sampler_cfg,
                engine: engine_cfg,
                color: !(args.no_color
                    || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())),
                filter: String::new(),
                ports: Vec::new(),
            },
            Some(lab),
        );
    }
    let duration = args
        .duration
        .unwrap_or(Duration::from_secs(lab.script_secs()));
    let sampler = Sampler::start(crate::collect::netns::NetnsTarget::Lab, sampler_cfg)?;
    let mut engine = Engine::new(engine_cfg);
    let start = std::time::Instant::now();
    let mut out = std::io::stdout().lock();
    while !stop.load(Ordering::Relaxed) && start.elapsed() < duration {
        if !args.no_steps {
            lab.advance_by_time()?;
        }
        let Some(event) = sampler.recv_timeout(Duration::from_millis(100))? else {
            continue;
        };
        match event {
            SamplerEvent::Error(e) => {
                engine.record_gap();
                eprintln!("sockq: sample failed (recorded as a gap): {e}");
            }
            SamplerEvent::Sample(sample) => {
                let tick = engine.ingest(*sample);
                let line = LabLine {
                    tick,
                    lab: lab.status(Some(tick)),
                };
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
                out.flush()?;
            }
        }
    }
    Ok(())
}

/// `sockq watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Print one JSON object per tick (JSON lines; schema: `sockq schema tick`).
    #[arg(long, env = "SOCKQ_JSON")]
    pub json: bool,
    /// Stop after N ticks.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), env = "SOCKQ_COUNT")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub live: LiveArgs,
}

/// Which network namespace to read.
#[derive(Debug, Clone, Args)]
pub struct NetnsArgs {
    /// Read the network namespace NAME under /run/netns (as `ip netns` names it). Needs root.
    #[arg(
        long,
        value_name = "NAME",
        env = "SOCKQ_NETNS",
        conflicts_with = "netns_pid"
    )]
    pub netns: Option<String>,
    /// Read the network namespace of process PID (e.g. a container's). Needs root.
    #[arg(long, value_name = "PID", env = "SOCKQ_NETNS_PID")]
    pub netns_pid: Option<u32>,
}

impl NetnsArgs {
    /// The namespace to read.
    pub fn target(&self) -> NetnsTarget {
        match (&self.netns, self.netns_pid) {
            (Some(n), _) => NetnsTarget::Named(n.clone()),
            (None, Some(p)) => NetnsTarget::Pid(p),
            (None, None) => NetnsTarget::Current,
        }
    }
}

/// Which listeners to show.
#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Only TCP listeners on this local port (repeatable).
    #[arg(
        long = "port",
        value_name = "PORT",
        env = "SOCKQ_PORT",
        value_delimiter = ','
    )]
    pub ports: Vec<u16>,
    /// Only listeners held by a process whose name contains TEXT, or whose pid is TEXT.
    #[arg(long, value_name = "TEXT", env = "SOCKQ_PROCESS")]
    pub process: Option<String>,
}

impl FilterArgs {
    /// As a model filter.
    pub fn filter(&self) -> Filter {
        Filter {
            ports: self.ports.clone(),
            process: self.process.clone(),
        }
    }
}

/// `sockq snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Print JSON (schema: `sockq schema`, docs/schema/snapshot.schema.json).
    #[arg(long, env = "SOCKQ_JSON")]
    pub json: bool,
    /// Leave out UNIX stream listeners.
    #[arg(long, env = "SOCKQ_NO_UNIX")]
    pub no_unix: bool,
    /// Do not look up owning processes (skips reading /proc/PID/fd).
    #[arg(long, env = "SOCKQ_NO_OWNERS")]
    pub no_owners: bool,
    #[command(flatten)]
    pub netns: NetnsArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            let code = if e.chain().any(|c| c.downcast_ref::<NetnsError>().is_some()) {
                exit::NETNS
            } else if e
                .chain()
                .any(|c| c.downcast_ref::<crate::tui::DashboardError>().is_some())
            {
                exit::USAGE
            } else {
                exit::RUNTIME
            };
            // A closed stdout (e.g. `| head`) is not an error worth a message.
            if is_broken_pipe(&e) {
                return ExitCode::from(exit::OK);
            }
            eprintln!("sockq: error: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Snapshot(args)) => snapshot(args),
        Some(Command::Watch(args)) => watch(args),
        Some(Command::Lab(args)) => lab(args),
        Some(Command::Record(args)) => record(args),
        Some(Command::Replay(args)) => replay(args),
        Some(Command::LabServer(args)) => crate::lab::server::run(args),
        Some(Command::Serve(args)) => crate::export::serve::run(args),
        Some(Command::Schema { which }) => {
            let schema = if which == "tick" {
                export::json::tick_schema()
            } else {
                export::json::snapshot_schema()
            };
            write_stdout(&serde_json::to_string_pretty(&schema)?)
        }
        None => dashboard(cli.dashboard),
    }
}

fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn snapshot(args: SnapshotArgs) -> anyhow::Result<()> {
    let target = args.netns.target();
    let opts = CollectorOptions {
        unix: !args.no_unix,
        owners: !args.no_owners,
        ..CollectorOptions::default()
    };
    let label = target.label();
    let mut snap = crate::collect::netns::run_in(&target, move || {
        let mut c = Collector::new(label, opts)?;
        c.sample()
    })?;
    let filter = args.filter.filter();
    filter.apply(&mut snap);
    let text = if args.json {
        export::json::snapshot_pretty(&snap)?
    } else {
        let note = (!filter.is_empty()).then(|| filter.describe());
        export::table::render(&snap, note.as_deref())
    };
    write_stdout(&text)
}

/// Sets a flag on SIGINT, SIGTERM and SIGHUP (the loop checks it between ticks).
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(flag)
}

fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let stop = stop_flag()?;
    let live = &args.live;
    let sampler = Sampler::start(live.netns.target(), live.sampler_config())?;
    let mut engine = Engine::new(live.engine_config());
    let filter = live.filter.filter();
    let mut out = std::io::stdout().lock();
    let mut seen = std::collections::HashSet::new();
    let mut ticks = 0u64;
    if !args.json {
        writeln!(out, "{}", export::watch::HEADER)?;
        out.flush()?;
    }
    while !stop.load(Ordering::Relaxed) {
        let Some(event) = sampler.recv_timeout(Duration::from_millis(100))? else {
            continue;
        };
        match event {
            SamplerEvent::Error(e) => {
                engine.record_gap();
                eprintln!("sockq: sample failed (recorded as a gap): {e}");
            }
            SamplerEvent::Sample(sample) => {
                let mut tick = engine.ingest(*sample).clone();
                filter.apply_tick(&mut tick);
                if args.json {
                    serde_json::to_writer(&mut out, &tick)?;
                    out.write_all(b"\n")?;
                } else {
                    if ticks > 0 && ticks % 20 == 0 {
                        writeln!(out, "{}", export::watch::HEADER)?;
                    }
                    writeln!(out, "{}", export::watch::human_line(&tick, &mut seen))?;
                }
                out.flush()?;
                ticks += 1;
                if args.count.is_some_and(|n| ticks >= n) {
                    break;
                }
            }
        }
    }
    Ok(())
}

fn dashboard(args: DashboardArgs) -> anyhow::Result<()> {
    let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let live = &args.live;
    crate::tui::run(crate::tui::DashboardConfig {
        target: live.netns.target(),
        sampler: live.sampler_config(),
        engine: live.engine_config(),
        color: !(args.no_color || no_color_env),
        filter: live.filter.process.clone().unwrap_or_default(),
        ports: live.filter.ports.clone(),
    })
}
