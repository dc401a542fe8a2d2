//! Selecting listeners by port and process.

use super::{Owners, Snapshot};

/// Which listeners to keep. An empty filter keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Keep TCP listeners on these local ports (UNIX listeners have no port and are dropped when
    /// this is not empty).
    pub ports: Vec<u16>,
    /// Keep listeners held by a process whose comm contains this text, or whose pid it is.
    pub process: Option<String>,
}

impl Filter {
    /// True when nothing is filtered out.
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty() && self.process.is_none()
    }

    fn owner_matches(&self, owners: &Owners) -> bool {
        let Some(want) = &self.process else {
            return true;
        };
        let pid: Option<u32> = want.parse().ok();
        owners
            .processes()
            .iter()
            .any(|p| p.comm.contains(want.as_str()) || Some(p.pid) == pid)
    }

    /// True when a listener on `port` (`None` for a UNIX listener) held by `owners` is kept.
    /// Every command and the dashboard decide with this one function.
    pub fn matches(&self, port: Option<u16>, owners: &Owners) -> bool {
        let port_ok = match port {
            Some(p) => self.ports.is_empty() || self.ports.contains(&p),
            None => self.ports.is_empty(),
        };
        port_ok && self.owner_matches(owners)
    }

    /// Removes from `snap` the listeners that do not match.
    pub fn apply(&self, snap: &mut Snapshot) {
        if self.is_empty() {
            return;
        }
        snap.tcp_listeners
            .retain(|l| self.matches(Some(l.port), &l.owners));
        if let Some(unix) = snap.unix_listeners.as_mut() {
            unix.retain(|l| self.matches(None, &l.owners));
        }
    }

    /// A description for "nothing matches" messages, e.g. `--port 80 --process nginx`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.ports.iter().map(|p| format!("--port {p}")).collect();
        if let Some(p) = &self.process {
            parts.push(format!("--process {p}"));
        }
        parts.join(" ")
    }
}
