//! sockq: a live monitor for Linux socket queues.
//!
//! Data flows one way: [`collect`] reads the kernel into a [`model::Snapshot`]; the model keeps
//! history and derives rates and findings; the views ([`export`], the dashboard) render the model.

pub mod cli;
pub mod collect;
pub mod engine;
pub mod export;
pub mod lab;
pub mod model;
pub mod record;
pub mod rules;
pub mod tui;
