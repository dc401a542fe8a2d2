//! Dashboard state and key handling. Pure: no terminal, no I/O.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use crate::engine::Engine;
use crate::model::lab::{Knob, LabStatus};
use crate::model::{Filter, ListenerKey};

pub use super::listing::Listing;
use super::listing::{Options, OrderMemo};
pub use super::rows::{Row, SortBy};

/// Which screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Header, counters, listeners, findings.
    Main,
    /// The selected listener in detail.
    Detail,
    /// SYN queue → accept queue → process, for a room.
    Pipeline,
}

/// What the event loop must do after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond a redraw.
    None,
    /// Leave the dashboard.
    Quit,
    /// Ask the sampler for a new interval.
    SetInterval(std::time::Duration),
}

/// The dashboard's state.
#[derive(Debug, Clone)]
pub struct App {
    /// Current screen.
    pub screen: Screen,
    /// Help overlay shown.
    pub help: bool,
    /// First help entry shown when the help is taller than its box (the renderer keeps it in
    /// range).
    pub help_scroll: usize,
    /// Rows of help on screen (set by the renderer): what PgUp/PgDn move by.
    pub help_page: usize,
    /// Sort order.
    pub sort: SortBy,
    /// Search text typed with `/` (endpoint or process name contains it, or the pid is it).
    pub filter: String,
    /// Filter being typed (`/` mode), if any.
    pub filter_input: Option<String>,
    /// View frozen (collection goes on).
    pub paused: bool,
    /// Show UNIX listeners.
    pub show_unix: bool,
    /// Selected listener.
    pub selected: Option<ListenerKey>,
    /// Display interval.
    pub interval: std::time::Duration,
    /// Colours allowed.
    pub color: bool,
    /// First row of the listener table on screen (set by the renderer for mouse selection).
    pub table_top: u16,
    /// Index of the first visible row (scroll offset).
    pub scroll: usize,
    /// Which listeners to show (--port, --process): the filter every command shares.
    pub select: Filter,
    /// The lab's narration and client view, when the dashboard runs a workshop lab.
    pub lab: Option<LabStatus>,
    /// A line from the sample source (e.g. the replay position).
    pub source_status: Option<String>,
    /// What the last listing learnt of the listeners' endpoint order.
    order_memo: OrderMemo,
}

impl App {
    /// A new dashboard state.
    pub fn new(interval: std::time::Duration, color: bool) -> Self {
        Self {
            screen: Screen::Main,
            help: false,
            help_scroll: 0,
            help_page: 10,
            sort: SortBy::Fill,
            filter: String::new(),
            filter_input: None,
            paused: false,
            show_unix: false,
            selected: None,
            interval,
            color,
            table_top: 0,
            scroll: 0,
            select: Filter::default(),
            lab: None,
            source_status: None,
            order_memo: OrderMemo::default(),
        }
    }

    /// The listener rows in display order, after the filters.
    pub fn rows(&self, engine: &Engine) -> Vec<Row> {
        self.listing(engine).rows()
    }

    /// The listener rows in display order after the filters (`--port`/`--process`, then `/`),
    /// and how many listeners there are before them.
    pub fn rows_and_total(&self, engine: &Engine) -> (Vec<Row>, usize) {
        let listing = self.listing(engine);
        (listing.rows(), listing.total())
    }

