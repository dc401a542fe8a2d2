//! The commands: each takes plain settings (built by `cli::args`) and runs. The only layer that
//! wires collect, engine, the views, record and the lab together, and the only one that uses
//! `anyhow`; every error that has its own exit code keeps its type ([`CmdError`]).

pub mod dashboard;
pub mod fleet;
pub mod lab;
pub mod record;
pub mod replay;
pub mod serve;
pub mod snapshot;
pub mod watch;

use crate::collect::netns::{NetnsError, NetnsTarget};
use crate::collect::sampler::SamplerConfig;
use crate::collect::CollectError;
use crate::engine::{EngineConfig, SourceEnded};
use crate::model::Filter;
use crate::record::RecordError;
use crate::tui::DashboardError;

pub use dashboard::DashboardConfig;
pub use lab::LabConfig;
pub use record::RecordConfig;
pub use replay::ReplayConfig;
pub use serve::{FleetBounds, ServeCmdConfig};
pub use snapshot::SnapshotConfig;
pub use watch::WatchConfig;

/// What every live command samples, and how.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Which network namespace.
    pub target: NetnsTarget,
    /// Sampler settings.
    pub sampler: SamplerConfig,
    /// Engine settings.
    pub engine: EngineConfig,
    /// Which listeners to show.
    pub filter: Filter,
    /// Every network namespace of the host at once (`--all-netns`) instead of `target`.
    pub all_netns: bool,
}

/// Why a command failed, typed where the exit code depends on it.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// The network namespace does not exist or cannot be entered (exit 3).
    #[error(transparent)]
    Netns(NetnsError),
    /// The dashboard cannot run here (exit 2 without a terminal, else 1).
    #[error(transparent)]
    Dashboard(DashboardError),
    /// Anything else (exit 1).
    #[error("{0:#}")]
    Other(anyhow::Error),
}

impl From<CollectError> for CmdError {
    fn from(e: CollectError) -> Self {
        match e {
            CollectError::Netns(n) => CmdError::Netns(n),
            other => CmdError::Other(other.into()),
        }
    }
}

impl From<DashboardError> for CmdError {
    fn from(e: DashboardError) -> Self {
        CmdError::Dashboard(e)
    }
}

impl From<anyhow::Error> for CmdError {
    fn from(e: anyhow::Error) -> Self {
        CmdError::Other(e)
    }
}

impl From<RecordError> for CmdError {
    fn from(e: RecordError) -> Self {
        CmdError::Other(e.into())
    }
}

impl From<std::io::Error> for CmdError {
    fn from(e: std::io::Error) -> Self {
        CmdError::Other(e.into())
    }
}

impl From<serde_json::Error> for CmdError {
    fn from(e: serde_json::Error) -> Self {
        CmdError::Other(e.into())
    }
}

impl From<SourceEnded> for CmdError {
    fn from(e: SourceEnded) -> Self {
        CmdError::Other(e.into())
    }
}

impl CmdError {
    /// True when the error is only stdout having been closed (`sockq watch | head`).
    pub fn is_broken_pipe(&self) -> bool {
        let CmdError::Other(e) = self else {
            return false;
        };
        e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                || c.downcast_ref::<serde_json::Error>()
                    .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
        })
    }
}

/// A command's result.
pub type CmdResult = Result<(), CmdError>;
