//! The collector's typed errors: what could not be read, and why. Commands map them to exit
//! codes (a namespace that cannot be entered has its own).

use super::netlink::NetlinkError;
use super::netns::NetnsError;

/// Why collecting failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The network namespace does not exist or cannot be entered.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// A sock_diag request failed.
    #[error("{what}: {source}")]
    Netlink {
        /// What was being read, e.g. "dumping Ipv4 TCP listeners".
        what: String,
        /// The netlink error (not chained: it is in the message).
        source: NetlinkError,
    },
    /// A thread could not be started.
    #[error("{what}: {source}")]
    Spawn {
        /// Which thread.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A collector thread ended without an answer (it panicked).
    #[error("{0}")]
    Thread(&'static str),
}

/// Adds what was being read to a netlink error.
pub(crate) fn netlink(what: impl Into<String>) -> impl FnOnce(NetlinkError) -> CollectError {
    move |source| CollectError::Netlink {
        what: what.into(),
        source,
    }
}