    /// The listener table in display order after the filters, without building its rows: what
    /// a frame and a key need (a row is built for a listener when it is drawn).
    pub fn listing<'e>(&self, engine: &'e Engine) -> Listing<'e> {
        Listing::new(
            engine,
            Options {
                sort: self.sort,
                search: &self.filter,
                select: &self.select,
                unix: self.show_unix,
                memo: Some(&self.order_memo),
            },
        )
    }

    /// Index of the selected row, if it is still shown.
    pub fn selected_index(&self, rows: &[Row]) -> Option<usize> {
        self.selected.and_then(|k| rows.place(k))
    }

    /// The selected row, or the first one.
    pub fn selected_row<'a>(&self, rows: &'a [Row]) -> Option<&'a Row> {
        self.selected_index(rows).map(|i| &rows[i]).or(rows.first())
    }

    /// The selected listener's row, or the first one's.
    pub fn selected_listing_row(&self, listing: &Listing<'_>) -> Option<Row> {
        let i = self.selected.and_then(|k| listing.position(k)).unwrap_or(0);
        listing.row(i)
    }

    fn move_selection<R: Shown + ?Sized>(&mut self, rows: &R, delta: isize) {
        let n = rows.count();
        if n == 0 {
            self.selected = None;
            return;
        }
        let cur = self.selected.and_then(|k| rows.place(k)).unwrap_or(0) as isize;
        let next = (cur + delta).clamp(0, n as isize - 1) as usize;
        self.selected = rows.key_at(next);
    }

    /// Handles a key; `rows` are the rows currently shown (or their keys, in order).
    pub fn on_key<R: Shown + ?Sized>(&mut self, key: KeyEvent, rows: &R) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return Action::Quit;
        }
        if let Some(input) = self.filter_input.as_mut() {
            match key.code {
                KeyCode::Enter => {
                    self.filter = input.trim().to_string();
                    self.filter_input = None;
                }
                KeyCode::Esc => self.filter_input = None,
                KeyCode::Backspace => {
                    input.pop();
                }
                KeyCode::Char(c) if !c.is_control() && input.len() < 64 => input.push(c),
                _ => {}
            }
            return Action::None;
        }
        if self.help {
            return self.help_key(key.code);
        }
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('?') | KeyCode::F(1) => {
                self.help = true;
                self.help_scroll = 0;
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(rows, -1),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(rows, 1),
            KeyCode::PageUp => self.move_selection(rows, -10),
            KeyCode::PageDown => self.move_selection(rows, 10),
            KeyCode::Home | KeyCode::Char('g') => {
                self.move_selection(rows, -(rows.count() as isize))
            }
            KeyCode::End | KeyCode::Char('G') => self.move_selection(rows, rows.count() as isize),
            KeyCode::Enter => {
                if self.selected.is_none() {
                    self.selected = rows.key_at(0);
                }
                if self.selected.is_some() {
                    self.screen = Screen::Detail;
                }
            }
            KeyCode::Esc => {
                if self.screen != Screen::Main {
                    self.screen = Screen::Main;
                } else if !self.filter.is_empty() {
                    self.filter.clear();
                }
            }
            KeyCode::Char('s') => self.sort = self.sort.next(),
            KeyCode::Char('/') => self.filter_input = Some(self.filter.clone()),
            KeyCode::Char(' ') => self.paused = !self.paused,
            KeyCode::Char('u') => self.show_unix = !self.show_unix,
            KeyCode::Char('p') => {
                if self.selected.is_none() {
                    self.selected = rows.key_at(0);
                }
                self.screen = if self.screen == Screen::Pipeline {
                    Screen::Main
                } else {
                    Screen::Pipeline
                };
            }
            KeyCode::Char('+') | KeyCode::Char('=') => return self.change_interval(true),
            KeyCode::Char('-') => return self.change_interval(false),
            _ => {}
        }
        Action::None
    }

    /// A key while the help is open: the arrows and page keys scroll it (when it is taller than
    /// its box), any other key closes it; q still quits.
    fn help_key(&mut self, code: KeyCode) -> Action {
        match code {
            KeyCode::Up => self.help_scroll = self.help_scroll.saturating_sub(1),
            KeyCode::Down => self.help_scroll += 1,
            KeyCode::PageUp => self.help_scroll = self.help_scroll.saturating_sub(self.help_page),
            KeyCode::PageDown => self.help_scroll += self.help_page,
            KeyCode::Home => self.help_scroll = 0,
            KeyCode::End => self.help_scroll = usize::MAX,
            KeyCode::Char('q') => return Action::Quit,
            _ => self.help = false,
        }
        Action::None
    }

    fn change_interval(&mut self, up: bool) -> Action {
        const STEPS_MS: [u64; 8] = [250, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000];
        let cur = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX);
        let next = if up {
            STEPS_MS
                .iter()
                .copied()
                .find(|&s| s > cur)
                .unwrap_or(60_000)
        } else {
            STEPS_MS
                .iter()
                .rev()
                .copied()
                .find(|&s| s < cur)
                .unwrap_or(250)
        };
        self.interval = std::time::Duration::from_millis(next);
        Action::SetInterval(self.interval)
    }

    /// Handles a mouse event: a left click on a table row selects it; the wheel scrolls.
    pub fn on_mouse<R: Shown + ?Sized>(&mut self, m: MouseEvent, rows: &R) {
        match m.kind {
            MouseEventKind::Down(MouseButton::Left)
                if self.screen == Screen::Main && m.row >= self.table_top =>
            {
                let i = usize::from(m.row - self.table_top) + self.scroll;
                if let Some(k) = rows.key_at(i) {
                    self.selected = Some(k);
                }
            }
            MouseEventKind::ScrollDown => self.move_selection(rows, 1),
            MouseEventKind::ScrollUp => self.move_selection(rows, -1),
            _ => {}
        }
    }
}

