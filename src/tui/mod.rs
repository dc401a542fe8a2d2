//! The live dashboard. `app` holds the state and handles keys, `render` draws from the model; this
//! module owns the terminal and the event loop (the only I/O of the dashboard). Samples come
//! from any [`Source`]: the live sampler or a replay, chosen by the command.

pub mod app;
mod listing;
pub mod namespaces;
pub mod render;
mod rows;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyCode, KeyEvent, KeyEventKind,
    KeyModifiers,
};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use crate::engine::{Engine, EngineConfig, Source};
use crate::model::lab::{Knob, LabStatus};
use crate::model::{Filter, ListenerKey, Tick};
use app::{Action, App};

/// Dashboard settings (the sample source is handed over separately).
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Engine settings.
    pub engine: EngineConfig,
    /// Display interval the source samples at.
    pub interval: Duration,
    /// Colours allowed (false with NO_COLOR or --no-color).
    pub color: bool,
    /// Which listeners to show (--port, --process): the same filter every command uses.
    pub filter: Filter,
}

/// A workshop lab attached to the dashboard: its narration panel and knobs. Implemented by the
/// command that runs the lab, so the dashboard needs nothing of the lab's machinery.
pub trait LabControl {
    /// Called after every sample: lets the lab move on (its script, its load).
    fn on_sample(&mut self);
    /// The instructor pressed a knob's key.
    fn apply(&mut self, knob: Knob);
    /// Where the lab stands, narrated against the latest tick.
    fn status(&self, latest: Option<&Tick>) -> LabStatus;
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

fn setup_terminal() -> Result<(TerminalGuard, Term), DashboardError> {
    // The hook restores before the default hook prints the panic, so the message is readable.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
    terminal::enable_raw_mode().map_err(term_err("switching the terminal to raw mode"))?;
    RESTORED.store(false, Ordering::SeqCst);
    let guard = TerminalGuard;
    execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        cursor::Hide
    )
    .map_err(term_err("entering the alternate screen"))?;
    let terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))
        .map_err(term_err("opening the terminal"))?;
    Ok((guard, terminal))
}

/// Runs the dashboard over `source` until the user quits, `stop` is set (a signal), or the
/// terminal goes away. With a lab, its panel and knobs are shown.
pub fn run(
    cfg: DashboardConfig,
    source: &mut dyn Source,
    stop: Arc<AtomicBool>,
    lab: Option<&mut dyn LabControl>,
) -> Result<(), DashboardError> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(DashboardError::NotATerminal);
    }
    let mut app = App::new(cfg.interval, cfg.color);
    app.select = cfg.filter.clone();
    app.source_status = source.status();
    app.lab = lab.as_deref().map(|l| l.status(None));
    let (guard, mut terminal) = setup_terminal()?;
    let mut ctx = Loop {
        source,
        engine: Engine::new(cfg.engine.clone()),
        app,
        lab,
        stop,
    };
    let result = ctx.run(&mut terminal);
    drop(guard);
    result
}

/// What wakes the event loop: the terminal, or the source saying a sample is ready.
enum Wake {
    Input(std::io::Result<Event>),
    Sample,
}

/// Reads terminal events on a thread of its own, so the event loop never blocks on (or spins
/// in) the terminal and always sees the stop flag.
fn spawn_input_thread(stop: Arc<AtomicBool>, tx: Sender<Wake>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("sockq-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match event::poll(Duration::from_millis(200)) {
                    Ok(false) => {}
                    Ok(true) => {
                        let ev = event::read();
                        let failed = ev.is_err();
                        if tx.send(Wake::Input(ev)).is_err() || failed {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Wake::Input(Err(e)));
                        return;
                    }
                }
            }
        })?;
    Ok(())
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

/// Errors of the dashboard.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// stdout or stdin is not a terminal.
    #[error("the dashboard needs a terminal (stdin and stdout are not both terminals); use `sockq snapshot` or `sockq watch` for pipes and files")]
    NotATerminal,
    /// The terminal could not be set up, read or drawn to.
    #[error("{what}: {source}")]
    Terminal {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
}

fn term_err(what: &'static str) -> impl FnOnce(std::io::Error) -> DashboardError {
    move |source| DashboardError::Terminal { what, source }
}

