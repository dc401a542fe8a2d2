//! The live dashboard. `app` holds the state and handles keys, `ui` draws from the model; this
//! module owns the terminal and the event loop (the only I/O of the dashboard).

pub mod app;
pub mod ui;

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
use crate::collect::sampler::{Sampler, SamplerCommand, SamplerConfig, SamplerEvent};
use crate::model::engine::{Engine, EngineConfig};
use app::{Action, App};

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
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(DashboardError::NotATerminal);
    }
    let stop = crate::cli::stop_flag()?;
    // Start sampling before touching the terminal: a bad namespace is a plain error message.
    let sampler = Sampler::start(cfg.target.clone(), cfg.sampler.clone())?;
    let mut engine = Engine::new(cfg.engine.clone());
    let mut app = App::new(cfg.sampler.interval, cfg.color);
    app.filter = cfg.filter.clone();
    app.ports = cfg.ports.clone();
    let (_guard, mut terminal) = setup_terminal()?;
    let result = event_loop(&mut terminal, &sampler, &mut engine, &mut app, &stop);
    drop(_guard);
    result
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
    sampler: &Sampler,
    engine: &mut Engine,
    app: &mut App,
    stop: &Arc<AtomicBool>,
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
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        while let Some(ev) = sampler.try_recv() {
            match ev {
                SamplerEvent::Sample(s) => {
                    engine.ingest(*s);
                }
                SamplerEvent::Error(_) => engine.record_gap(),
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
                    ui::draw(f, app, view)
                })
                .context("drawing to the terminal")?;
            dirty = false;
            last_draw = Instant::now();
        }
        if !event::poll(Duration::from_millis(50)).context("reading the terminal")? {
            // Redraw at least every few seconds (clock, gone listeners) even when idle.
            if last_draw.elapsed() > Duration::from_secs(5) {
                dirty = true;
            }
            continue;
        }
        let view = frozen.as_ref().unwrap_or(engine);
        let rows = app.rows(view);
        match event::read().context("reading the terminal")? {
            Event::Key(k) => match app.on_key(k, &rows) {
                Action::Quit => return Ok(()),
                Action::SetInterval(d) => {
                    sampler.command(SamplerCommand::SetInterval(d));
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
