//! The scenarios' scripts (steps and how long each lasts headless) and what each runs: the
//! demo server's shape and the clients. Plain tables; the lab module carries them out.

use std::net::SocketAddr;
use std::time::Duration;

use super::held::Behaviour;
use super::server::{Mode, ServerConfig};
use super::SERVICE;
use crate::model::lab::{Knobs, Scenario};

/// A step of a scenario's script.
pub(super) struct Step {
    /// Its title in the narration panel.
    pub title: &'static str,
    /// How long it lasts in headless mode.
    pub secs: u64,
}

/// The script of scenario `s`.
pub(super) fn steps(s: Scenario) -> &'static [Step] {
    match s {
        Scenario::SlowConsumer => &[
            Step {
                title: "Healthy: capacity above arrivals",
                secs: 4,
            },
            Step {
                title: "The handler slows down",
                secs: 6,
            },
            Step {
                title: "More workers restore capacity",
                secs: 5,
            },
        ],
        Scenario::SomaxconnTrap => &[
            Step {
                title: "listen(511) in a namespace with somaxconn 128",
                secs: 3,
            },
            Step {
                title: "A burst of 200 connections while the server is busy",
                secs: 4,
            },
            Step {
                title: "Raise somaxconn and listen() again",
                secs: 3,
            },
            Step {
                title: "The same burst again",
                secs: 4,
            },
        ],
        Scenario::SynFlood => &[Step {
            title: "Spoofed SYNs against the service",
            secs: 8,
        }],
        Scenario::FdExhaustion => &[Step {
            title: "A server that leaks one fd per connection",
            secs: 10,
        }],
        Scenario::AbortOnOverflow => &[Step {
            title: "The final ACK meets a full accept queue",
            secs: 8,
        }],
        Scenario::BlockedLoop => &[
            Step {
                title: "A healthy event loop: each handler takes 5 ms",
                secs: 5,
            },
            Step {
                title: "A handler blocks the loop for 2 s",
                secs: 14,
            },
            Step {
                title: "The blocking call moves off the loop",
                secs: 6,
            },
        ],
        Scenario::SlowResponse => &[
            Step {
                title: "Each connection is served for the response time",
                secs: 6,
            },
            Step {
                title: "The response time doubles",
                secs: 6,
            },
            Step {
                title: "The response time doubles again",
                secs: 6,
            },
            Step {
                title: "And again: the fds are running out",
                secs: 8,
            },
            Step {
                title: "More connections in service than file descriptors",
                secs: 10,
            },
        ],
        Scenario::CloseWaitLeak => &[
            Step {
                title: "A server that never closes what its clients closed",
                secs: 14,
            },
            Step {
                title: "Traffic stops: the leak stays",
                secs: 5,
            },
            Step {
                title: "The fix: the server closes its connections",
                secs: 6,
            },
        ],
        Scenario::SlowReaders => &[
            Step {
                title: "Clients that never read their answers",
                secs: 12,
            },
            Step {
                title: "No new clients: the memory stays held",
                secs: 4,
            },
            Step {
                title: "The clients read",
                secs: 6,
            },
        ],
    }
}

/// The demo server of `scenario` with `knobs`.
pub(super) fn server_config(scenario: Scenario, knobs: &Knobs) -> ServerConfig {
    let mode = match scenario {
        Scenario::BlockedLoop => Mode::EventLoop,
        Scenario::SlowResponse | Scenario::SlowReaders => Mode::ThreadPerConnection,
        _ => Mode::Pool,
    };
    ServerConfig {
        listen: SocketAddr::V4(SERVICE),
        backlog: i32::try_from(knobs.backlog).unwrap_or(i32::MAX),
        workers: knobs.workers as usize,
        service_ms: knobs.service_ms,
        fd_limit: knobs.fd_limit,
        leak: matches!(scenario, Scenario::FdExhaustion | Scenario::CloseWaitLeak),
        defer_accept: (scenario == Scenario::AbortOnOverflow).then_some(10),
        paused: matches!(
            scenario,
            Scenario::AbortOnOverflow | Scenario::SomaxconnTrap
        ),
        mode,
        response_bytes: usize::try_from(knobs.response_kib.saturating_mul(1024))
            .unwrap_or(usize::MAX)
            .max(3),
        // Answers larger than this block the server's thread in write(): it holds the
        // connection, its descriptor and a Send-Q of about twice this (the kernel doubles it).
        sndbuf: (scenario == Scenario::SlowReaders).then_some(1 << 20),
    }
}

/// How the clients of `scenario` hold their connections: `None` for the pool of clients that
/// give up after a few seconds; else the behaviour, how long they wait for an answer and how
/// many connections they hold at most.
pub(super) fn held_clients(scenario: Scenario) -> Option<(Behaviour, Duration, usize)> {
    match scenario {
        // Responses up to many seconds, more connections than the server has fds.
        Scenario::SlowResponse => Some((Behaviour::Answer, Duration::from_secs(120), 4096)),
        Scenario::CloseWaitLeak => Some((Behaviour::Answer, Duration::from_secs(10), 4096)),
        // Few: each holds up to an answer's worth of socket memory.
        Scenario::SlowReaders => Some((Behaviour::NoRead, Duration::from_secs(30), 64)),
        _ => None,
    }
}
