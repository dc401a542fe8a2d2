//! The subcommands' own flags, and their conversion (with the global flags) into the plain
//! settings each command runs with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::parse::{
    parse_cpu_window, parse_flood_rate, parse_header_timeout, parse_lab_duration, parse_listen,
    parse_onoff, parse_rate, parse_size,
};
use super::GlobalArgs;
use crate::cmd::{
    DashboardConfig, FleetBounds, LabConfig, RecordConfig, ReplayConfig, ServeCmdConfig,
    SnapshotConfig, WatchConfig,
};
use crate::export::prometheus::{
    DEFAULT_MAX_LISTENERS, DEFAULT_MAX_LISTENERS_PER_NETNS, DEFAULT_MAX_NETNS,
};
use crate::export::serve::{ServeConfig, DEFAULT_LISTEN};
use crate::lab::server::{Mode, ServerConfig};
use crate::model::lab::{Knobs, Scenario};

/// `sockq snapshot`.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Print JSON (schema: `sockq schema`, docs/schema/snapshot.schema.json).
    #[arg(long, env = "SOCKQ_JSON", value_parser = parse_onoff)]
    pub json: bool,
    /// How long to wait before reading the holder processes' CPU time again, for their CPU
    /// share over that time (0: do not wait; the share is then unknown, `?`). 0, or 200ms to
    /// 10s.
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = parse_cpu_window, allow_hyphen_values = true, env = "SOCKQ_CPU_WINDOW")]
    pub cpu_window: Duration,
}

impl SnapshotArgs {
    /// The plain settings of `snapshot`.
    pub fn config(&self, g: &GlobalArgs) -> SnapshotConfig {
        SnapshotConfig {
            target: g.target(),
            collector: g.collector(),
            filter: g.filter(),
            json: self.json,
            all_netns: g.all_netns,
            cpu_window: self.cpu_window,
        }
    }
}

/// `sockq watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Print one JSON object per tick (JSON lines; schema: `sockq schema tick`).
    #[arg(long, env = "SOCKQ_JSON", value_parser = parse_onoff)]
    pub json: bool,
    /// Stop after N ticks.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), env = "SOCKQ_COUNT")]
    pub count: Option<u64>,
}

impl WatchArgs {
    /// The plain settings of `watch`.
    pub fn config(&self, g: &GlobalArgs) -> WatchConfig {
        WatchConfig {
            live: g.live(),
            json: self.json,
            count: self.count,
        }
    }
}

/// `sockq record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The file to write (gzip JSON lines; rotated to FILE.1, FILE.2, … at --max-size): a new
    /// file or an existing regular one, never a device, FIFO or symbolic link.
    #[arg(env = "SOCKQ_RECORD_FILE")]
    pub file: PathBuf,
    /// Rotate when the file reaches this size.
    #[arg(long, default_value = "64MiB", value_parser = parse_size, env = "SOCKQ_MAX_SIZE")]
    pub max_size: u64,
    /// How many rotated files to keep (0 to 1000).
    #[arg(long, default_value = "4", value_parser = clap::value_parser!(u32).range(0..=1000), env = "SOCKQ_KEEP")]
    pub keep: u32,
    /// Stop after N samples.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), env = "SOCKQ_COUNT")]
    pub count: Option<u64>,
}

impl RecordArgs {
    /// The plain settings of `record`.
    pub fn config(&self, g: &GlobalArgs) -> RecordConfig {
        RecordConfig {
            live: g.live(),
            file: self.file.clone(),
            max_size: self.max_size,
            keep: self.keep,
            count: self.count,
        }
    }
}

/// `sockq replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A file written by `sockq record`.
    #[arg(env = "SOCKQ_REPLAY_FILE")]
    pub file: PathBuf,
    /// Print one JSON object per tick (as `watch --json`) instead of the dashboard.
    #[arg(long, env = "SOCKQ_JSON", value_parser = parse_onoff)]
    pub json: bool,
}

impl ReplayArgs {
    /// The plain settings of `replay` (the global --window, --port and --process apply).
    pub fn config(&self, g: &GlobalArgs) -> ReplayConfig {
        ReplayConfig {
            file: self.file.clone(),
            json: self.json,
            color: g.color(),
            window: g.window,
            filter: g.filter(),
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
    /// With --all-netns: series for at most N namespaces (those in most trouble first);
    /// sockq_netns_found and sockq_netns_exported show any truncation.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_NETNS as u32, value_parser = clap::value_parser!(u32).range(1..=100_000), env = "SOCKQ_MAX_NETNS")]
    pub max_netns: u32,
    /// With --all-netns: per-listener series for at most N listeners in each namespace (the
    /// most active); sockq_listeners and sockq_listeners_exported show any truncation.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_LISTENERS_PER_NETNS as u32, value_parser = clap::value_parser!(u32).range(1..=1_000_000), env = "SOCKQ_MAX_LISTENERS_PER_NETNS")]
    pub max_listeners_per_netns: u32,
}

impl ServeArgs {
    /// The plain settings of `serve`; a usage error when the per-peer limit is above the cap.
    pub fn config(&self, g: &GlobalArgs) -> Result<ServeCmdConfig, clap::Error> {
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
            live: g.live(),
            http: ServeConfig {
                listen: self.listen,
                max_listeners: self.max_listeners as usize,
                max_connections: self.max_connections as usize,
                max_connections_per_peer: per_peer as usize,
                header_timeout: self.header_timeout,
            },
            fleet: FleetBounds {
                max_netns: self.max_netns as usize,
                max_listeners_per_netns: self.max_listeners_per_netns as usize,
            },
        })
    }
}

