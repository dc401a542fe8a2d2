//! The narration for the room: what is happening now, in the numbers the dashboard shows, and
//! what to try next. Pure: knobs, the latest tick and the clients' view in, text out.

use super::SERVICE;
use crate::model::lab::{ClientView, Knobs, Scenario};
use crate::model::labels::tightest_owner;
use crate::model::{ListenerKey, TcpListener, Tick};

/// What the dashboard shows of the lab's listener and namespace in the latest tick.
#[derive(Debug, Clone, Copy, Default)]
struct Seen<'a> {
    depth: u32,
    backlog: u32,
    peak: u32,
    syn: u64,
    drops: f64,
    tick: Option<&'a Tick>,
    listener: Option<&'a TcpListener>,
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
    tick: Option<&Tick>,
    c: &ClientView,
) -> (Vec<String>, String) {
    let s = Seen::of(tick);
    match scenario {
        Scenario::SlowConsumer => slow_consumer(step, k, &s),
        Scenario::SomaxconnTrap => somaxconn_trap(step, k, &s, c),
        Scenario::SynFlood => syn_flood(k, &s, c),
        Scenario::FdExhaustion => fd_exhaustion(&s),
        Scenario::AbortOnOverflow => abort_on_overflow(k, &s, c),
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
    let mut n = vec![format!(
        "Capacity = workers / service time = {} / {} ms = {cap:.0} connections/s; clients arrive at {:.0}/s.",
        k.workers, k.service_ms, k.rate
    )];
    if k.rate > cap {
        n.push(format!(
            "Arrivals exceed capacity: the accept queue grows by about {:.0}/s until it holds backlog+1 = {} (now {depth}, peak {peak}); then the kernel drops connection attempts (ListenOverflows {overflows:.0}/s) and clients wait for retransmits.",
            k.rate - cap,
            backlog + 1
        ));
    } else {
        n.push(format!(
            "Capacity is above the arrival rate: connections wait only briefly (queue {depth}/{backlog}, no drops). Response time, not CPU, sets the limit."
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
    let mut n = vec![
        format!(
            "The server asked listen({}); the kernel gave backlog {backlog} = min(listen(), net.core.somaxconn {}) — read at listen() time.",
            k.backlog, k.somaxconn
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

fn syn_flood(k: &Knobs, s: &Seen, c: &ClientView) -> (Vec<String>, String) {
    let Seen { backlog, syn, .. } = *s;
    let mut n = vec![format!(
        "{:.0} spoofed SYNs/s; SYN-RECV (half-open) {syn}; the SYN queue holds backlog+1 = {}. tcp_syncookies = {}.",
        k.flood_rate,
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
