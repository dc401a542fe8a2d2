//! The workshop lab: a private network namespace with a demo server and clients, scripted so
//! an instructor can show each queue phenomenon live.
//!
//! Safety rules: everything — sockets, sysctls, raw packets, the tun sink — lives in a network
//! namespace the lab makes for itself with unshare(2) at the start of the process, while it is
//! still single-threaded, so every thread and child inherits it. The namespace has no name: it
//! dies with its last process. The demo server is a child with a parent-death signal. Nothing is
//! left behind after a normal exit, Ctrl-C, a panic or SIGKILL.

pub mod clients;
pub mod held;
mod narrate;
mod narrate_service;
mod script;
mod serve;
pub mod server;
pub mod syn;

pub use narrate::narrate;

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub use crate::model::lab::{ClientView, Knob, Knobs, LabStatus, Scenario};
use clients::{ClientStats, LoadGenerator, Outcome};
use held::HeldClients;
use script::steps;
use server::ServerProcess;

/// The lab's demo service address (on `lo` of the lab namespace).
pub const SERVICE: SocketAddrV4 = SocketAddrV4::new(syn::TARGET_ADDR, 8080);

/// Makes the process's private network namespace. Call first thing, while single-threaded.
/// As root: a new network namespace. Otherwise: a new user namespace (mapping the caller to
/// root inside) with a new network namespace, where the kernel allows it.
pub fn enter_private_namespace() -> anyhow::Result<()> {
    use nix::sched::{unshare, CloneFlags};
    let uid = nix::unistd::geteuid();
    let gid = nix::unistd::getegid();
    syn::remember_original_netns();
    if unshare(CloneFlags::CLONE_NEWNET).is_ok() {
        return Ok(());
    }
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET).map_err(|e| {
        anyhow::anyhow!(
            "sockq lab needs its own network namespace: run it as root, or enable unprivileged user namespaces (kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0); unshare failed: {e}"
        )
    })?;
    std::fs::write("/proc/self/setgroups", "deny").context("writing /proc/self/setgroups")?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1")).context("writing uid_map")?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1")).context("writing gid_map")?;
    Ok(())
}

fn sysctl(path: &str, value: impl ToString) -> anyhow::Result<()> {
    if syn::in_initial_netns() {
        bail!("refusing to change {path} outside the lab's own namespace");
    }
    std::fs::write(format!("/proc/sys/{path}"), value.to_string())
        .with_context(|| format!("setting {path} in the lab namespace"))
}

/// The lab's clients: a pool that gives up after a few seconds, or clients that hold their
/// connections (see [`held`]).
enum Clients {
    Pool(LoadGenerator),
    Held(HeldClients),
}

impl Clients {
    fn set_rate(&self, rate: f64) {
        match self {
            Clients::Pool(p) => p.set_rate(rate),
            Clients::Held(h) => h.set_rate(rate),
        }
    }
}

/// A running lab. Create it on the main thread after [`enter_private_namespace`].
pub struct Lab {
    scenario: Scenario,
    knobs: Knobs,
    step: usize,
    step_started: Instant,
    server: ServerProcess,
    stats: Arc<ClientStats>,
    load: Clients,
    /// The arrival rate a step that stopped the clients brings back.
    paused_rate: Option<f64>,
    flood_stop: Option<Arc<AtomicBool>>,
    last_round: Arc<Mutex<Vec<String>>>,
    busy: Arc<AtomicBool>,
    /// A knob that could not be applied, and why (shown in the narration panel).
    knob_error: Option<String>,
    /// Steps asked for while a scripted action still ran; they start, one by one, when it ends.
    pending_steps: usize,
}

