//! The workshop lab's plain data: scenarios, knobs and the status the dashboard and the
//! headless JSON lines show. The lab itself (namespace, server, clients) lives in the lab module, a layer above.

use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The workshop scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Workers × service time is the capacity: arrivals beyond it fill the accept queue.
    SlowConsumer,
    /// listen(511) capped to 128 by net.core.somaxconn; raise it and listen() again.
    SomaxconnTrap,
    /// Spoofed SYNs fill the SYN queue; syncookies 0 / 1 / 2 decide what happens.
    SynFlood,
    /// An fd leak: accept() fails with EMFILE and the queue fills while the CPU idles.
    FdExhaustion,
    /// The final ACK meets a full accept queue: silent drop (0) or reset (1).
    AbortOnOverflow,
    /// One thread, a handler that blocks: accepted-but-unread grows, then the accept queue.
    BlockedLoop,
    /// Response time raised step by step: connections and fds in service = rate × time, until
    /// EMFILE.
    SlowResponse,
    /// The server never closes connections its clients closed: CLOSE-WAIT grows.
    CloseWaitLeak,
    /// Clients that do not read: responses wait in Send-Q and hold socket memory.
    SlowReaders,
}

impl Scenario {
    /// Every scenario, in workshop order.
    pub const ALL: [Scenario; 9] = [
        Scenario::SlowConsumer,
        Scenario::SomaxconnTrap,
        Scenario::SynFlood,
        Scenario::FdExhaustion,
        Scenario::AbortOnOverflow,
        Scenario::BlockedLoop,
        Scenario::SlowResponse,
        Scenario::CloseWaitLeak,
        Scenario::SlowReaders,
    ];

    /// The scenarios about what happens after accept() (issue 14): they show the service
    /// numbers of the listener.
    pub fn after_accept(self) -> bool {
        matches!(
            self,
            Scenario::BlockedLoop
                | Scenario::SlowResponse
                | Scenario::CloseWaitLeak
                | Scenario::SlowReaders
        )
    }

    /// One line on what the scenario shows (`sockq lab --help`).
    pub fn summary(self) -> &'static str {
        match self {
            Scenario::SlowConsumer => {
                "Workers × service time is the capacity: arrivals beyond it fill the accept queue"
            }
            Scenario::SomaxconnTrap => {
                "listen(511) capped to 128 by net.core.somaxconn; raise it and listen() again"
            }
            Scenario::SynFlood => {
                "Spoofed SYNs fill the SYN queue; syncookies 0 / 1 / 2 decide what happens"
            }
            Scenario::FdExhaustion => {
                "An fd leak: accept() fails with EMFILE and the queue fills while the CPU idles"
            }
            Scenario::AbortOnOverflow => {
                "The final ACK meets a full accept queue: silent drop (0) or reset (1)"
            }
            Scenario::BlockedLoop => {
                "One thread, a handler that blocks: accepted-but-unread requests grow, then the accept queue"
            }
            Scenario::SlowResponse => {
                "Response time raised step by step: connections and fds in service = rate × time, until EMFILE"
            }
            Scenario::CloseWaitLeak => {
                "The server never closes connections its clients closed: CLOSE-WAIT grows"
            }
            Scenario::SlowReaders => {
                "Clients that do not read: responses wait in Send-Q and hold socket memory"
            }
        }
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::SlowConsumer => "slow-consumer",
            Scenario::SomaxconnTrap => "somaxconn-trap",
            Scenario::SynFlood => "syn-flood",
            Scenario::FdExhaustion => "fd-exhaustion",
            Scenario::AbortOnOverflow => "abort-on-overflow",
            Scenario::BlockedLoop => "blocked-loop",
            Scenario::SlowResponse => "slow-response",
            Scenario::CloseWaitLeak => "close-wait-leak",
            Scenario::SlowReaders => "slow-readers",
        }
    }

    /// The starting knobs.
    pub fn defaults(self) -> Knobs {
        let base = Knobs {
            rate: 20.0,
            workers: 4,
            service_ms: 50,
            backlog: 16,
            somaxconn: 4096,
            syncookies: 1,
            fd_limit: None,
            abort_on_overflow: 0,
            flood_rate: 0.0,
            response_kib: 0,
        };
        match self {
            Scenario::SlowConsumer => base,
            Scenario::SomaxconnTrap => Knobs {
                rate: 0.0,
                backlog: 511,
                somaxconn: 128,
                ..base
            },
            Scenario::SynFlood => Knobs {
                rate: 5.0,
                backlog: 64,
                flood_rate: 2000.0,
                ..base
            },
            Scenario::FdExhaustion => Knobs {
                rate: 20.0,
                service_ms: 10,
                fd_limit: Some(64),
                ..base
            },
            Scenario::AbortOnOverflow => Knobs {
                rate: 0.0,
                backlog: 4,
                abort_on_overflow: 1,
                ..base
            },
            // A healthy loop first (5 ms handlers); the script makes the handler block 2 s.
            Scenario::BlockedLoop => Knobs {
                workers: 1,
                service_ms: 5,
                backlog: 32,
                ..base
            },
            // The notes' table: 500 ms responses against 1,024 fds, at 200 connections/s.
            Scenario::SlowResponse => Knobs {
                rate: 200.0,
                service_ms: 500,
                backlog: 128,
                fd_limit: Some(1024),
                ..base
            },
            Scenario::CloseWaitLeak => Knobs {
                rate: 10.0,
                service_ms: 10,
                fd_limit: Some(1024),
                ..base
            },
            // Small totals: socket memory (tcp_mem) is the host's, even in the lab.
            Scenario::SlowReaders => Knobs {
                rate: 2.0,
                service_ms: 1,
                response_kib: 4096,
                ..base
            },
        }
    }
}