/// The rows on screen as the keys and the mouse need them: how many, which listener is at a
/// place, where a listener is. Rows, their keys in order, or a [`Listing`].
pub trait Shown {
    /// How many rows.
    fn count(&self) -> usize;
    /// The listener at place `i`.
    fn key_at(&self, i: usize) -> Option<ListenerKey>;
    /// The place of a listener, if it is shown.
    fn place(&self, key: ListenerKey) -> Option<usize>;
}

impl Shown for [Row] {
    fn count(&self) -> usize {
        self.len()
    }
    fn key_at(&self, i: usize) -> Option<ListenerKey> {
        self.get(i).map(|r| r.key)
    }
    fn place(&self, key: ListenerKey) -> Option<usize> {
        self.iter().position(|r| r.key == key)
    }
}

impl Shown for [ListenerKey] {
    fn count(&self) -> usize {
        self.len()
    }
    fn key_at(&self, i: usize) -> Option<ListenerKey> {
        self.get(i).copied()
    }
    fn place(&self, key: ListenerKey) -> Option<usize> {
        self.iter().position(|k| *k == key)
    }
}

impl<T> Shown for Vec<T>
where
    [T]: Shown,
{
    fn count(&self) -> usize {
        self.as_slice().count()
    }
    fn key_at(&self, i: usize) -> Option<ListenerKey> {
        self.as_slice().key_at(i)
    }
    fn place(&self, key: ListenerKey) -> Option<usize> {
        self.as_slice().place(key)
    }
}

impl Shown for Listing<'_> {
    fn count(&self) -> usize {
        self.len()
    }
    fn key_at(&self, i: usize) -> Option<ListenerKey> {
        self.key(i)
    }
    fn place(&self, key: ListenerKey) -> Option<usize> {
        self.position(key)
    }
}

/// The lab's knob for a key, if the key is one (lower case decreases, upper case increases).
pub fn lab_knob(key: &KeyEvent) -> Option<Knob> {
    if key.kind == KeyEventKind::Release || key.modifiers.contains(KeyModifiers::CONTROL) {
        return None;
    }
    let KeyCode::Char(c) = key.code else {
        return None;
    };
    Some(match c {
        'a' => Knob::Rate(false),
        'A' => Knob::Rate(true),
        'w' => Knob::Workers(false),
        'W' => Knob::Workers(true),
        't' => Knob::Service(false),
        'T' => Knob::Service(true),
        'b' => Knob::Backlog(false),
        'B' => Knob::Backlog(true),
        'm' => Knob::Somaxconn(false),
        'M' => Knob::Somaxconn(true),
        'c' => Knob::CycleSyncookies,
        'f' => Knob::FdLimit(false),
        'F' => Knob::FdLimit(true),
        'o' => Knob::ToggleAbort,
        'x' => Knob::ToggleFlood,
        'l' => Knob::Relisten,
        'n' => Knob::NextStep,
        _ => return None,
    })
}
