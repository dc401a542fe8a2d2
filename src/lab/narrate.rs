//! The narration for the room: what is happening now, in the numbers the dashboard shows, and
//! what to try next. Pure: knobs, the latest tick and the clients' view in, text out.

use super::narrate_service::narrate_service;
use super::SERVICE;
use crate::model::lab::{ClientView, Knobs, Scenario};
use crate::model::labels::tightest_owner;
use crate::model::{ListenerKey, TcpListener, Tick};

/// What the dashboard shows of the lab's listener and namespace in the latest tick.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Seen<'a> {
    pub(super) depth: u32,
    pub(super) backlog: u32,
    peak: u32,
    syn: u64,
    drops: f64,
    pub(super) tick: Option<&'a Tick>,
    pub(super) listener: Option<&'a TcpListener>,
}

impl<'a> Seen<'a> {
    fn of(tick: Option<&'a Tick>) -> Self {
        let Some(t) = tick else {
            return Seen::default();
        };
        let Some(l) = t
            .snapshot
            .tcp_listeners
            .iter()
            .find(|l| l.port == SERVICE.port())
        else {
            return Seen {
                tick,
                ..Seen::default()
            };
        };
        let lt = t.listeners.iter().find(|x| x.key == ListenerKey::from(l));
        Seen {
            depth: l.accept_queue,
            backlog: l.backlog,
            peak: lt.map_or(l.accept_queue, |x| x.depth_high),
            syn: l.syn_recv,
            drops: lt.and_then(|x| x.drops_per_s).unwrap_or(0.0),
            tick,
            listener: Some(l),
        }
    }

    /// A TcpExt counter's rate in the latest tick (0 when unknown).
    fn rate(&self, name: &str) -> f64 {
        self.tick
            .and_then(|t| t.counter_rates.get(name).copied().flatten())
            .unwrap_or(0.0)
    }
}

/// The narration lines and the "try next" keys for `scenario` at `step`.
pub fn narrate(
    scenario: Scenario,
    step: usize,
    k: &Knobs,
    flooding: bool,
    tick: Option<&Tick>,
    c: &ClientView,
) -> (Vec<String>, String) {
    let s = Seen::of(tick);
    match scenario {
        Scenario::SlowConsumer => slow_consumer(step, k, &s),
        Scenario::SomaxconnTrap => somaxconn_trap(step, k, &s, c),
        Scenario::SynFlood => syn_flood(k, flooding, &s, c),
        Scenario::FdExhaustion => fd_exhaustion(&s),
        Scenario::AbortOnOverflow => abort_on_overflow(k, &s, c),
        Scenario::BlockedLoop
        | Scenario::SlowResponse
        | Scenario::CloseWaitLeak
        | Scenario::SlowReaders => narrate_service(scenario, step, k, &s),
    }
}

fn slow_consumer(step: usize, k: &Knobs, s: &Seen) -> (Vec<String>, String) {
    let Seen {
        depth,
        backlog,
        peak,
        ..
    } = *s;
    let overflows = s.rate("ListenOverflows");
    let cap = k.capacity();
    let limited_by_fds = k.fd_limit.is_some_and(|l| l < u64::from(k.workers));
    let mut n = vec![if limited_by_fds {
        format!(
            "Capacity = min(workers {}, fd limit {}) / service time {} ms = {cap:.0} connections/s; clients arrive at {:.0}/s.",
            k.workers,
            k.fd_limit.unwrap_or(0),
            k.service_ms,
            k.rate
        )
    } else {
        format!(
            "Capacity = workers / service time = {} / {} ms = {cap:.0} connections/s; clients arrive at {:.0}/s.",
            k.workers, k.service_ms, k.rate
        )
    }];
    if s.drops > 0.0 || s.rate("ListenOverflows") > 0.0 {
        n.push(format!(
            "The kernel is dropping now: the listener drops {:.0}/s, ListenOverflows {overflows:.0}/s (queue {depth}/{backlog}, peak {peak}); the listener counts dropped packets (a SYN, its retries, a final ACK that can count twice), ListenOverflows connection attempts.",
            s.drops
        ));
    } else if k.rate > cap {
        n.push(format!(
            "Arrivals exceed capacity: the accept queue grows by about {:.0}/s until it holds backlog+1 = {} (now {depth}, peak {peak}); then the kernel drops connection attempts (ListenOverflows {overflows:.0}/s) and clients wait for retransmits.",
            k.rate - cap,
            backlog + 1
        ));
    } else {
        n.push(format!(
            "Capacity is above the arrival rate: connections wait only briefly (queue {depth}/{backlog}, no drops now). Response time, not CPU, sets the limit."
        ));
    }
    let next = match step {
        0 => "n: slow the handler down · t/T service time · w/W workers · a/A arrival rate",
        1 => "n: add workers · or b/B: a bigger backlog only delays the drops",
        _ => "t/T, w/W, a/A: change service time, workers, arrival rate",
    };
    (n, next.into())
}

