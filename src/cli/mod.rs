//! Command-line interface: parses the arguments (`args`), runs the command (`crate::cmd`), and
//! turns its typed error into an exit code.

pub mod args;
mod man;

use std::process::ExitCode;

use clap::Parser;

use crate::cmd::{self, CmdError};
use crate::tui::DashboardError;
use args::{Cli, Command};

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

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::from(exit::OK),
        // A closed stdout (e.g. `| head`) is not an error worth a message.
        Err(e) if e.is_broken_pipe() => ExitCode::from(exit::OK),
        Err(e) => {
            // Errors can quote paths and names from the system: escaped for the terminal.
            let text = e.to_string();
            eprintln!(
                "sockq: error: {}",
                crate::model::labels::terminal_safe(&text)
            );
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The exit code of a failed command.
pub fn exit_code(e: &CmdError) -> u8 {
    match e {
        CmdError::Netns(_) => exit::NETNS,
        CmdError::Dashboard(DashboardError::NotATerminal) => exit::USAGE,
        CmdError::Dashboard(_) | CmdError::Other(_) => exit::RUNTIME,
    }
}

fn run(cli: Cli) -> Result<(), CmdError> {
    let g = &cli.global;
    if g.all_netns {
        match &cli.command {
            Some(Command::Lab(_)) => return Err(cmd::fleet::not_here("the lab")),
            Some(Command::Replay(_)) => return Err(cmd::fleet::not_here("replay")),
            _ => {}
        }
    }
    match cli.command {
        Some(Command::Snapshot(args)) => cmd::snapshot::run(args.config(g)),
        Some(Command::Watch(args)) => cmd::watch::run(args.config(g)),
        Some(Command::Lab(args)) => cmd::lab::run(args.config(g)),
        Some(Command::Record(args)) => cmd::record::run(args.config(g)),
        Some(Command::Replay(args)) => cmd::replay::run(args.config(g)),
        Some(Command::LabServer(args)) => Ok(crate::lab::server::run(args.config())?),
        // A bad combination of flags is a usage error, reported (and exit code 2) like clap's.
        Some(Command::Serve(args)) => cmd::serve::run(args.config(g).unwrap_or_else(|e| e.exit())),
        Some(Command::Schema { which }) => cmd::snapshot::schema(&which),
        Some(Command::Completions { shell }) => completions(shell),
        Some(Command::Man) => man(),
        None => cmd::dashboard::run(args::dashboard(g)),
    }
}

/// `sockq completions SHELL`: the completion script on stdout.
fn completions(shell: clap_complete::Shell) -> Result<(), CmdError> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "sockq", &mut out);
    Ok(std::io::Write::write_all(
        &mut std::io::stdout().lock(),
        &out,
    )?)
}

/// `sockq man`: the man page (roff) on stdout, with every subcommand's own flags.
fn man() -> Result<(), CmdError> {
    let page = man::page()?;
    Ok(std::io::Write::write_all(
        &mut std::io::stdout().lock(),
        page.as_bytes(),
    )?)
}
