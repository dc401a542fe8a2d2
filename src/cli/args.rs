//! Every clap type of the command line, its value parsers, and the conversion of parsed
//! arguments into the plain settings the commands (`crate::cmd`) run with. Every flag is also an
//! environment variable (`SOCKQ_…`).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::cmd::{
    DashboardConfig, LabConfig, LiveConfig, RecordConfig, ReplayConfig, ServeCmdConfig,
    SnapshotConfig, WatchConfig,
};
use crate::collect::netns::NetnsTarget;
use crate::collect::sampler::SamplerConfig;
use crate::collect::CollectorOptions;
use crate::engine::EngineConfig;
use crate::export::prometheus::DEFAULT_MAX_LISTENERS;
use crate::export::serve::{ServeConfig, DEFAULT_LISTEN};
use crate::lab::server::ServerConfig;
use crate::model::lab::{Knobs, Scenario};
use crate::model::Filter;
use crate::runtime::color_allowed;

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
    Serve(ServeArgs),
    /// Workshop lab: a private network namespace with a demo server and clients that reproduce
    /// one queue phenomenon, with the dashboard, a narration panel and knobs.
    Lab(LabArgs),
    /// Record every sample to a compressed file (rotating at a size cap) for later replay.
    Record(RecordArgs),
    /// Replay a recording in the dashboard (or as JSON lines with --json).
    Replay(ReplayArgs),
    /// (internal) the lab's demo server process.
    #[command(name = "__lab-server", hide = true)]
    LabServer(LabServerArgs),
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
fn shown(s: &str) -> String {
    let cut: String = s.chars().take(60).collect();
    let more = if cut.len() < s.len() { "…" } else { "" };
    format!("{cut:?}{more}")
}

/// A number within `lo..=hi` (finite); the error names the value and the accepted range.
fn number_within(s: &str, what: &str, lo: f64, hi: f64) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (lo..=hi).contains(&v) => Ok(v),
        _ => Err(format!(
            "{} is not accepted: {what} must be a number from {lo} to {hi}",
            shown(s)
        )),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    number_within(s, "the arrival rate (clients per second)", 0.0, 10_000.0)
}

fn parse_flood_rate(s: &str) -> Result<f64, String> {
    number_within(
        s,
        "the flood rate (spoofed SYNs per second)",
        0.0,
        1_000_000.0,
    )
}

fn parse_lab_duration(s: &str) -> Result<Duration, String> {
    duration_within(
        s,
        "the lab's duration",
        Duration::from_secs(1),
        Duration::from_secs(24 * 3600),
    )
}

/// A duration within `lo..=hi`; the error names the value and the accepted range.
fn duration_within(s: &str, what: &str, lo: Duration, hi: Duration) -> Result<Duration, String> {
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

/// The lab's scenarios on the command line, with their names and help in `--help`.
impl clap::ValueEnum for Scenario {
    fn value_variants<'a>() -> &'a [Self] {
        &Scenario::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.summary()))
    }
}

/// Live-sampling settings shared by `watch` and the dashboard.
#[derive(Debug, Clone, Args)]
pub struct LiveArgs {
    /// Display interval: one full sample per tick (e.g. 1s, 500ms, 2).
    #[arg(long, default_value = "1s", value_parser = parse_interval, allow_hyphen_values = true, env = "SOCKQ_INTERVAL")]
    pub interval: Duration,
    /// Fast listener sampling interval, catching bursts between ticks (10 Hz by default).
    #[arg(long, default_value = "100ms", value_parser = parse_fast_interval, allow_hyphen_values = true, env = "SOCKQ_FAST_INTERVAL")]
    pub fast_interval: Duration,
    /// CPU budget of the sampler, in percent of one core; expensive dumps are spaced to keep it.
    #[arg(long, default_value = "2", value_parser = parse_budget, allow_hyphen_values = true, env = "SOCKQ_CPU_BUDGET")]
    pub cpu_budget: f64,
    /// History window kept in memory (e.g. 15m).
    #[arg(long, default_value = "15m", value_parser = parse_window, allow_hyphen_values = true, env = "SOCKQ_WINDOW")]
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
    /// The plain settings a live command runs with.
    pub fn config(&self) -> LiveConfig {
        LiveConfig {
            target: self.netns.target(),
            sampler: self.sampler_config(),
            engine: self.engine_config(),
            filter: self.filter.filter(),
        }
    }

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
            filter: self.filter.filter(),
            ..EngineConfig::default()
        }
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
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

