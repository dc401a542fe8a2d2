//! The footer line: the keys of the current screen, or the filter being typed.

use ratatui::text::{Line, Span};

use super::text::safe;
use super::theme::Theme;
use crate::tui::app::{App, Screen};

/// The footer line of the current screen.
pub(super) fn footer(app: &App, theme: Theme) -> Line<'static> {
    if let Some(input) = &app.filter_input {
        return Line::from(vec![
            Span::styled("filter: ", theme.bold()),
            Span::raw(format!("{}█", safe(input))),
            Span::styled("  Enter apply · Esc cancel", theme.dim()),
        ]);
    }
    let keys = match app.screen {
        Screen::Main => {
            "q quit ? help ↑↓ ⏎ detail p pipeline s sort / filter u unix ␣ pause +/- interval"
        }
        Screen::Detail => "Esc back  ↑↓ other listener  p pipeline  space pause  ? help  q quit",
        Screen::Pipeline => "Esc/p back  ↑↓ other listener  space pause  ? help  q quit",
    };
    Line::styled(keys, theme.dim())
}
