//! Colours and styles of the dashboard, with or without colour.

use std::borrow::Cow;

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders};

use crate::model::Severity;

/// Styles, with or without colour (NO_COLOR keeps severity visible through labels and bold).
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    color: bool,
}

impl Theme {
    /// A theme.
    pub fn new(color: bool) -> Self {
        Self { color }
    }

    pub(super) fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub(super) fn sev(&self, s: Severity) -> Style {
        match s {
            Severity::Critical => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Severity::Warning => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Severity::Info => self.fg(Color::Cyan),
        }
    }

    pub(super) fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    pub(super) fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    pub(super) fn fill(&self, fill: f64) -> Style {
        if fill > 1.0 {
            self.fg(Color::Red).add_modifier(Modifier::BOLD)
        } else if fill >= 0.8 {
            self.fg(Color::Yellow)
        } else {
            self.fg(Color::Green)
        }
    }

    pub(super) fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}

/// A part of the main screen: a rule on top with the title in it.
pub(super) fn section<'a>(title: impl Into<Cow<'a, str>>, style: Style) -> Block<'a> {
    Block::default()
        .borders(Borders::TOP)
        .title(Span::styled(title, style))
}