fn somaxconn_trap(step: usize, k: &Knobs, s: &Seen, c: &ClientView) -> (Vec<String>, String) {
    let Seen {
        depth,
        backlog,
        peak,
        drops,
        ..
    } = *s;
    let formula = if backlog > 0 && backlog < k.backlog {
        format!(
            "min(listen() {}, net.core.somaxconn {backlog} when the server called listen())",
            k.backlog
        )
    } else {
        format!(
            "its listen() {}, below net.core.somaxconn {}",
            k.backlog, k.somaxconn
        )
    };
    let mut n = vec![
        format!(
            "The server asked listen({}); the kernel gave backlog {backlog} = {formula}: somaxconn is read at listen() time.",
            k.backlog
        ),
        format!(
            "Queue {depth}/{backlog} (peak {peak}); dropped {drops:.0}/s. Clients: {} ok, {} timed out.",
            c.succeeded, c.timed_out
        ),
    ];
    if backlog > 0 && backlog < k.backlog.min(k.somaxconn) {
        n.push(format!(
            "somaxconn is now {} but this listener keeps backlog {backlog} until the server calls listen() again — press l.",
            k.somaxconn
        ));
    }
    if step >= 2 {
        n.push("somaxconn was raised and the server called listen() again: only then does the new limit apply to this listener.".into());
    }
    (
        n,
        "n: next step · m/M somaxconn (then l: listen again) · b/B backlog".into(),
    )
}

fn syn_flood(k: &Knobs, flooding: bool, s: &Seen, c: &ClientView) -> (Vec<String>, String) {
    let Seen { backlog, syn, .. } = *s;
    let flood = if flooding {
        format!("{:.0} spoofed SYNs/s", k.flood_rate)
    } else {
        "The flood is off (x starts it)".to_string()
    };
    let mut n = vec![format!(
        "{flood}; SYN-RECV (half-open) {syn}; the SYN queue holds backlog+1 = {}. tcp_syncookies = {}.",
        backlog + 1,
        k.syncookies
    )];
    n.push(match k.syncookies {
        0 => format!("Cookies off: once the SYN queue is full every SYN is dropped (TCPReqQFullDrop {:.0}/s) — legitimate clients too.", s.rate("TCPReqQFullDrop")),
        1 => format!("Cookies when full: SYNs beyond the queue get a cookie instead of a request ({:.0}/s); SYN-RECV undercounts the attack.", s.rate("SyncookiesSent")),
        _ => format!("Cookies always: no request is kept at all (SYN-RECV 0); every SYN gets a cookie ({:.0}/s).", s.rate("SyncookiesSent")),
    });
    let total = c.succeeded + c.timed_out + c.reset;
    n.push(format!(
        "Legitimate clients: {} of {} succeeded ({} timed out).",
        c.succeeded, total, c.timed_out
    ));
    (
        n,
        "c: cycle tcp_syncookies 0/1/2 · x: flood on/off · b/B backlog".into(),
    )
}

fn fd_exhaustion(s: &Seen) -> (Vec<String>, String) {
    let Seen {
        depth,
        backlog,
        drops,
        ..
    } = *s;
    let fds = s.listener.and_then(|l| tightest_owner(&l.owners));
    let (open, limit) = fds.map_or((None, None), |p| (p.fds_open, p.fd_limit));
    let n = vec![
        format!(
            "The server leaks one fd per connection: {} of {} fds open (RLIMIT_NOFILE).",
            open.map_or("?".into(), |v| v.to_string()),
            limit.map_or("?".into(), |v| v.to_string())
        ),
        format!(
            "At the limit accept() fails with EMFILE: connections stay queued ({depth}/{backlog}), then the kernel drops new ones ({drops:.0}/s) — while the CPU idles."
        ),
    ];
    (
        n,
        "f/F: lower/raise the fd limit (takes effect at once)".into(),
    )
}