/// What the instructor can change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Knobs {
    /// Client arrivals per second.
    pub rate: f64,
    /// Server worker threads calling accept().
    pub workers: u32,
    /// Server time per connection, ms.
    pub service_ms: u64,
    /// listen() backlog the server asks for.
    pub backlog: u32,
    /// net.core.somaxconn of the lab namespace.
    pub somaxconn: u32,
    /// net.ipv4.tcp_syncookies of the lab namespace.
    pub syncookies: u8,
    /// The server's RLIMIT_NOFILE (None: inherited).
    pub fd_limit: Option<u64>,
    /// net.ipv4.tcp_abort_on_overflow of the lab namespace.
    pub abort_on_overflow: u8,
    /// Spoofed SYNs per second.
    pub flood_rate: f64,
    /// Size of each answer in KiB (0: a 3-byte `OK`; slow-readers).
    #[serde(default)]
    pub response_kib: u64,
}

impl Knobs {
    /// Server capacity in connections per second: the connections it can serve at once —
    /// its workers, but no more than its fd limit allows — over the service time.
    pub fn capacity(&self) -> f64 {
        let concurrent = self
            .fd_limit
            .map_or(u64::from(self.workers), |l| u64::from(self.workers).min(l));
        concurrent as f64 * 1000.0 / (self.service_ms.max(1) as f64)
    }

    /// Capacity of the demo server of `scenario`, connections per second: one connection at a
    /// time for the event loop; as many at once as the fd limit allows for the thread-per-
    /// connection server (the notes' "fd limit / response time"); workers otherwise.
    pub fn capacity_of(&self, scenario: Scenario) -> f64 {
        let per_conn_s = self.service_ms.max(1) as f64 / 1000.0;
        match scenario {
            Scenario::BlockedLoop => 1.0 / per_conn_s,
            Scenario::SlowResponse | Scenario::SlowReaders => {
                self.fd_limit.unwrap_or(1024) as f64 / per_conn_s
            }
            _ => self.capacity(),
        }
    }
}

/// A change the instructor asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Knob {
    /// Arrival rate ×/÷ 1.5.
    Rate(bool),
    /// Workers +/-.
    Workers(bool),
    /// Service time ×/÷ 2.
    Service(bool),
    /// Backlog ×/÷ 2 and listen() again.
    Backlog(bool),
    /// somaxconn ×/÷ 2.
    Somaxconn(bool),
    /// syncookies 0 → 1 → 2 → 0.
    CycleSyncookies,
    /// fd limit ×/÷ 2.
    FdLimit(bool),
    /// abort_on_overflow 0 ↔ 1.
    ToggleAbort,
    /// Flood on/off.
    ToggleFlood,
    /// Listen again with the current backlog (after changing somaxconn).
    Relisten,
    /// The next step of the scenario's script.
    NextStep,
}

/// Where the lab stands, for the narration panel and the JSON lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LabStatus {
    /// The scenario.
    pub scenario: Scenario,
    /// Current step of its script (0-based) and how many there are.
    pub step: usize,
    /// Number of steps.
    pub steps: usize,
    /// Title of the current step.
    pub title: String,
    /// What is happening, for the room.
    pub narration: Vec<String>,
    /// What to try next (keys).
    pub try_next: String,
    /// Current knobs.
    pub knobs: Knobs,
    /// Server capacity (workers / service time), connections per second.
    pub capacity_per_s: f64,
    /// What the clients felt.
    pub clients: ClientView,
    /// The demo server's pid.
    pub server_pid: u32,
    /// Outcomes of the last abort-on-overflow round (deferred clients), if any.
    pub last_round: Vec<String>,
    /// The last change that could not be made, and why (a knob, or a server command).
    pub problem: Option<String>,
    /// Spoofed SYNs are being sent now (syn-flood; `x` toggles).
    #[serde(default)]
    pub flooding: bool,
    /// The command that runs `ss` inside the lab's namespace, for showing it beside sockq.
    #[serde(default)]
    pub ss_command: String,
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.name() == s.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Scenario::ALL.iter().map(|x| x.name()).collect();
                format!(
                    "{s:?} is not a scenario; choose one of {}",
                    names.join(", ")
                )
            })
    }
}

/// A copy of [`ClientStats`] for display and JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClientView {
    /// Connection attempts started.
    pub attempted: u64,
    /// Connected and answered.
    pub succeeded: u64,
    /// connect() or the answer timed out.
    pub timed_out: u64,
    /// Reset by the server side (ECONNRESET).
    pub reset: u64,
    /// Refused (ECONNREFUSED).
    pub refused: u64,
    /// Other errors.
    pub failed: u64,
    /// Attempts under way.
    pub in_flight: u64,
    /// Arrivals not attempted because all client threads were busy.
    pub skipped: u64,
    /// Median connect latency of recent attempts, ms.
    pub connect_ms_p50: Option<f64>,
    /// 99th percentile connect latency of recent attempts, ms (1 s or more: a SYN was dropped
    /// and retransmitted).
    pub connect_ms_p99: Option<f64>,
}
