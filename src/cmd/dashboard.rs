//! Plain `sockq`: the live dashboard over the sampler.

use super::{CmdResult, LiveConfig};
use crate::collect::sampler::Sampler;
use crate::runtime::stop_flag;
use crate::tui::DashboardConfig as TuiConfig;

/// Settings of the dashboard.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// What to sample.
    pub live: LiveConfig,
    /// Colours allowed.
    pub color: bool,
}

/// Runs the dashboard.
pub fn run(cfg: DashboardConfig) -> CmdResult {
    if cfg.live.all_netns {
        return namespaces(cfg);
    }
    let stop = stop_flag()?;
    // Start sampling before touching the terminal: a bad namespace is a plain error message.
    let mut sampler = Sampler::start(cfg.live.target.clone(), cfg.live.sampler.clone())?;
    let tui_cfg = TuiConfig {
        engine: cfg.live.engine.clone(),
        interval: cfg.live.sampler.interval,
        color: cfg.color,
        filter: cfg.live.filter.clone(),
    };
    Ok(crate::tui::run(tui_cfg, &mut sampler, stop, None)?)
}

/// `sockq --all-netns`: the namespaces view over every namespace.
fn namespaces(cfg: DashboardConfig) -> CmdResult {
    let stop = stop_flag()?;
    // Discovery and the sampling thread start before the terminal is touched.
    let mut fleet = super::fleet::start(&cfg.live)?;
    let tui_cfg = TuiConfig {
        engine: cfg.live.engine.clone(),
        interval: cfg.live.sampler.interval,
        color: cfg.color,
        filter: cfg.live.filter.clone(),
    };
    Ok(crate::tui::namespaces::run_namespaces(
        tui_cfg, &mut fleet, stop,
    )?)
}