/// `sockq lab`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// The scenario.
    #[arg(
        value_enum,
        default_value = "slow-consumer",
        env = "SOCKQ_LAB_SCENARIO"
    )]
    pub scenario: Scenario,
    /// No dashboard: print one JSON object per tick (the tick and the lab's status).
    #[arg(long, env = "SOCKQ_LAB_HEADLESS", value_parser = parse_onoff)]
    pub headless: bool,
    /// With --headless: stop after this long (default: the scenario's script).
    #[arg(long, value_parser = parse_lab_duration, allow_hyphen_values = true, env = "SOCKQ_LAB_DURATION")]
    pub duration: Option<Duration>,
    /// Stay on the first step with the given knobs (no script).
    #[arg(long, env = "SOCKQ_LAB_NO_STEPS", value_parser = parse_onoff)]
    pub no_steps: bool,
    /// Client arrivals per second (0 to 10000).
    #[arg(long, value_parser = parse_rate, allow_hyphen_values = true, env = "SOCKQ_LAB_RATE")]
    pub rate: Option<f64>,
    /// Server worker threads.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256), env = "SOCKQ_LAB_WORKERS")]
    pub workers: Option<u32>,
    /// Server time per connection, ms (1 to 600000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=600_000), env = "SOCKQ_LAB_SERVICE_MS")]
    pub service_ms: Option<u64>,
    /// listen() backlog the server asks for.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65535), env = "SOCKQ_LAB_BACKLOG")]
    pub backlog: Option<u32>,
    /// net.core.somaxconn of the lab namespace.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65535), env = "SOCKQ_LAB_SOMAXCONN")]
    pub somaxconn: Option<u32>,
    /// net.ipv4.tcp_syncookies of the lab namespace (0, 1 or 2).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=2), env = "SOCKQ_LAB_SYNCOOKIES")]
    pub syncookies: Option<u8>,
    /// The server's RLIMIT_NOFILE.
    #[arg(long, value_parser = clap::value_parser!(u64).range(16..), env = "SOCKQ_LAB_FD_LIMIT")]
    pub fd_limit: Option<u64>,
    /// net.ipv4.tcp_abort_on_overflow of the lab namespace (0 or 1).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1), env = "SOCKQ_LAB_ABORT_ON_OVERFLOW")]
    pub abort_on_overflow: Option<u8>,
    /// Spoofed SYNs per second (syn-flood; 0 to 1000000).
    #[arg(long, value_parser = parse_flood_rate, allow_hyphen_values = true, env = "SOCKQ_LAB_FLOOD_RATE")]
    pub flood_rate: Option<f64>,
    /// Size of each answer in KiB (slow-readers; 1 to 65536).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=65_536), env = "SOCKQ_LAB_RESPONSE_KIB")]
    pub response_kib: Option<u64>,
}

impl LabArgs {
    /// The plain settings of the lab command (the global --interval and --no-color apply).
    pub fn config(&self, g: &GlobalArgs) -> LabConfig {
        LabConfig {
            scenario: self.scenario,
            knobs: self.knobs(),
            headless: self.headless,
            duration: self.duration,
            steps: !self.no_steps,
            interval: g.interval,
            color: g.color(),
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
        if let Some(v) = self.response_kib {
            k.response_kib = v;
        }
        k
    }
}

/// The dashboard's plain settings (plain `sockq`).
pub fn dashboard(g: &GlobalArgs) -> DashboardConfig {
    DashboardConfig {
        live: g.live(),
        color: g.color(),
    }
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
    /// How it serves: pool (worker threads), loop (one thread, a blocking handler), threads
    /// (a thread per connection).
    #[arg(long, value_parser = Mode::parse, default_value = "pool")]
    pub mode: Mode,
    /// Bytes of each answer.
    #[arg(long, default_value_t = 3)]
    pub response_bytes: usize,
    /// SO_SNDBUF of the listener (its connections inherit it).
    #[arg(long)]
    pub sndbuf: Option<usize>,
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
            mode: self.mode,
            response_bytes: self.response_bytes,
            sndbuf: self.sndbuf,
        }
    }
}
