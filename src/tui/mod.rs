//! The live dashboard. `app` holds the state and handles keys, `ui` draws from the model; this
//! module owns the terminal and the event loop (the only I/O of the dashboard).

pub mod app;
pub mod render;
pub mod source;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use crate::collect::netns::NetnsTarget;
use crate::collect::sampler::{Sampler, SamplerConfig};
use crate::engine::{Engine, EngineConfig};
use app::{Action, App};
use source::{Source, SourceEvent};

/// Dashboard settings.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Which namespace.
    pub target: NetnsTarget,
    /// Sampler settings.
    pub sampler: SamplerConfig,
    /// Engine settings.
    pub engine: EngineConfig,
    /// Colours allowed (false with NO_COLOR or --no-color).
    pub color: bool,
    /// Initial filter text.
    pub filter: String,
    /// Only these ports.
    pub ports: Vec<u16>,
}

static RESTORED: AtomicBool = AtomicBool::new(true);

/// Puts the terminal back: cursor shown, mouse released, main screen, cooked mode. Safe to call
/// more than once and from a panic hook.
pub fn restore_terminal() {
    if RESTORED.swap(true, Ordering::SeqCst) {
        return;
    }
    let mut out = std::io::stdout();
    let _ = execute!(out, DisableMouseCapture, LeaveAlternateScreen, cursor::Show);
    let _ = terminal::disable_raw_mode();
    let _ = out.flush();
}

/// Restores the terminal when dropped (normal return, `?`, or unwinding).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn setup_terminal() -> anyhow::Result<(TerminalGuard, Terminal<CrosstermBackend<std::io::Stdout>>)>
{
    // The hook restores before the default hook prints the panic, so the message is readable.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
    terminal::enable_raw_mode().context("switching the terminal to raw mode")?;
    RESTORED.store(false, Ordering::SeqCst);
    let guard = TerminalGuard;
    execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        cursor::Hide
    )
    .context("entering the alternate screen")?;
    let terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    Ok((guard, terminal))
}

/// Runs the dashboard until the user quits, a signal arrives or the terminal goes away.
pub fn run(cfg: DashboardConfig) -> anyhow::Result<()> {
    run_with_lab(cfg, None)
}

/// Runs the dashboard over a recording (`sockq replay`): space pauses, `.`/`,` step, `<`/`>`
/// seek a minute, `[`/`]` speed, `0` restarts.
pub fn run_replay(
    engine: EngineConfig,
    color: bool,
    mut replay: source::Replay,
) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(DashboardError::NotATerminal);
    }
    let stop = crate::cli::stop_flag()?;
    let mut engine = Engine::new(engine.clone());
    let mut app = App::new(engine.config().interval, color);
    app.source_status = replay.status();
    let (_guard, mut terminal) = setup_terminal()?;
    let result = event_loop(
        &mut terminal,
        &mut replay,
        &mut engine,
        &mut app,
        &stop,
        None,
    );
    drop(_guard);
    result
}

/// Runs the dashboard with a workshop lab: its narration panel and knobs.
pub fn run_with_lab(cfg: DashboardConfig, mut lab: Option<crate::lab::Lab>) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(DashboardError::NotATerminal);
    }
    let stop = crate::cli::stop_flag()?;
    // Start sampling before touching the terminal: a bad namespace is a plain error message.
    let mut sampler = Sampler::start(cfg.target.clone(), cfg.sampler.clone())?;
    let mut engine = Engine::new(cfg.engine.clone());
    let mut app = App::new(cfg.sampler.interval, cfg.color);
    app.filter = cfg.filter.clone();
    app.ports = cfg.ports.clone();
    let (_guard, mut terminal) = setup_terminal()?;
    if let Some(l) = lab.as_ref() {
        app.lab = Some(l.status(None));
    }
    let result = event_loop(
        &mut terminal,
        &mut sampler,
        &mut engine,
        &mut app,
        &stop,
        lab.as_mut(),
    );
    drop(_guard);
    result
}

/// Reads terminal events on a thread of its own, so the event loop never blocks on (or spins
/// in) the terminal and always sees the stop flag.
fn spawn_input_thread(
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::sync::mpsc::Receiver<std::io::Result<Event>>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("sockq-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match event::poll(Duration::from_millis(200)) {
                    Ok(false) => {}
                    Ok(true) => {
                        let ev = event::read();
                        let failed = ev.is_err();
                        if tx.send(ev).is_err() || failed {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        })?;
    Ok(rx)
}

/// True when stdin is a terminal that has been hung up (its session is gone).
fn terminal_hung_up() -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let stdin = std::io::stdin();
    let mut fds = [PollFd::new(
        std::os::fd::AsFd::as_fd(&stdin),
        PollFlags::empty(),
    )];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0].revents().is_some_and(|r| {
            r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL)
        }),
        Err(_) => false,
    }
}

