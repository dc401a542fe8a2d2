//! Findings: what the rules say about a tick, as plain data every view renders.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ListenerKey;

/// How loud a finding is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is lost.
    Info,
    /// Heading for trouble.
    Warning,
    /// Connections are being lost now.
    Critical,
}

impl Severity {
    /// A label that still tells severity without colour (NO_COLOR).
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "WARN",
            Severity::Critical => "CRIT",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// How loud.
    pub severity: Severity,
    /// Stable rule id (e.g. `accept_queue_full`), for filtering and alerting.
    pub rule: String,
    /// The listener concerned (`address:port`), if any.
    pub listener: Option<String>,
    /// Its identity: what views and filters match on (the endpoint is for people).
    #[serde(
        default,
        rename = "listener_key",
        skip_serializing_if = "Option::is_none"
    )]
    pub key: Option<ListenerKey>,
    /// What is happening, in one plain sentence.
    pub message: String,
    /// The numbers that show it.
    pub evidence: BTreeMap<String, f64>,
    /// What to look at next.
    pub next: String,
    /// Seconds since the cause stopped, for a critical finding held on screen a little longer
    /// (so it does not blink); absent while the cause is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared_s: Option<f64>,
}

impl Finding {
    /// True while its cause is present (not a held, cleared finding).
    pub fn is_active(&self) -> bool {
        self.cleared_s.is_none()
    }
}