impl Lab {
    /// Sets up the namespace (lo, the SYN sink, sysctls), starts the server and the clients.
    pub fn start(scenario: Scenario, knobs: Knobs) -> anyhow::Result<Self> {
        if syn::in_initial_netns() {
            bail!("the lab must run in its own network namespace (call enter_private_namespace first)");
        }
        if scenario == Scenario::SynFlood {
            syn::setup_sink().context("preparing the lab namespace")?;
        } else {
            syn::setup_lo().context("preparing the lab namespace")?;
        }
        sysctl("net/core/somaxconn", knobs.somaxconn)?;
        sysctl("net/ipv4/tcp_syncookies", knobs.syncookies)?;
        sysctl("net/ipv4/tcp_abort_on_overflow", knobs.abort_on_overflow)?;
        if scenario == Scenario::SynFlood {
            // Keep requests for 7 s instead of 63 s so the demo reacts to changes quickly.
            sysctl("net/ipv4/tcp_synack_retries", 2)?;
        }
        let server = ServerProcess::start(&script::server_config(scenario, &knobs))?;
        let stats = Arc::new(ClientStats::default());
        let target = SocketAddr::V4(SERVICE);
        let load = match script::held_clients(scenario) {
            Some((behaviour, timeout, max)) => Clients::Held(HeldClients::start(
                target,
                knobs.rate,
                behaviour,
                timeout,
                max,
                stats.clone(),
            )?),
            None => Clients::Pool(LoadGenerator::start(target, knobs.rate, stats.clone())?),
        };
        let mut lab = Self {
            scenario,
            knobs,
            step: 0,
            step_started: Instant::now(),
            server,
            stats,
            load,
            paused_rate: None,
            flood_stop: None,
            last_round: Arc::new(Mutex::new(Vec::new())),
            busy: Arc::new(AtomicBool::new(false)),
            knob_error: None,
            pending_steps: 0,
        };
        lab.enter_step(0)?;
        Ok(lab)
    }

    /// The scenario.
    pub fn scenario(&self) -> Scenario {
        self.scenario
    }

    /// Headless duration of the whole script.
    pub fn script_secs(&self) -> u64 {
        steps(self.scenario).iter().map(|s| s.secs).sum()
    }

    /// Starts a step that waited for a running burst (call once per tick).
    pub fn tick(&mut self) -> anyhow::Result<()> {
        if self.pending_steps > 0 && !self.busy.load(Ordering::SeqCst) {
            self.pending_steps -= 1;
            self.enter_step(self.step + 1)?;
        }
        Ok(())
    }

    /// Advances the script by time (headless mode); a step waits for a running burst.
    pub fn advance_by_time(&mut self) -> anyhow::Result<()> {
        self.tick()?;
        if self.busy.load(Ordering::SeqCst) || self.pending_steps > 0 {
            return Ok(());
        }
        let all = steps(self.scenario);
        if let Some(s) = all.get(self.step) {
            if self.step + 1 < all.len()
                && self.step_started.elapsed() >= Duration::from_secs(s.secs)
            {
                self.enter_step(self.step + 1)?;
            }
        }
        Ok(())
    }