/// `sockq record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The file to write (gzip JSON lines; rotated to FILE.1, FILE.2, … at --max-size): a new
    /// file or an existing regular one, never a device, FIFO or symbolic link.
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
    #[arg(long, default_value = "15m", value_parser = parse_window, allow_hyphen_values = true)]
    pub window: Duration,
}

impl RecordArgs {
    /// The plain settings of `record`.
    pub fn config(&self) -> RecordConfig {
        RecordConfig {
            live: self.live.config(),
            file: self.file.clone(),
            max_size: self.max_size,
            keep: self.keep,
            count: self.count,
        }
    }
}

impl ReplayArgs {
    /// The plain settings of `replay`.
    pub fn config(&self) -> ReplayConfig {
        ReplayConfig {
            file: self.file.clone(),
            json: self.json,
            color: color_allowed(self.no_color),
            window: self.window,
        }
    }
}

/// `sockq lab`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// The scenario.
    #[arg(value_enum, default_value = "slow-consumer")]
    pub scenario: Scenario,
    /// No dashboard: print one JSON object per tick (the tick and the lab's status).
    #[arg(long)]
    pub headless: bool,
    /// With --headless: stop after this long (default: the scenario's script).
    #[arg(long, value_parser = parse_lab_duration, allow_hyphen_values = true)]
    pub duration: Option<Duration>,
    /// Stay on the first step with the given knobs (no script).
    #[arg(long)]
    pub no_steps: bool,
    /// Display interval.
    #[arg(long, default_value = "1s", value_parser = parse_interval, allow_hyphen_values = true)]
    pub interval: Duration,
    /// Client arrivals per second (0 to 10000).
    #[arg(long, value_parser = parse_rate, allow_hyphen_values = true)]
    pub rate: Option<f64>,
    /// Server worker threads.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: Option<u32>,
    /// Server time per connection, ms (1 to 600000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=600_000))]
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
    /// Spoofed SYNs per second (syn-flood; 0 to 1000000).
    #[arg(long, value_parser = parse_flood_rate, allow_hyphen_values = true)]
    pub flood_rate: Option<f64>,
    /// No colours.
    #[arg(long, env = "SOCKQ_NO_COLOR")]
    pub no_color: bool,
}

impl LabArgs {
    /// The plain settings of the lab command.
    pub fn config(&self) -> LabConfig {
        LabConfig {
            scenario: self.scenario,
            knobs: self.knobs(),
            headless: self.headless,
            duration: self.duration,
            steps: !self.no_steps,
            interval: self.interval,
            color: color_allowed(self.no_color),
        }
    }

