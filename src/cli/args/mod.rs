//! Every clap type of the command line, its value parsers (`parse`), the flags every command
//! shares (`global`), each subcommand's own (`commands`), and their conversion into the plain
//! settings the commands (`crate::cmd`) run with. Every flag is also an environment variable
//! (`SOCKQ_…`).

mod commands;
mod global;
mod parse;

use clap::{Parser, Subcommand};

pub use commands::{
    dashboard, LabArgs, LabServerArgs, RecordArgs, ReplayArgs, ServeArgs, SnapshotArgs, WatchArgs,
};
pub use global::GlobalArgs;
pub use parse::parse_duration;

const AFTER_HELP: &str = "\
Exit codes: 0 ok; 1 the kernel or /proc could not be read; 2 bad usage, or the dashboard
started without a terminal; 3 the network namespace does not exist or cannot be entered.

Numbers: Accept Q is the kernel's sk_ack_backlog (ss Recv-Q), Backlog is sk_max_ack_backlog
(ss Send-Q); the accept queue is full when Accept Q > Backlog. See docs/metrics.md.

Every flag is also an environment variable (SOCKQ_INTERVAL=2s, SOCKQ_PORT=80,443, …); on/off
variables take 1/0, true/false, yes/no, on/off, or empty for off. Shared flags work before or
after a subcommand.";

/// The version line: the crate version, the git revision and the build date.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SOCKQ_GIT_REVISION"),
    ", built ",
    env!("SOCKQ_BUILD_DATE"),
    ")"
);

/// sockq: a live monitor of Linux socket queues (SYN queue, accept queue, drops, and the
/// process that calls accept()).
#[derive(Debug, Parser)]
#[command(name = "sockq", version = VERSION, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// What to do; without one, the live dashboard.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags every command shares.
    #[command(flatten)]
    pub global: GlobalArgs,
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
    /// Print a shell completion script: `sockq completions bash > /etc/bash_completion.d/sockq`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `sockq man | man -l -`.
    Man,
    /// (internal) the lab's demo server process.
    #[command(name = "__lab-server", hide = true)]
    LabServer(LabServerArgs),
    /// Print the JSON Schema of `snapshot --json` (default), of `watch --json` lines (`tick`),
    /// of `snapshot --all-netns --json` (`all-netns`) or of `watch --all-netns --json` lines
    /// (`all-netns-line`).
    Schema {
        /// Which document: `snapshot` or `tick`.
        #[arg(default_value = "snapshot", value_parser = ["snapshot", "tick", "all-netns", "all-netns-line"])]
        which: String,
    },
}
