//! Dashboard state and key handling. Pure: no terminal, no I/O.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

use crate::engine::Engine;
use crate::model::lab::{Knob, LabStatus};
use crate::model::{Filter, ListenerKey, ListenerTick, Owners, TcpListener, Tick};

/// Sort orders of the listener table, cycled with `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Accept-queue fill (peak since the last tick), fullest first.
    Fill,
    /// Drops per second, most first.
    Drops,
    /// SYN-RECV requests, most first.
    SynRecv,
    /// Local port, ascending.
    Port,
    /// Process name.
    Process,
}

impl SortBy {
    /// The next order.
    pub fn next(self) -> Self {
        match self {
            SortBy::Fill => SortBy::Drops,
            SortBy::Drops => SortBy::SynRecv,
            SortBy::SynRecv => SortBy::Port,
            SortBy::Port => SortBy::Process,
            SortBy::Process => SortBy::Fill,
        }
    }

    /// Name shown in the table title.
    pub fn label(self) -> &'static str {
        match self {
            SortBy::Fill => "fill",
            SortBy::Drops => "drops",
            SortBy::SynRecv => "SYN-RECV",
            SortBy::Port => "port",
            SortBy::Process => "process",
        }
    }
}

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

/// One row of the listener table (a TCP or UNIX listener).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Identity (UNIX listeners use their inode with cookie 0).
    pub key: ListenerKey,
    /// Address:port, or the UNIX path.
    pub endpoint: String,
    /// Local port (TCP only).
    pub port: Option<u16>,
    /// Owning processes.
    pub owners: Owners,
    /// Depth now.
    pub depth: u32,
    /// Peak since the previous tick.
    pub peak: u32,
    /// Backlog.
    pub backlog: u32,
    /// SYN-RECV (TCP only) and the size of the group it is shared with.
    pub syn_recv: Option<(u64, u32)>,
    /// Drops per second.
    pub drops_per_s: Option<f64>,
    /// Cumulative drops.
    pub drops: Option<u64>,
    /// Gone from the latest sample.
    pub gone: bool,
    /// A UNIX listener.
    pub unix: bool,
}

impl Row {
    /// Peak fill (may exceed 1).
    pub fn fill(&self) -> f64 {
        f64::from(self.peak.max(self.depth)) / f64::from(self.backlog.max(1))
    }

    /// Name of the first owner, for sorting and filtering.
    pub fn process_name(&self) -> &str {
        self.owners
            .processes()
            .first()
            .map_or("", |p| p.comm.as_str())
    }

    fn from_tcp(lt: &ListenerTick, l: Option<&TcpListener>) -> Self {
        Row {
            key: lt.key,
            endpoint: lt.endpoint.clone(),
            port: l.map(|l| l.port),
            owners: l.map_or(
                Owners::Unknown {
                    reason: "gone".into(),
                },
                |l| l.owners.clone(),
            ),
            depth: lt.depth,
            peak: lt.depth_high,
            backlog: lt.backlog,
            syn_recv: l.map(|l| (l.syn_recv, l.syn_recv_group)),
            drops_per_s: lt.drops_per_s,
            drops: l.and_then(|l| l.drops),
            gone: lt.gone,
            unix: false,
        }
    }
}

/// The dashboard's state.
#[derive(Debug, Clone)]
pub struct App {
    /// Current screen.
    pub screen: Screen,
    /// Help overlay shown.
    pub help: bool,
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
}

impl App {
    /// A new dashboard state.
    pub fn new(interval: std::time::Duration, color: bool) -> Self {
        Self {
            screen: Screen::Main,
            help: false,
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
        }
    }

    /// The listener rows in display order, after the filter.
    pub fn rows(&self, engine: &Engine) -> Vec<Row> {
        let Some(tick) = engine.latest() else {
            return Vec::new();
        };
        let mut rows = tcp_rows(tick, engine);
        if self.show_unix {
            rows.extend(unix_rows(tick));
        }
        rows.retain(|r| self.select.matches(r.port, &r.owners));
        if !self.filter.is_empty() {
            let f = self.filter.as_str();
            rows.retain(|r| {
                r.endpoint.contains(f)
                    || r.owners
                        .processes()
                        .iter()
                        .any(|p| p.comm.contains(f) || p.pid.to_string() == f)
            });
        }
        sort_rows(&mut rows, self.sort);
        rows
    }

    /// Index of the selected row, if it is still shown.
    pub fn selected_index(&self, rows: &[Row]) -> Option<usize> {
        let key = self.selected?;
        rows.iter().position(|r| r.key == key)
    }