/// Longest wait for input before the loop looks at the clock, the hang-up check and the
/// stop flag again.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// The event loop's state.
struct Loop<'s, 'l> {
    source: &'s mut dyn Source,
    engine: Engine,
    app: App,
    lab: Option<&'l mut dyn LabControl>,
    stop: Arc<AtomicBool>,
}

/// The selection to hand the source when it changed since `sent` (which it then becomes): the
/// sampler polls the selected listener at the fast rate whether it is active or not.
fn selection_to_send(
    sent: &mut Option<ListenerKey>,
    now: Option<ListenerKey>,
) -> Option<Vec<ListenerKey>> {
    if *sent == now {
        return None;
    }
    *sent = now;
    Some(now.into_iter().collect())
}

impl Loop<'_, '_> {
    fn run(&mut self, terminal: &mut Term) -> Result<(), DashboardError> {
        let (tx, wakes) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        // The input thread ends with the loop (it checks its own flag every 200 ms).
        let _stop_input = StopOnDrop(stop.clone());
        spawn_input_thread(stop, tx.clone()).map_err(term_err("starting the input thread"))?;
        self.source.set_waker(Arc::new(move || {
            let _ = tx.send(Wake::Sample);
        }));
        let mut dirty = true;
        // While paused the view is drawn from a frozen copy of the engine; collection goes on.
        let mut frozen: Option<Engine> = None;
        let mut last_draw = Instant::now();
        let mut last_tty_check = Instant::now();
        let mut selection_sent: Option<ListenerKey> = None;
        loop {
            if let Some(keys) = selection_to_send(&mut selection_sent, self.app.selected) {
                self.source.select(keys);
            }
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            // An SSH session that dropped leaves a hung-up terminal: leave rather than spin.
            if last_tty_check.elapsed() >= Duration::from_millis(500) {
                last_tty_check = Instant::now();
                if terminal_hung_up() {
                    return Ok(());
                }
            }
            if self.drain_source() && !self.app.paused {
                dirty = true;
            }
            if self.app.paused && frozen.is_none() {
                frozen = Some(self.engine.clone());
            } else if !self.app.paused && frozen.is_some() {
                frozen = None;
                dirty = true;
            }
            if dirty {
                let view = frozen.as_ref().unwrap_or(&self.engine);
                draw(terminal, &mut self.app, view)?;
                dirty = false;
                last_draw = Instant::now();
            }
            // Samples wake the loop through the waker; a paced source (a replay) says when
            // its next one is due.
            let wait = self
                .source
                .next_due()
                .map_or(IDLE_WAIT, |d| d.min(IDLE_WAIT));
            let event = match wakes.recv_timeout(wait) {
                Ok(Wake::Sample) => continue,
                Ok(Wake::Input(Ok(ev))) => ev,
                Ok(Wake::Input(Err(e))) => return Err(term_err("reading the terminal")(e)),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // Redraw at least every few seconds (clock, gone listeners) even when idle.
                    if last_draw.elapsed() > Duration::from_secs(5) {
                        dirty = true;
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            };
            if changes_nothing(&event) {
                continue;
            }
            // The keys and the mouse need the order of the listeners, not their rows.
            let keys = match event {
                Event::Key(_) | Event::Mouse(_) => {
                    let view = frozen.as_ref().unwrap_or(&self.engine);
                    self.app.listing(view).keys()
                }
                _ => Vec::new(),
            };
            match self.on_event(event, &keys, terminal)? {
                Action::Quit => return Ok(()),
                Action::SetInterval(d) => {
                    self.source.set_interval(d);
                    self.engine.set_interval(d);
                }
                Action::None => {}
            }
            dirty = true;
        }
    }

    /// Moves every ready event from the source into the engine. True when any came.
    fn drain_source(&mut self) -> bool {
        let mut any = false;
        // A source that ended (its thread died) simply stops delivering; the header's age
        // shows it.
        while let Ok(Some(ev)) = self.source.next_event(Duration::ZERO) {
            any = true;
            self.engine.apply(ev);
            self.app.source_status = self.source.status();
            if let Some(l) = self.lab.as_deref_mut() {
                l.on_sample();
                self.app.lab = Some(l.status(self.engine.latest()));
            }
        }
        any
    }

    fn on_event(
        &mut self,
        event: Event,
        rows: &[ListenerKey],
        terminal: &mut Term,
    ) -> Result<Action, DashboardError> {
        let typing = self.app.filter_input.is_some() || self.app.help;
        match event {
            Event::Key(k) if !typing && self.lab.is_some() && app::lab_knob(&k).is_some() => {
                if let (Some(l), Some(knob)) = (self.lab.as_deref_mut(), app::lab_knob(&k)) {
                    l.apply(knob);
                    self.app.lab = Some(l.status(self.engine.latest()));
                }
            }
            Event::Key(k) if !typing && source_key(&k).is_some_and(|c| self.source.on_key(c)) => {
                self.app.source_status = self.source.status();
            }
            Event::Key(k) => return Ok(self.app.on_key(k, rows)),
            Event::Mouse(m) => self.app.on_mouse(m, rows),
            Event::Resize(_, _) => terminal.autoresize().map_err(term_err("resizing"))?,
            _ => {}
        }
        Ok(Action::None)
    }
}

/// An event the dashboard does nothing with: a key released, the mouse moved or dragged or a
/// button released (the mouse is captured, so every move is an event), focus, a paste. It
/// costs no redraw.
fn changes_nothing(event: &Event) -> bool {
    use crossterm::event::MouseEventKind as M;
    match event {
        Event::Key(k) => k.kind == KeyEventKind::Release,
        Event::Mouse(m) => !matches!(
            m.kind,
            M::Down(crossterm::event::MouseButton::Left) | M::ScrollDown | M::ScrollUp
        ),
        Event::Resize(_, _) => false,
        _ => true,
    }
}

/// A plain key press, as the source's controls take it.
fn source_key(k: &KeyEvent) -> Option<char> {
    if k.kind == KeyEventKind::Release || k.modifiers.contains(KeyModifiers::CONTROL) {
        return None;
    }
    match k.code {
        KeyCode::Char(c) => Some(c),
        _ => None,
    }
}

/// Sets a flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

type Term = Terminal<CrosstermBackend<std::io::Stdout>>;

/// Draws one frame. A terminal that went away (SSH hang-up) fails here: the loop leaves
/// instead of spinning.
fn draw(terminal: &mut Term, app: &mut App, view: &Engine) -> Result<(), DashboardError> {
    terminal
        .draw(|f| {
            #[cfg(debug_assertions)]
            test_hooks::maybe_panic();
            render::draw(f, app, view)
        })
        .map(|_| ())
        .map_err(term_err("drawing to the terminal"))
}

/// Hooks for the end-to-end tests of the debug binary; absent from release builds.
#[cfg(debug_assertions)]
mod test_hooks {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    /// Panics inside the draw closure after `SOCKQ_TEST_PANIC_AFTER_DRAWS` draws, to prove
    /// the terminal is restored on a panic (tests/tui_e2e.rs).
    pub fn maybe_panic() {
        static AFTER: OnceLock<Option<u64>> = OnceLock::new();
        static DRAWS: AtomicU64 = AtomicU64::new(0);
        let after = AFTER.get_or_init(|| {
            std::env::var("SOCKQ_TEST_PANIC_AFTER_DRAWS")
                .ok()
                .and_then(|v| v.parse().ok())
        });
        let draws = DRAWS.fetch_add(1, Ordering::Relaxed) + 1;
        if after.is_some_and(|n| draws > n) {
            panic!("test panic inside the draw loop (SOCKQ_TEST_PANIC_AFTER_DRAWS)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selection_goes_to_the_source_once_per_change() {
        let k = |inode| ListenerKey { inode, cookie: 7 };
        let mut sent = None;
        assert_eq!(selection_to_send(&mut sent, None), None, "nothing yet");
        assert_eq!(selection_to_send(&mut sent, Some(k(1))), Some(vec![k(1)]));
        assert_eq!(selection_to_send(&mut sent, Some(k(1))), None, "unchanged");
        assert_eq!(selection_to_send(&mut sent, Some(k(2))), Some(vec![k(2)]));
        assert_eq!(
            selection_to_send(&mut sent, None),
            Some(vec![]),
            "cleared: the source stops polling it"
        );
        assert_eq!(sent, None);
    }
}