    fn set_flood(&mut self, on: bool) -> anyhow::Result<()> {
        if let Some(stop) = self.flood_stop.take() {
            stop.store(true, Ordering::Relaxed);
        }
        if !on || self.knobs.flood_rate <= 0.0 {
            return Ok(());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (s, rate) = (stop.clone(), self.knobs.flood_rate);
        let mut sender = syn::SynSender::new()?;
        std::thread::Builder::new()
            .name("lab-flood".into())
            .spawn(move || {
                let mut i = 0u32;
                let per_tick = ((rate / 100.0).ceil() as u32).max(1);
                while !s.load(Ordering::Relaxed) {
                    let _ = sender.flood(SERVICE, i, per_tick);
                    i = i.wrapping_add(per_tick);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })?;
        self.flood_stop = Some(stop);
        Ok(())
    }

    fn run_in_background(&self, f: impl FnOnce() + Send + 'static) -> anyhow::Result<()> {
        if self.busy.swap(true, Ordering::SeqCst) {
            return Ok(()); // the previous scripted action still runs
        }
        let busy = self.busy.clone();
        std::thread::Builder::new()
            .name("lab-script".into())
            .spawn(move || {
                f();
                busy.store(false, Ordering::SeqCst);
            })?;
        Ok(())
    }

    fn enter_step(&mut self, step: usize) -> anyhow::Result<()> {
        self.step = step;
        self.step_started = Instant::now();
        // Latency percentiles per step, not since the start.
        self.stats.reset_latencies();
        match (self.scenario, step) {
            (Scenario::SlowConsumer, 1) => {
                self.knobs.service_ms = 400;
                self.server
                    .send(&format!("service {}", self.knobs.service_ms))?;
            }
            (Scenario::SlowConsumer, 2) => {
                self.knobs.workers = 64;
                self.server
                    .send(&format!("workers {}", self.knobs.workers))?;
            }
            (Scenario::SomaxconnTrap, 1) | (Scenario::SomaxconnTrap, 3) => {
                // The server is busy (not accepting) while 200 clients arrive at once.
                let stats = self.stats.clone();
                let server = self.server.handle();
                self.run_in_background(move || {
                    let _ = server.send("pause");
                    let t = std::thread::spawn(move || {
                        clients::burst(SocketAddr::V4(SERVICE), 200, &stats)
                    });
                    std::thread::sleep(Duration::from_millis(1500));
                    let _ = server.send("resume");
                    let _ = t.join();
                })?;
            }
            (Scenario::SomaxconnTrap, 2) => {
                self.knobs.somaxconn = 4096;
                sysctl("net/core/somaxconn", self.knobs.somaxconn)?;
                self.server
                    .send(&format!("backlog {}", self.knobs.backlog))?;
            }
            (Scenario::SynFlood, 0) => self.set_flood(true)?,
            (Scenario::AbortOnOverflow, 0) => self.start_rounds()?,
            (Scenario::BlockedLoop, 1) => self.set_service(2000)?,
            (Scenario::BlockedLoop, 2) => self.set_service(5)?,
            (Scenario::SlowResponse, 1..) => {
                self.set_service(self.knobs.service_ms.saturating_mul(2).min(600_000))?;
            }
            (Scenario::CloseWaitLeak | Scenario::SlowReaders, 1) => self.stop_arrivals(),
            (Scenario::CloseWaitLeak, 2) => {
                self.server.send("leak 0")?;
                self.server.send("close-leaked")?;
                self.resume_arrivals();
            }
            (Scenario::SlowReaders, 2) => {
                if let Clients::Held(h) = &self.load {
                    h.set_reading(true);
                }
                self.resume_arrivals();
            }
            _ => {}
        }
        Ok(())
    }

    fn set_service(&mut self, ms: u64) -> anyhow::Result<()> {
        self.knobs.service_ms = ms;
        self.server.send(&format!("service {ms}"))
    }

    /// No new clients (the rate comes back with [`resume_arrivals`](Self::resume_arrivals)).
    fn stop_arrivals(&mut self) {
        self.paused_rate = Some(self.knobs.rate);
        self.knobs.rate = 0.0;
        self.load.set_rate(0.0);
    }

    fn resume_arrivals(&mut self) {
        if let Some(r) = self.paused_rate.take() {
            self.knobs.rate = r;
            self.load.set_rate(r);
        }
    }

    fn start_rounds(&mut self) -> anyhow::Result<()> {
        let stats = self.stats.clone();
        let last = self.last_round.clone();
        let backlog = self.knobs.backlog;
        let server = self.server.handle();
        let send = move |c: &str| {
            let _ = server.send(c);
        };
        std::thread::Builder::new()
            .name("lab-rounds".into())
            .spawn(move || loop {
                send("pause");
                std::thread::sleep(Duration::from_millis(300));
                let outcomes = clients::overflow_round(SocketAddr::V4(SERVICE), backlog, 2, &stats);
                if let Ok(mut l) = last.lock() {
                    *l = outcomes
                        .iter()
                        .map(|o| match o {
                            Outcome::Succeeded => "answered",
                            Outcome::TimedOut => "no answer (timed out)",
                            Outcome::Reset => "connection reset",
                            Outcome::Refused => "refused",
                            Outcome::Failed => "failed",
                        })
                        .map(String::from)
                        .collect();
                }
                send("resume");
                std::thread::sleep(Duration::from_millis(1500));
            })?;
        Ok(())
    }

    /// Keeps a failure for the narration panel.
    pub fn note_problem(&mut self, e: anyhow::Error) {
        self.knob_error = Some(format!("{e:#}"));
    }

    /// Applies a change; a failure is kept for the narration panel instead of ending the lab.
    pub fn try_apply(&mut self, k: Knob) {
        self.knob_error = self.apply(k).err().map(|e| format!("{e:#}"));
    }

    /// Applies an instructor's change; the dashboard shows its effect within a tick.
    pub fn apply(&mut self, k: Knob) -> anyhow::Result<&mut Self> {
        let up = |v: f64, up: bool, f: f64| if up { v * f } else { v / f };
        match k {
            Knob::Rate(u) => {
                self.knobs.rate = up(self.knobs.rate.max(1.0), u, 1.5).clamp(0.0, 5000.0);
                self.load.set_rate(self.knobs.rate);
            }
            Knob::Workers(u) => {
                self.knobs.workers = if u {
                    self.knobs.workers + 1
                } else {
                    self.knobs.workers.saturating_sub(1).max(1)
                }
                .min(server::MAX_WORKERS as u32);
                self.server
                    .send(&format!("workers {}", self.knobs.workers))?;
            }
            Knob::Service(u) => {
                self.knobs.service_ms =
                    (up(self.knobs.service_ms as f64, u, 2.0) as u64).clamp(1, 10_000);
                self.server
                    .send(&format!("service {}", self.knobs.service_ms))?;
            }
            Knob::Backlog(u) => {
                self.knobs.backlog =
                    (up(f64::from(self.knobs.backlog), u, 2.0) as u32).clamp(1, 65_535);
                self.server
                    .send(&format!("backlog {}", self.knobs.backlog))?;
            }
            Knob::Somaxconn(u) => {
                self.knobs.somaxconn =
                    (up(f64::from(self.knobs.somaxconn), u, 2.0) as u32).clamp(16, 65_535);
                sysctl("net/core/somaxconn", self.knobs.somaxconn)?;
            }
            Knob::CycleSyncookies => {
                self.knobs.syncookies = (self.knobs.syncookies + 1) % 3;
                sysctl("net/ipv4/tcp_syncookies", self.knobs.syncookies)?;
            }
            Knob::FdLimit(u) => {
                let cur = self.knobs.fd_limit.unwrap_or(1024) as f64;
                let next = (up(cur, u, 2.0) as u64).clamp(16, 1 << 20);
                self.knobs.fd_limit = Some(next);
                self.server.send(&format!("fdlimit {next}"))?;
            }
            Knob::ToggleAbort => {
                self.knobs.abort_on_overflow = 1 - self.knobs.abort_on_overflow.min(1);
                sysctl(
                    "net/ipv4/tcp_abort_on_overflow",
                    self.knobs.abort_on_overflow,
                )?;
            }
            Knob::ToggleFlood => {
                if self.knobs.flood_rate <= 0.0 {
                    self.knobs.flood_rate = 2000.0;
                }
                let on = self.flood_stop.is_none();
                self.set_flood(on)?;
            }
            Knob::Relisten => self
                .server
                .send(&format!("backlog {}", self.knobs.backlog))?,
            Knob::NextStep => {
                let n = steps(self.scenario).len();
                if self.step + self.pending_steps + 1 < n {
                    // While a burst still runs, steps queue up and start one by one after it.
                    self.pending_steps += 1;
                    self.tick()?;
                }
            }
        }
        Ok(self)
    }

    /// The status for the narration panel and JSON lines.
    pub fn status(&self, tick: Option<&crate::model::Tick>) -> LabStatus {
        let all = steps(self.scenario);
        let title = all.get(self.step).map_or("", |s| s.title).to_string();
        let clients = self.stats.view();
        let flooding = self.flood_stop.is_some();
        let (mut narration, try_next) = narrate(
            self.scenario,
            self.step,
            &self.knobs,
            flooding,
            tick,
            &clients,
        );
        if self.pending_steps > 0 {
            narration.push(format!(
                "Step {} starts as soon as the running burst of clients ends.",
                self.step + 2
            ));
        }
        LabStatus {
            scenario: self.scenario,
            step: self.step,
            steps: all.len(),
            title,
            narration,
            try_next,
            knobs: self.knobs.clone(),
            capacity_per_s: self.knobs.capacity_of(self.scenario),
            clients,
            server_pid: self.server.pid(),
            last_round: self
                .last_round
                .lock()
                .map(|l| l.clone())
                .unwrap_or_default(),
            problem: self.knob_error.clone().or_else(|| self.server.last_error()),
            flooding,
            ss_command: format!(
                "nsenter --net=/proc/{}/ns/net {}",
                std::process::id(),
                if self.scenario.after_accept() {
                    format!("ss -tane sport = :{}", SERVICE.port())
                } else {
                    "ss -ltn".to_string()
                }
            ),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(stop) = self.flood_stop.take() {
            stop.store(true, Ordering::Relaxed);
        }
    }
}
