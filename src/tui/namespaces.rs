//! The dashboard over every namespace (`sockq --all-netns`): the namespaces view first (one row
//! per namespace, most trouble first, `render::namespaces`); Enter opens today's screens for
//! the selected namespace, drawn from its own engine; Esc (on the main screen) comes back.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{Action, App, Screen};
use super::render::namespaces::{draw_namespaces, namespace_rows, NamespaceRow};
use super::render::Theme;
use super::{
    setup_terminal, spawn_input_thread, term_err, terminal_hung_up, DashboardConfig,
    DashboardError, StopOnDrop, Term, Wake,
};
use crate::engine::{Engine, NamespacesSource, NsEvent};
use crate::model::NetnsRef;

/// Runs the namespaces dashboard until the user quits, `stop` is set, or the terminal goes.
pub fn run_namespaces(
    cfg: DashboardConfig,
    source: &mut dyn NamespacesSource,
    stop: Arc<AtomicBool>,
) -> Result<(), DashboardError> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(DashboardError::NotATerminal);
    }
    let (guard, mut terminal) = setup_terminal()?;
    let mut view = Namespaces::new(cfg);
    let result = event_loop(&mut view, source, &stop, &mut terminal);
    drop(guard);
    result
}

/// Every namespace's engine and what the view shows.
pub struct Namespaces {
    cfg: DashboardConfig,
    engines: BTreeMap<u64, (NetnsRef, Engine)>,
    /// Row selected in the list.
    pub selected: usize,
    /// The namespace opened with Enter, and its screens' state.
    open: Option<(u64, App)>,
}

impl Namespaces {
    /// An empty view.
    pub fn new(cfg: DashboardConfig) -> Self {
        Self {
            cfg,
            engines: BTreeMap::new(),
            selected: 0,
            open: None,
        }
    }

    /// Takes one event of the source in.
    pub fn apply(&mut self, event: NsEvent) {
        match event {
            NsEvent::Added(r) => {
                let engine = Engine::new(self.cfg.engine.clone());
                self.engines.insert(r.inode, (r, engine));
            }
            NsEvent::Removed(r) => {
                self.engines.remove(&r.inode);
                if self.open.as_ref().is_some_and(|(i, _)| *i == r.inode) {
                    self.open = None;
                }
            }
            NsEvent::Sample(inode, event) => {
                if let Some((_, e)) = self.engines.get_mut(&inode) {
                    e.apply(event);
                }
            }
            NsEvent::Interval(inode, d) => {
                if let Some((_, e)) = self.engines.get_mut(&inode) {
                    e.set_interval(d);
                }
            }
        }
    }

    /// The rows of the list, most trouble first.
    pub fn rows(&self) -> Vec<NamespaceRow> {
        namespace_rows(self.engines.values().map(|(r, e)| (r, e)))
    }

    /// A key; `Action::Quit` to leave.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        if let Some((inode, app)) = self.open.as_mut() {
            let at_top = app.screen == Screen::Main && app.filter_input.is_none() && !app.help;
            if at_top && matches!(key.code, KeyCode::Esc | KeyCode::Backspace) {
                self.open = None;
                return Action::None;
            }
            let Some((_, engine)) = self.engines.get(inode) else {
                self.open = None;
                return Action::None;
            };
            let keys = app.listing(engine).keys();
            return match app.on_key(key, &keys) {
                Action::Quit => Action::Quit,
                // the fleet chooses each namespace's interval
                _ => Action::None,
            };
        }
        let rows = self.rows();
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            _ if ctrl_c => return Action::Quit,
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(rows.len().saturating_sub(1));
            }
            KeyCode::Enter => {
                if let Some(r) = rows.get(self.selected) {
                    let mut app = App::new(self.cfg.interval, self.cfg.color);
                    app.select = self.cfg.filter.clone();
                    self.open = Some((r.inode, app));
                }
            }
            _ => {}
        }
        Action::None
    }

    /// Draws the list, or the opened namespace's screens.
    pub fn draw(&mut self, f: &mut ratatui::Frame) {
        if let Some((inode, app)) = self.open.as_mut() {
            if let Some((_, engine)) = self.engines.get(inode) {
                super::render::draw(f, app, engine);
                return;
            }
        }
        let rows = self.rows();
        self.selected = self.selected.min(rows.len().saturating_sub(1));
        draw_namespaces(
            f,
            f.area(),
            &rows,
            self.selected,
            Theme::new(self.cfg.color),
        );
    }
}

fn event_loop(
    view: &mut Namespaces,
    source: &mut dyn NamespacesSource,
    stop: &AtomicBool,
    terminal: &mut Term,
) -> Result<(), DashboardError> {
    let (tx, wakes) = mpsc::channel();
    let input_stop = Arc::new(AtomicBool::new(false));
    let _stop_input = StopOnDrop(input_stop.clone());
    spawn_input_thread(input_stop, tx).map_err(term_err("starting the input thread"))?;
    let mut last_tty_check = Instant::now();
    let mut dirty = true;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if last_tty_check.elapsed() >= Duration::from_millis(500) {
            last_tty_check = Instant::now();
            if terminal_hung_up() {
                return Ok(());
            }
        }
        while let Some(event) = source.next_ns_event(Duration::ZERO) {
            view.apply(event);
            dirty = true;
        }
        if dirty {
            terminal
                .draw(|f| view.draw(f))
                .map_err(term_err("drawing to the terminal"))?;
            dirty = false;
        }
        // samples arrive without a waker: the loop looks every 200 ms
        match wakes.recv_timeout(Duration::from_millis(200)) {
            Ok(Wake::Input(Ok(Event::Key(k)))) => {
                if matches!(view.on_key(k), Action::Quit) {
                    return Ok(());
                }
                dirty = true;
            }
            Ok(Wake::Input(Ok(Event::Resize(_, _)))) => {
                terminal.autoresize().map_err(term_err("resizing"))?;
                dirty = true;
            }
            Ok(Wake::Input(Ok(_)) | Wake::Sample) => {}
            Ok(Wake::Input(Err(e))) => return Err(term_err("reading the terminal")(e)),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}
