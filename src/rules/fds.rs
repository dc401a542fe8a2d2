//! The fd-limit rule: a holder near RLIMIT_NOFILE, where accept() fails with EMFILE.

use super::{ev, FD_NEAR};
use crate::model::{Finding, ListenerTick, ProcessInfo, Severity, TcpListener};

/// A holder of the listener near its fd limit.
pub(super) fn fd_rule(lt: &ListenerTick, l: &TcpListener, p: &ProcessInfo) -> Option<Finding> {
    let (open, limit) = (p.fds_open?, p.fd_limit?);
    if limit == 0 || (open as f64) < FD_NEAR * limit as f64 {
        return None;
    }
    let at_limit = open >= limit;
    Some(Finding {
        severity: if at_limit || lt.depth > 0 { Severity::Critical } else { Severity::Warning },
        rule: "near_fd_limit".into(),
        listener: Some(lt.endpoint.to_string()),
        key: Some(lt.key),
        cleared_s: None,
        message: format!(
            "{}[{}] (listening on {}) has {open} of {limit} file descriptors open ({:.0}%): at the limit accept() fails with EMFILE and the accept queue fills while the CPU idles.",
            p.comm,
            p.pid,
            lt.endpoint,
            open as f64 / limit as f64 * 100.0
        ),
        evidence: ev([
            ("fds_open", Some(open as f64)),
            ("fd_limit", Some(limit as f64)),
            ("depth", Some(f64::from(l.accept_queue))),
        ]),
        next: format!(
            "Raise its RLIMIT_NOFILE (LimitNOFILE= for a systemd unit, ulimit -n), or look for an fd leak: ls -l /proc/{}/fd.",
            p.pid
        ),
    })
}
