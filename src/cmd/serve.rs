//! `sockq serve`: the one loop publishes each filtered tick to the Prometheus endpoint.

use std::sync::Arc;

use super::{CmdError, CmdResult, LiveConfig};
use crate::collect::process_self;
use crate::collect::sampler::Sampler;
use crate::engine::{drive, Engine, EngineConfig, Flow, Sink};
use crate::export::serve::{ServeConfig, Server};
use crate::model::{SampleError, Tick};
use crate::runtime::{report_gap, stop_flag};

/// Settings of `serve`.
#[derive(Debug, Clone)]
pub struct ServeCmdConfig {
    /// What to sample.
    pub live: LiveConfig,
    /// The HTTP side.
    pub http: ServeConfig,
    /// The bounds of `--all-netns`.
    pub fleet: FleetBounds,
}

/// Cardinality bounds of `serve --all-netns`.
#[derive(Debug, Clone, Copy)]
pub struct FleetBounds {
    /// At most this many namespaces get series (those in most trouble first).
    pub max_netns: usize,
    /// At most this many listeners per namespace get per-listener series.
    pub max_listeners_per_netns: usize,
}

/// Runs `serve` until SIGINT/SIGTERM/SIGHUP.
pub fn run(cfg: ServeCmdConfig) -> CmdResult {
    if cfg.live.all_netns {
        return super::fleet::serve(cfg);
    }
    let stop = stop_flag()?;
    // The address first: a bad or busy one is reported before anything else starts.
    // Scrapes read sockq's own process (`process_*`) through the collect layer.
    let server = Server::start(cfg.http, stop.clone(), Arc::new(process_self))
        .map_err(anyhow::Error::from)?;
    let local = server.local_addr();
    if !local.ip().is_loopback() {
        eprintln!(
            "sockq: warning: serving on non-loopback address {local}: anyone who can reach it \
             can read listener addresses and process names"
        );
    }
    let mut sampler = Sampler::start(cfg.live.target.clone(), cfg.live.sampler.clone())?;
    eprintln!("sockq: serving http://{local}/metrics");
    // The exporter needs no history (Prometheus keeps it): the smallest rings.
    let mut engine = Engine::new(EngineConfig {
        window: cfg.live.sampler.interval * 2,
        ..cfg.live.engine.clone()
    });
    let mut sink = Publish { server };
    let result = drive(&mut sampler, Some(&mut engine), &stop, &mut sink);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(sampler);
    let served = sink.server.join().map_err(anyhow::Error::from);
    result.and(served.map_err(CmdError::from))
}

/// Publishes each tick for the scrapes.
struct Publish {
    server: Server,
}

impl Sink for Publish {
    type Error = CmdError;

    fn tick(&mut self, tick: &Tick) -> Result<Flow, CmdError> {
        // The engine already keeps only the listeners the filter selects.
        self.server.publish(tick.clone());
        Ok(Flow::Continue)
    }

    fn gap(&mut self, e: &SampleError) -> Result<Flow, CmdError> {
        report_gap(e);
        self.server.sample_failed();
        Ok(Flow::Continue)
    }

    /// An HTTP thread that ended (an error) ends the command; `join` says why.
    fn idle(&mut self) -> Result<Flow, CmdError> {
        Ok(if self.server.is_finished() {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
}
