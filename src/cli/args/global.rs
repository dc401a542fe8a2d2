//! Flags every command shares. They are global: accepted before or after a subcommand
//! (`sockq --port 80 snapshot` and `sockq snapshot --port 80` are the same), each with its
//! environment variable. On/off variables take 1/0, true/false, yes/no, on/off or empty (off).

use std::time::Duration;

use clap::Args;

use super::parse::{parse_budget, parse_fast_interval, parse_interval, parse_onoff, parse_window};
use crate::cmd::LiveConfig;
use crate::collect::netns::NetnsTarget;
use crate::collect::sampler::SamplerConfig;
use crate::collect::CollectorOptions;
use crate::engine::EngineConfig;
use crate::model::Filter;
use crate::runtime::color_allowed;

/// The shared flags.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// No colours (severity stays visible by its label); NO_COLOR in the environment does the same.
    #[arg(long, global = true, env = "SOCKQ_NO_COLOR", value_parser = parse_onoff)]
    pub no_color: bool,
    /// Display interval: one full sample per tick (e.g. 1s, 500ms, 2).
    #[arg(long, global = true, default_value = "1s", value_parser = parse_interval, allow_hyphen_values = true, env = "SOCKQ_INTERVAL")]
    pub interval: Duration,
    /// Fast listener sampling interval, catching bursts between ticks (10 Hz by default).
    #[arg(long, global = true, default_value = "100ms", value_parser = parse_fast_interval, allow_hyphen_values = true, env = "SOCKQ_FAST_INTERVAL")]
    pub fast_interval: Duration,
    /// CPU budget of the sampler, in percent of one core; expensive dumps are spaced to keep it.
    #[arg(long, global = true, default_value = "2", value_parser = parse_budget, allow_hyphen_values = true, env = "SOCKQ_CPU_BUDGET")]
    pub cpu_budget: f64,
    /// History window kept in memory (e.g. 15m).
    #[arg(long, global = true, default_value = "15m", value_parser = parse_window, allow_hyphen_values = true, env = "SOCKQ_WINDOW")]
    pub window: Duration,
    /// Leave out UNIX stream listeners.
    #[arg(long, global = true, env = "SOCKQ_NO_UNIX", value_parser = parse_onoff)]
    pub no_unix: bool,
    /// Do not look up owning processes (skips reading /proc/PID/fd).
    #[arg(long, global = true, env = "SOCKQ_NO_OWNERS", value_parser = parse_onoff)]
    pub no_owners: bool,
    /// Read the network namespace NAME under /run/netns (as `ip netns` names it). Needs root.
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        env = "SOCKQ_NETNS",
        conflicts_with = "netns_pid"
    )]
    pub netns: Option<String>,
    /// Read the network namespace of process PID (e.g. a container's). Needs root.
    #[arg(long, global = true, value_name = "PID", env = "SOCKQ_NETNS_PID")]
    pub netns_pid: Option<u32>,
    /// Every network namespace of the host at once (containers, pods, `ip netns`), followed as
    /// they appear and go; quiet ones are sampled less often to keep --cpu-budget. For
    /// the dashboard (a namespaces view), snapshot, watch, serve and record. Entering other
    /// namespaces needs root.
    #[arg(long, global = true, env = "SOCKQ_ALL_NETNS", value_parser = parse_onoff, conflicts_with_all = ["netns", "netns_pid"])]
    pub all_netns: bool,
    /// Only TCP listeners on this local port (repeatable, or comma-separated: 80,443).
    #[arg(
        long = "port",
        global = true,
        value_name = "PORT",
        env = "SOCKQ_PORT",
        value_delimiter = ',',
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    pub ports: Vec<u16>,
    /// Only listeners held by a process whose name contains TEXT, or whose pid is TEXT.
    #[arg(long, global = true, value_name = "TEXT", env = "SOCKQ_PROCESS")]
    pub process: Option<String>,
}

impl GlobalArgs {
    /// The namespace to read.
    pub fn target(&self) -> NetnsTarget {
        match (&self.netns, self.netns_pid) {
            (Some(n), _) => NetnsTarget::Named(n.clone()),
            (None, Some(p)) => NetnsTarget::Pid(p),
            (None, None) => NetnsTarget::Current,
        }
    }

    /// The listener filter.
    pub fn filter(&self) -> Filter {
        Filter {
            ports: self.ports.clone(),
            process: self.process.clone(),
        }
    }

    /// Colours allowed (no --no-color, no NO_COLOR).
    pub fn color(&self) -> bool {
        color_allowed(self.no_color)
    }

    /// What the collector reads.
    pub fn collector(&self) -> CollectorOptions {
        CollectorOptions {
            unix: !self.no_unix,
            owners: !self.no_owners,
            ..CollectorOptions::default()
        }
    }

    /// The plain settings a live command runs with.
    pub fn live(&self) -> LiveConfig {
        LiveConfig {
            target: self.target(),
            sampler: SamplerConfig {
                interval: self.interval,
                fast_interval: self.fast_interval,
                budget_percent: self.cpu_budget,
                collector: self.collector(),
            },
            engine: self.engine(),
            filter: self.filter(),
            all_netns: self.all_netns,
        }
    }

    /// Engine settings.
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            interval: self.interval,
            window: self.window,
            filter: self.filter(),
            ..EngineConfig::default()
        }
    }
}