    /// The selected row, or the first one.
    pub fn selected_row<'a>(&self, rows: &'a [Row]) -> Option<&'a Row> {
        self.selected_index(rows).map(|i| &rows[i]).or(rows.first())
    }

    fn move_selection(&mut self, rows: &[Row], delta: isize) {
        if rows.is_empty() {
            self.selected = None;
            return;
        }
        let cur = self.selected_index(rows).unwrap_or(0) as isize;
        let next = (cur + delta).clamp(0, rows.len() as isize - 1) as usize;
        self.selected = Some(rows[next].key);
    }

    /// Handles a key; `rows` are the rows currently shown.
    pub fn on_key(&mut self, key: KeyEvent, rows: &[Row]) -> Action {
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
            // Any key closes the help; q still quits.
            self.help = false;
            return if key.code == KeyCode::Char('q') {
                Action::Quit
            } else {
                Action::None
            };
        }
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('?') | KeyCode::F(1) => self.help = true,
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(rows, -1),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(rows, 1),
            KeyCode::PageUp => self.move_selection(rows, -10),
            KeyCode::PageDown => self.move_selection(rows, 10),
            KeyCode::Home | KeyCode::Char('g') => self.move_selection(rows, -(rows.len() as isize)),
            KeyCode::End | KeyCode::Char('G') => self.move_selection(rows, rows.len() as isize),
            KeyCode::Enter => {
                if self.selected.is_none() {
                    self.selected = rows.first().map(|r| r.key);
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
                    self.selected = rows.first().map(|r| r.key);
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
    pub fn on_mouse(&mut self, m: MouseEvent, rows: &[Row]) {
        match m.kind {
            MouseEventKind::Down(MouseButton::Left)
                if self.screen == Screen::Main && m.row >= self.table_top =>
            {
                let i = usize::from(m.row - self.table_top) + self.scroll;
                if let Some(r) = rows.get(i) {
                    self.selected = Some(r.key);
                }
            }
            MouseEventKind::ScrollDown => self.move_selection(rows, 1),
            MouseEventKind::ScrollUp => self.move_selection(rows, -1),
            _ => {}
        }
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

/// A row for every TCP listener of the tick, and for those that went away earlier and are
/// still kept (from the history).
fn tcp_rows(tick: &Tick, engine: &Engine) -> Vec<Row> {
    let by_key: std::collections::HashMap<ListenerKey, &TcpListener> = tick
        .snapshot
        .tcp_listeners
        .iter()
        .map(|l| (ListenerKey::from(l), l))
        .collect();
    let gone = engine.gone_listeners();
    tick.listeners
        .iter()
        .chain(gone.iter())
        .map(|lt| {
            let l = by_key
                .get(&lt.key)
                .copied()
                .or_else(|| engine.listener(&lt.key).map(|h| &h.listener));
            Row::from_tcp(lt, l)
        })
        .collect()
}

/// A row for every UNIX listener of the tick.
fn unix_rows(tick: &Tick) -> Vec<Row> {
    let Some(unix) = &tick.snapshot.unix_listeners else {
        return Vec::new();
    };
    unix.iter()
        .map(|u| Row {
            key: ListenerKey {
                inode: u.inode,
                cookie: 0,
            },
            endpoint: if u.name.is_empty() {
                format!("unix:(unnamed {})", u.inode)
            } else {
                u.name.clone()
            },
            port: None,
            owners: u.owners.clone(),
            depth: u.accept_queue,
            peak: u.accept_queue,
            backlog: u.backlog,
            syn_recv: None,
            drops_per_s: None,
            drops: None,
            gone: false,
            unix: true,
        })
        .collect()
}

/// Sorts rows by `sort`; gone listeners sink to the bottom whatever the order.
fn sort_rows(rows: &mut [Row], sort: SortBy) {
    let cmp_f = |a: f64, b: f64| b.total_cmp(&a);
    match sort {
        SortBy::Fill => {
            rows.sort_by(|a, b| cmp_f(a.fill(), b.fill()).then(a.endpoint.cmp(&b.endpoint)))
        }
        SortBy::Drops => rows.sort_by(|a, b| {
            cmp_f(a.drops_per_s.unwrap_or(-1.0), b.drops_per_s.unwrap_or(-1.0))
                .then(a.endpoint.cmp(&b.endpoint))
        }),
        SortBy::SynRecv => rows.sort_by(|a, b| {
            b.syn_recv
                .map(|s| s.0)
                .cmp(&a.syn_recv.map(|s| s.0))
                .then(a.endpoint.cmp(&b.endpoint))
        }),
        SortBy::Port => rows.sort_by_key(|r| {
            (
                r.unix,
                r.port.map_or(u32::MAX, u32::from),
                r.endpoint.clone(),
            )
        }),
        SortBy::Process => rows.sort_by(|a, b| {
            a.process_name()
                .cmp(b.process_name())
                .then(a.endpoint.cmp(&b.endpoint))
        }),
    }
    // Gone listeners sink to the bottom whatever the order.
    rows.sort_by_key(|r| r.gone);
}