/// Errors of the dashboard that have their own exit code.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// stdout or stdin is not a terminal.
    #[error("the dashboard needs a terminal (stdin and stdout are not both terminals); use `sockq snapshot` or `sockq watch` for pipes and files")]
    NotATerminal,
}

fn event_loop(
    terminal: &mut Terminal<CrosstermBackend<std::io::Stdout>>,
    sampler: &mut dyn Source,
    engine: &mut Engine,
    app: &mut App,
    stop: &Arc<AtomicBool>,
    mut lab: Option<&mut crate::lab::Lab>,
) -> anyhow::Result<()> {
    let mut dirty = true;
    // While paused the view is drawn from a frozen copy of the engine; collection goes on.
    let mut frozen: Option<Engine> = None;
    let mut last_draw = Instant::now();
    // Test hook: panic inside the draw closure after N draws, to prove the terminal is restored
    // on a panic (tests/tui_e2e.rs). Unset in normal use.
    let panic_after: Option<u64> = std::env::var("SOCKQ_TEST_PANIC_AFTER_DRAWS")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut draws = 0u64;
    let input = spawn_input_thread(stop.clone())?;
    let mut last_tty_check = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        // An SSH session that dropped leaves a hung-up terminal: leave rather than spin.
        if last_tty_check.elapsed() >= Duration::from_millis(500) {
            last_tty_check = Instant::now();
            if terminal_hung_up() {
                return Ok(());
            }
        }
        while let Some(ev) = sampler.poll() {
            match ev {
                SourceEvent::Sample(s) => {
                    engine.ingest(*s);
                }
                SourceEvent::Error(_) => engine.record_gap(),
                SourceEvent::Reset => *engine = Engine::new(engine.config().clone()),
            }
            app.source_status = sampler.status();
            if let Some(l) = lab.as_deref_mut() {
                if let Err(e) = l.tick() {
                    l.note_problem(e);
                }
                app.lab = Some(l.status(engine.latest()));
            }
            if !app.paused {
                dirty = true;
            }
        }
        if app.paused && frozen.is_none() {
            frozen = Some(engine.clone());
        } else if !app.paused && frozen.is_some() {
            frozen = None;
            dirty = true;
        }
        if dirty {
            let view = frozen.as_ref().unwrap_or(engine);
            // A terminal that went away (SSH hang-up) fails here: leave instead of spinning.
            draws += 1;
            terminal
                .draw(|f| {
                    if panic_after.is_some_and(|n| draws > n) {
                        panic!("test panic inside the draw loop (SOCKQ_TEST_PANIC_AFTER_DRAWS)");
                    }
                    render::draw(f, app, view)
                })
                .context("drawing to the terminal")?;
            dirty = false;
            last_draw = Instant::now();
        }
        let event = match input.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(ev)) => ev,
            Ok(Err(e)) => return Err(e).context("reading the terminal"),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // Redraw at least every few seconds (clock, gone listeners) even when idle.
                if last_draw.elapsed() > Duration::from_secs(5) {
                    dirty = true;
                }
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let view = frozen.as_ref().unwrap_or(engine);
        let rows = app.rows(view);
        match event {
            Event::Key(k)
                if app.filter_input.is_none()
                    && !app.help
                    && lab.is_some()
                    && app::lab_knob(&k).is_some() =>
            {
                if let (Some(l), Some(knob)) = (lab.as_deref_mut(), app::lab_knob(&k)) {
                    l.try_apply(knob);
                    app.lab = Some(l.status(engine.latest()));
                }
            }
            Event::Key(k) if app.filter_input.is_none() && !app.help && sampler.on_key(&k) => {
                app.source_status = sampler.status();
            }
            Event::Key(k) => match app.on_key(k, &rows) {
                Action::Quit => return Ok(()),
                Action::SetInterval(d) => {
                    sampler.set_interval(d);
                    engine.set_interval(d);
                }
                Action::None => {}
            },
            Event::Mouse(m) => app.on_mouse(m, &rows),
            Event::Resize(_, _) => {
                terminal.autoresize().context("resizing")?;
            }
            _ => {}
        }
        dirty = true;
    }
}
