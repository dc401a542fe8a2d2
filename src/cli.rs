//! Command-line interface. Every flag is also an environment variable (`SOCKQ_…`).

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::collect::netns::{NetnsError, NetnsTarget};
use crate::collect::{Collector, CollectorOptions};
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
Exit codes: 0 ok; 1 the kernel or /proc could not be read; 2 bad usage;
3 the network namespace does not exist or cannot be entered.

Numbers: Accept Q is the kernel's sk_ack_backlog (ss Recv-Q), Backlog is sk_max_ack_backlog
(ss Send-Q); the accept queue is full when Accept Q > Backlog. See docs/metrics.md.";

/// sockq: a live monitor of Linux socket queues (SYN queue, accept queue, drops, and the
/// process that calls accept()).
#[derive(Debug, Parser)]
#[command(name = "sockq", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// What to do; without one, the live dashboard.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print one sample of every listening socket, the queue counters and the tunables.
    Snapshot(SnapshotArgs),
    /// Print the JSON Schema of `snapshot --json`.
    Schema,
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
    })
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Snapshot(args)) => snapshot(args),
        Some(Command::Schema) => {
            let text = serde_json::to_string_pretty(&export::json::snapshot_schema())?;
            write_stdout(&text)
        }
        None => anyhow::bail!(
            "the live dashboard is not part of this build yet; use `sockq snapshot` (or `sockq --help`)"
        ),
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