    fn knobs(&self) -> Knobs {
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
    /// Only TCP listeners on this local port (repeatable, or comma-separated: 80,443).
    #[arg(
        long = "port",
        value_name = "PORT",
        env = "SOCKQ_PORT",
        value_delimiter = ',',
        value_parser = clap::value_parser!(u16).range(1..)
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

impl WatchArgs {
    /// The plain settings of `watch`.
    pub fn config(&self) -> WatchConfig {
        WatchConfig {
            live: self.live.config(),
            json: self.json,
            count: self.count,
        }
    }
}

impl SnapshotArgs {
    /// The plain settings of `snapshot`.
    pub fn config(&self) -> SnapshotConfig {
        SnapshotConfig {
            target: self.netns.target(),
            collector: CollectorOptions {
                unix: !self.no_unix,
                owners: !self.no_owners,
                ..CollectorOptions::default()
            },
            filter: self.filter.filter(),
            json: self.json,
        }
    }
}

impl DashboardArgs {
    /// The plain settings of the dashboard.
    pub fn config(&self) -> DashboardConfig {
        DashboardConfig {
            live: self.live.config(),
            color: color_allowed(self.no_color),
        }
    }
}

/// `sockq serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to serve on. Loopback by default; give a non-loopback address (e.g.
    /// 0.0.0.0:9911) explicitly to let another host scrape: anyone who can reach it sees
    /// listener addresses and process names.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN, value_parser = parse_listen, env = "SOCKQ_LISTEN")]
    pub listen: SocketAddr,
    /// Export per-listener series for at most N listeners (the most active: dropping, fullest,
    /// most SYN-RECV); sockq_listeners and sockq_listeners_exported show any truncation.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_LISTENERS as u32, value_parser = clap::value_parser!(u32).range(1..=1_000_000), env = "SOCKQ_MAX_LISTENERS")]
    pub max_listeners: u32,
    /// At most N concurrent HTTP connections. At the cap, the oldest idle connection (no
    /// complete request yet) is closed to make room for a new one; when every connection is
    /// being answered, new ones are closed at once.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000), env = "SOCKQ_MAX_CONNECTIONS")]
    pub max_connections: u32,
    /// At most N concurrent HTTP connections from one peer (an IPv4 address or an IPv6 /64);
    /// at most --max-connections [default: a quarter of --max-connections]. At the limit, the
    /// peer's own oldest idle connection makes room, or its new one is closed at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000), env = "SOCKQ_MAX_CONNECTIONS_PER_PEER")]
    pub max_connections_per_peer: Option<u32>,
    /// Close a connection that has not sent a complete request head within this time.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_header_timeout, allow_hyphen_values = true, env = "SOCKQ_HEADER_TIMEOUT")]
    pub header_timeout: Duration,
    /// Sampling options (--window has no effect here: Prometheus keeps the history).
    #[command(flatten)]
    pub live: LiveArgs,
}

impl ServeArgs {
    /// The plain settings of `serve`; a usage error when the per-peer limit is above the cap.
    pub fn config(&self) -> Result<ServeCmdConfig, clap::Error> {
        let per_peer = match self.max_connections_per_peer {
            None => (self.max_connections / 4).max(1),
            Some(n) if n <= self.max_connections => n,
            Some(n) => {
                return Err(clap::Error::raw(
                    clap::error::ErrorKind::ValueValidation,
                    format!(
                        "invalid value '{n}' for '--max-connections-per-peer <N>': {n} is above \
                         --max-connections ({max}); give a number from 1 to {max}\n",
                        max = self.max_connections
                    ),
                ))
            }
        };
        Ok(ServeCmdConfig {
            live: self.live.config(),
            http: ServeConfig {
                listen: self.listen,
                max_listeners: self.max_listeners as usize,
                max_connections: self.max_connections as usize,
                max_connections_per_peer: per_peer as usize,
                header_timeout: self.header_timeout,
            },
        })
    }
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse::<SocketAddr>().map_err(|_| {
        format!(
            "{} is not an IP address and port such as 127.0.0.1:9911 or [::1]:9911",
            shown(s)
        )
    })
}

fn parse_header_timeout(s: &str) -> Result<Duration, String> {
    // (allow_hyphen_values on the flag lets "-1" reach this parser and its message)
    duration_within(
        s,
        "the header timeout",
        Duration::from_millis(100),
        Duration::from_secs(300),
    )
}

/// `sockq __lab-server`: the lab's demo server process (internal).
#[derive(Debug, Clone, Args)]
pub struct LabServerArgs {
    /// Address to listen on.
    #[arg(long)]
    pub listen: SocketAddr,
    /// listen() backlog.
    #[arg(long)]
    pub backlog: i32,
    /// Worker threads calling accept().
    #[arg(long)]
    pub workers: usize,
    /// Service time per connection, in milliseconds.
    #[arg(long)]
    pub service_ms: u64,
    /// RLIMIT_NOFILE (soft limit) of the server.
    #[arg(long)]
    pub fd_limit: Option<u64>,
    /// Never close accepted connections (an fd leak).
    #[arg(long)]
    pub leak: bool,
    /// TCP_DEFER_ACCEPT seconds.
    #[arg(long)]
    pub defer_accept: Option<u32>,
    /// Start with accept() paused.
    #[arg(long)]
    pub paused: bool,
}

impl LabServerArgs {
    /// The server's plain settings.
    pub fn config(&self) -> ServerConfig {
        ServerConfig {
            listen: self.listen,
            backlog: self.backlog,
            workers: self.workers,
            service_ms: self.service_ms,
            fd_limit: self.fd_limit,
            leak: self.leak,
            defer_accept: self.defer_accept,
            paused: self.paused,
        }
    }
}