fn abort_on_overflow(k: &Knobs, s: &Seen, c: &ClientView) -> (Vec<String>, String) {
    let mut n = vec![format!(
        "Each round: 2 clients connect (their handshake waits for data, as with nginx's `deferred`), {} more fill the accept queue, then the 2 send their request: their final ACK meets a full queue.",
        k.backlog + 1
    )];
    n.push(if k.abort_on_overflow == 1 {
        format!("tcp_abort_on_overflow = 1: the kernel answers with a RST — clients see 'connection reset' at once (EmbryonicRsts {:.1}/s).", s.rate("EmbryonicRsts"))
    } else {
        "tcp_abort_on_overflow = 0: the kernel drops the ACK silently — the client thinks it is connected, its data is ignored, it waits and times out.".into()
    });
    n.push(format!(
        "Clients so far: {} reset, {} timed out.",
        c.reset, c.timed_out
    ));
    (n, "o: toggle tcp_abort_on_overflow".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{snapshot, tcp_listener};
    use crate::model::{CollectorStats, ListenerTick, TICK_SCHEMA_VERSION};
    use std::collections::BTreeMap;

    /// A tick with the lab's listener at `depth`/`backlog`, its drops/s, and ListenOverflows/s.
    fn tick(depth: u32, backlog: u32, drops_per_s: f64, overflows_per_s: f64) -> Tick {
        let l = tcp_listener(SERVICE.port())
            .addr((*SERVICE.ip()).into())
            .queue(depth, backlog)
            .build();
        let lt = ListenerTick {
            key: ListenerKey::from(&l),
            endpoint: l.endpoint().into(),
            depth,
            backlog,
            depth_high: depth,
            depth_low: depth,
            drops_per_s: Some(drops_per_s),
            high_fill_s: 0.0,
            undrained_s: 0.0,
            overflowed: false,
            overflow_proven: false,
            drops_delta: None,
            gone: false,
            service: None,
        };
        Tick {
            schema_version: TICK_SCHEMA_VERSION,
            seq: 1,
            interval_s: Some(1.0),
            gap_before: false,
            snapshot: snapshot(vec![l], 1_000_000_000),
            listeners: vec![lt],
            gone_listeners: 0,
            counter_rates: BTreeMap::from([("ListenOverflows".into(), Some(overflows_per_s))]),
            dropping_listeners: vec![],
            arrivals: None,
            findings: vec![],
            collector: CollectorStats::default(),
        }
    }

    fn lines(scenario: Scenario, step: usize, k: &Knobs, flooding: bool, t: &Tick) -> String {
        narrate(scenario, step, k, flooding, Some(t), &ClientView::default())
            .0
            .join("\n")
    }

    #[test]
    fn somaxconn_arithmetic_uses_the_value_at_listen_time() {
        // After M: somaxconn is 256 now, the listener still has the 128 it got at listen().
        let k = Knobs {
            backlog: 511,
            somaxconn: 256,
            ..Scenario::SomaxconnTrap.defaults()
        };
        let text = lines(
            Scenario::SomaxconnTrap,
            1,
            &k,
            false,
            &tick(0, 128, 0.0, 0.0),
        );
        assert!(
            text.contains("backlog 128 = min(listen() 511, net.core.somaxconn 128 when the server called listen())"),
            "{text}"
        );
        assert!(!text.contains("somaxconn 256)"), "{text}");
        assert!(text.contains("somaxconn is now 256"), "{text}");
    }

    #[test]
    fn capacity_is_bounded_by_the_fd_limit_and_drops_are_never_called_none() {
        let k = Knobs {
            workers: 200,
            service_ms: 2000,
            rate: 50.0,
            fd_limit: Some(64),
            ..Scenario::SlowConsumer.defaults()
        };
        assert_eq!(k.capacity(), 32.0);
        let text = lines(
            Scenario::SlowConsumer,
            0,
            &k,
            false,
            &tick(0, 128, 0.0, 0.0),
        );
        assert!(
            text.contains("min(workers 200, fd limit 64) / service time 2000 ms = 32"),
            "{text}"
        );
        assert!(text.contains("Arrivals exceed capacity"), "{text}");
        // While the kernel drops, the narration says so whatever the arithmetic says.
        let k = Knobs { workers: 200, ..k };
        let text = lines(
            Scenario::SlowConsumer,
            0,
            &k,
            false,
            &tick(129, 128, 40.0, 40.0),
        );
        assert!(text.contains("The kernel is dropping now"), "{text}");
        assert!(!text.contains("no drops"), "{text}");
    }

    #[test]
    fn a_stopped_flood_is_not_narrated_as_running() {
        let k = Scenario::SynFlood.defaults();
        let on = lines(Scenario::SynFlood, 0, &k, true, &tick(0, 128, 0.0, 0.0));
        assert!(
            on.contains(&format!("{:.0} spoofed SYNs/s", k.flood_rate)),
            "{on}"
        );
        let off = lines(Scenario::SynFlood, 0, &k, false, &tick(0, 128, 0.0, 0.0));
        assert!(off.contains("The flood is off"), "{off}");
        assert!(!off.contains("spoofed SYNs/s"), "{off}");
    }
}
