//! The service dump inside a sample: the listeners' children, dumped or reused while young
//! enough under the CPU budget, attributed to their listeners.

use std::time::{Duration, Instant};

use super::system::{monotonic_ns, thread_cpu};
use super::Collector;
use crate::collect::error::{netlink, CollectError};
use crate::collect::service::{self, ChildTracker, ServiceTally};
use crate::model::{Family, ServiceSummary, TcpListener};

/// The service dump's state between samples.
#[derive(Debug, Default)]
pub(super) struct ServiceState {
    pub(super) tracker: ChildTracker,
    pub(super) last: Option<LastService>,
    /// Children first seen, per listener (by cookie), since sockq started.
    pub(super) totals: crate::model::FastMap<u64, u64>,
    /// Thread CPU time of the last dump.
    pub(super) cost: Duration,
}

/// The last service dump.
#[derive(Debug)]
pub(super) struct LastService {
    tally: ServiceTally,
    at: Instant,
    dumped_ns: u64,
    interrupted: bool,
    tcp_info: bool,
    ranges: u32,
}

impl Collector {
    /// Dumps the listeners' children (or reuses the last dump while younger than `max_age`) and
    /// writes each listener's `service`; says in `blind` what is stale or unknown. `None` when
    /// there is no dump to show (no listeners, or it failed).
    pub(super) fn attach_service(
        &mut self,
        listeners: &mut [TcpListener],
        max_age: Duration,
        blind: &mut Vec<String>,
    ) -> Option<ServiceSummary> {
        let reuse = self
            .service
            .last
            .as_ref()
            .is_some_and(|l| l.at.elapsed() < max_age);
        if !reuse {
            let cpu0 = thread_cpu();
            self.service.last = if listeners.is_empty() {
                None
            } else {
                match self.service_dump(listeners) {
                    Ok(last) => Some(last),
                    Err(e) => {
                        blind.push(format!("the listeners' connections are unknown: {e}"));
                        None
                    }
                }
            };
            self.service.cost = thread_cpu().saturating_sub(cpu0);
        }
        let last = self.service.last.as_ref()?;
        let (new, unmatched) = service::attribute_service(listeners, &last.tally);
        let totals = &mut self.service.totals;
        if !reuse {
            for (l, n) in listeners.iter().zip(&new) {
                *totals.entry(l.cookie).or_insert(0) += n;
            }
            let present: crate::model::FastSet<u64> = listeners.iter().map(|l| l.cookie).collect();
            totals.retain(|cookie, _| present.contains(cookie));
        }
        for l in listeners.iter_mut() {
            if let Some(s) = l.service.as_mut() {
                s.connections_seen_total = totals.get(&l.cookie).copied().unwrap_or(0);
            }
        }
        let age = last.at.elapsed();
        if reuse {
            blind.push(format!(
                "the listeners' connections (waiting, in service, closing) are {:.1} s old: the dump was spaced out to keep the CPU budget",
                age.as_secs_f64()
            ));
        }
        if last.interrupted {
            blind.push("the dump of the listeners' connections was interrupted by concurrent changes; counts may be off by a few".into());
        }
        Some(ServiceSummary {
            age_ms: if reuse {
                u64::try_from(age.as_millis()).unwrap_or(u64::MAX)
            } else {
                0
            },
            dumped_monotonic_ns: last.dumped_ns,
            sockets: last.tally.sockets,
            unmatched,
            tcp_info: last.tcp_info,
            port_ranges: last.ranges,
        })
    }

    /// One pass of the service dump: per family of the listeners, the children's states on
    /// the listeners' ports (kernel-side bytecode filter), with tcp_info only when the tracker
    /// needs ages.
    fn service_dump(&mut self, listeners: &[TcpListener]) -> Result<LastService, CollectError> {
        let ports: Vec<u16> = listeners.iter().map(|l| l.port).collect();
        let ranges = service::port_ranges(&ports, service::MAX_PORT_RANGES);
        let mut families: Vec<Family> = listeners.iter().map(|l| l.family).collect();
        families.sort_unstable();
        families.dedup();
        let tcp_info = self.service.tracker.wants_tcp_info();
        let dumped_ns = monotonic_ns();
        let mut pass = self.service.tracker.begin(dumped_ns);
        let mut interrupted = false;
        for family in families {
            let request = service::children_request(family, &ranges, tcp_info);
            let result = self.diag.dump(request, |payload| {
                if let Some(child) = service::decode_child(payload)? {
                    pass.add(&child);
                }
                Ok(())
            });
            match result {
                Ok(i) => interrupted |= i,
                Err(e) => {
                    pass.finish(false);
                    return Err(netlink(format!("dumping {family:?} TCP connections"))(e));
                }
            }
        }
        let tally = pass.finish(!interrupted);
        Ok(LastService {
            tally,
            at: Instant::now(),
            dumped_ns,
            interrupted,
            tcp_info,
            ranges: u32::try_from(ranges.len()).unwrap_or(u32::MAX),
        })
    }
}
