//! sockq: a live monitor for Linux socket queues.
//!
//! Layers, each using only the ones before it (docs/architecture.md):
//! [`model`] (plain data) ← [`rules`] (findings) ← [`engine`] (history, rates, the one loop) ←
//! {[`collect`] (the kernel), [`export`] (tables, JSON, Prometheus), [`record`], [`tui`],
//! [`lab`]} ← [`cmd`] (the commands, with [`runtime`]) ← [`cli`] (arguments, exit codes).

pub mod cli;
pub mod cmd;
pub mod collect;
pub mod engine;
pub mod export;
pub mod lab;
pub mod model;
pub mod record;
pub mod rules;
pub mod runtime;
pub mod tui;
