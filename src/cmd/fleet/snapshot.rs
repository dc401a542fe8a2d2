//! `sockq snapshot --all-netns`: one sample of every namespace found.

use crate::cmd::snapshot::{wants_reread, SnapshotConfig};
use crate::cmd::{CmdError, CmdResult};
use crate::collect::netns::{current_netns_inode, run_in_checked, NetnsError, NetnsTarget};
use crate::collect::netns_all::{self, Discovery, DiscoveryOptions};
use crate::collect::{CollectError, Collector, CollectorOptions};
use crate::export;
use crate::model::fleet::{FleetSnapshot, NetnsSnapshot, FLEET_SCHEMA_VERSION};
use crate::model::labels::terminal_safe;
use crate::model::{NetnsRef, Snapshot};
use crate::runtime::write_stdout;

/// A namespace's collector and sample, or why it could not be read.
type Read = Result<(Collector, Snapshot), CollectError>;

/// Runs `snapshot --all-netns`.
pub fn snapshot(cfg: &SnapshotConfig) -> CmdResult {
    let mut discovery = Discovery::new(DiscoveryOptions::default());
    discovery.refresh().map_err(anyhow::Error::from)?;
    let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let own = current_netns_inode();
    let opts = cfg.collector.clone().across_namespaces();
    let mut read: Vec<(NetnsRef, Read)> = discovery
        .namespaces()
        .iter()
        .map(|r| (r.clone(), sample_one(r, own, &opts)))
        .collect();
    // A process's CPU share needs two reads of it: every namespace's holders are read again
    // once, a moment later (the holders' /proc files do not depend on the namespace).
    // (`--cpu-window 0`: not read again, the shares stay unknown.)
    if read.iter().any(|(_, x)| {
        x.as_ref()
            .is_ok_and(|(_, s)| wants_reread(cfg.cpu_window, s))
    }) {
        std::thread::sleep(cfg.cpu_window);
        for (_, x) in read.iter_mut() {
            if let Ok((c, s)) = x {
                c.reread_owners(s);
            }
        }
    }
    let denied = read
        .iter()
        .filter(|(_, x)| matches!(x, Err(CollectError::Netns(NetnsError::Permission { .. }))))
        .count();
    let namespaces: Vec<NetnsSnapshot> = read
        .into_iter()
        .map(|(r, x)| {
            let (snapshot, error) = match x {
                Ok((_, mut s)) => {
                    s.netns.label = r.label();
                    cfg.filter.apply(&mut s);
                    (Some(s), None)
                }
                Err(e) => (None, Some(e.to_string())),
            };
            NetnsSnapshot {
                label: r.label(),
                netns: r,
                snapshot,
                error,
            }
        })
        .collect();
    let found = namespaces.len();
    let mut blind: Vec<String> = discovery
        .blind_spot()
        .map(String::from)
        .into_iter()
        .collect();
    if denied > 0 {
        blind.push(format!(
            "{denied} of {found} namespaces cannot be entered: entering another network namespace \
             needs CAP_SYS_ADMIN (run sockq as root); showing the {} readable",
            found - denied
        ));
    }
    let fleet = FleetSnapshot {
        schema_version: FLEET_SCHEMA_VERSION,
        time,
        namespaces_found: found,
        blind_spot: (!blind.is_empty()).then(|| blind.join("; ")),
        namespaces,
    };
    let blind = fleet.blind_spot.clone().unwrap_or_default();
    super::report_access(&blind, denied, found, found - denied);
    let text = if cfg.json {
        serde_json::to_string_pretty(&fleet).map_err(CmdError::from)?
    } else {
        let note = (!cfg.filter.is_empty()).then(|| cfg.filter.describe());
        terminal_safe(&export::fleet::snapshot_text(&fleet, note.as_deref())).into_owned()
    };
    Ok(write_stdout(&text)?)
}

/// One sample of `r`, on a thread that entered it (sockq's own namespace without setns, so an
/// unprivileged run still reads it); the collector comes back for the second owner read.
fn sample_one(r: &NetnsRef, own: Option<u64>, opts: &CollectorOptions) -> Read {
    let target = if Some(r.inode) == own {
        NetnsTarget::Current
    } else {
        netns_all::target(r)
    };
    let (label, opts) = (r.label(), opts.clone());
    run_in_checked(&target, Some(r.inode), move || {
        let mut c = Collector::new(label, opts)?;
        let s = c.sample()?;
        Ok((c, s))
    })
}
