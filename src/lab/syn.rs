//! Deterministic SYN-RECV requests (labs.md §3): spoofed SYNs from a raw socket whose SYN-ACKs
//! are routed into an unattached tun device, so each request lives its full retransmit schedule.
//!
//! Only for a private network namespace: [`setup_sink`] refuses to run in the initial one.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;

use anyhow::{bail, Context};
use etherparse::{PacketBuilder, TcpOptionElement};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The local address the demo listener binds to.
pub const TARGET_ADDR: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
/// First address of the spoofed source range 10.96.0.0/12, routed into the sink.
pub const SOURCE_BASE: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 0);
/// Number of addresses in the source range.
pub const SOURCE_COUNT: u32 = 1 << 20;

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .with_context(|| format!("running `ip {}` (is iproute2 installed?)", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The network namespace sockq started in, recorded by [`remember_original_netns`] before the
/// lab moves the whole process into a private one.
static ORIGINAL_NETNS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

fn netns_ino(path: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| m.ino()).ok()
}

/// Records the calling thread's network namespace as the one sockq started in.
pub fn remember_original_netns() {
    if let Some(ino) = netns_ino("/proc/thread-self/ns/net") {
        let _ = ORIGINAL_NETNS.set(ino);
    }
}

/// True unless the calling thread is provably in a network namespace other than the host's:
/// compared with pid 1's when readable, else with the one sockq started in (recorded before the
/// lab unshared), else with this process's main thread (a test thread that unshared differs).
pub fn in_initial_netns() -> bool {
    let Some(me) = netns_ino("/proc/thread-self/ns/net") else {
        return true;
    };
    let reference = netns_ino("/proc/1/ns/net")
        .or_else(|| ORIGINAL_NETNS.get().copied())
        .or_else(|| netns_ino("/proc/self/ns/net"));
    // Cannot tell: assume the worst.
    reference.is_none_or(|r| r == me)
}

/// Brings up `lo` and adds [`TARGET_ADDR`] to it in the calling thread's (private) namespace.
/// Refuses the initial namespace.
pub fn setup_lo() -> anyhow::Result<()> {
    if in_initial_netns() {
        bail!("refusing to configure the host's network namespace");
    }
    ip(&["link", "set", "lo", "up"])?;
    ip(&["addr", "add", &format!("{TARGET_ADDR}/32"), "dev", "lo"])?;
    Ok(())
}

/// [`setup_lo`], then routes 10.96.0.0/12 into an unattached tun device `sink0`, so SYN-ACKs to
/// spoofed sources are discarded and their requests live their full retransmit schedule.
pub fn setup_sink() -> anyhow::Result<()> {
    setup_lo()?;
    ip(&["tuntap", "add", "dev", "sink0", "mode", "tun"]).map_err(|e| {
        e.context("spoofed SYNs need a tun device: /dev/net/tun must be usable (as root, or with write access to it)")
    })?;
    ip(&["link", "set", "sink0", "up"])?;
    ip(&["route", "add", "10.96.0.0/12", "dev", "sink0"])?;
    Ok(())
}

/// The i-th spoofed source: distinct (address, port) pairs over 10.96.0.0/12.
pub fn source(i: u32) -> SocketAddrV4 {
    let addr = u32::from(SOURCE_BASE) + 1 + (i % (SOURCE_COUNT - 2));
    let port = 1024 + (i / (SOURCE_COUNT - 2)) as u16;
    SocketAddrV4::new(Ipv4Addr::from(addr), port)
}

/// A raw IPv4 socket that sends hand-built SYNs (IPPROTO_RAW implies IP_HDRINCL). Needs
/// CAP_NET_RAW in the namespace.
pub struct SynSender {
    socket: Socket,
    buf: Vec<u8>,
}

impl SynSender {
    /// Opens the raw socket.
    pub fn new() -> anyhow::Result<Self> {
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255)))
            .context("opening a raw socket (needs CAP_NET_RAW)")?;
        Ok(Self {
            socket,
            buf: Vec::with_capacity(64),
        })
    }

    /// Sends one SYN (with an MSS option, correct checksums) from `src` to `dst`.
    pub fn send(&mut self, src: SocketAddrV4, dst: SocketAddrV4, seq: u32) -> anyhow::Result<()> {
        let builder = PacketBuilder::ipv4(src.ip().octets(), dst.ip().octets(), 64)
            .tcp(src.port(), dst.port(), seq, 64240)
            .syn()
            .options(&[TcpOptionElement::MaximumSegmentSize(1460)])
            .map_err(|e| anyhow::anyhow!("building a SYN: {e}"))?;
        self.buf.clear();
        builder
            .write(&mut self.buf, &[])
            .map_err(|e| anyhow::anyhow!("building a SYN: {e}"))?;
        let to = SockAddr::from(SocketAddrV4::new(*dst.ip(), 0));
        self.socket
            .send_to(&self.buf, &to)
            .with_context(|| format!("sending a SYN to {dst}"))?;
        Ok(())
    }

    /// Sends `count` SYNs to `dst` from sources `first..first+count` (see [`source`]).
    pub fn flood(&mut self, dst: SocketAddrV4, first: u32, count: u32) -> anyhow::Result<()> {
        for i in first..first.saturating_add(count) {
            self.send(source(i), dst, i.wrapping_mul(2_654_435_761))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_distinct_and_in_range() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..100_000 {
            let s = source(i);
            assert!(seen.insert(s));
            let a = u32::from(*s.ip());
            assert!(a > u32::from(SOURCE_BASE) && a < u32::from(SOURCE_BASE) + SOURCE_COUNT);
        }
    }
}
