//! Captures real sock_diag reply datagrams as parser fixtures (tests/fixtures/netlink).
//!
//! Run as root: `cargo run --example capture_netlink`.
//!
//! On a thread that made its own network namespace (unshare(CLONE_NEWNET)), it builds a
//! deterministic scene of real sockets, dumps it with `DiagSocket::dump_raw` and writes every
//! reply datagram unchanged to `tests/fixtures/netlink/<dump>-<i>.bin`, plus MANIFEST.md with the
//! scene, the kernel, and per file the facts that tests/netlink_fixtures.rs asserts. Two
//! deliberately invalid requests are sent through a plain netlink socket to capture the kernel's
//! error replies. The scene is checked before anything is written: a capture that raced (a
//! connection not yet queued, a SYN-RECV request missing) is refused, not written.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use netlink_packet_sock_diag::{
    constants::{AF_INET, IPPROTO_TCP},
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
    SockDiagMessage, SOCK_DIAG_BY_FAMILY,
};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket as NlSocket, SocketAddr as NlAddr};
use nix::sched::{unshare, CloneFlags};
use socket2::{Domain, SockAddr, Socket, Type};
use sockq::collect::diag::{self, SynRecvTally};
use sockq::collect::netlink::{parse_datagram, DiagSocket, NetlinkError};
use sockq::lab::syn;
use sockq::model::{Family, TcpListener, UnixListener};

/// The 40 plain IPv4 listeners: 127.0.0.1:(PLAIN_PORT0 + k), backlog 5 + 3k, k % 3 connections
/// left unaccepted.
const PLAIN_PORT0: u16 = 20001;
const PLAIN_COUNT: u16 = 40;
/// 127.0.0.1:FULL_PORT, listen(2), 3 connections unaccepted (queue full: 3 > 2), then 2 SYNs
/// from non-blocking clients that the kernel drops (sk_drops = 2). The clients are closed right
/// after their SYN, so no retransmitted SYN can bump the counter later.
const FULL_PORT: u16 = 20100;
/// [::1]:20201 backlog 77 with 2 unaccepted connections.
const V6_LOOPBACK_PORT: u16 = 20201;
/// [::]:20202 dual stack (v6only off), backlog 88, 1 unaccepted connection from 127.0.0.1.
const V6_DUAL_PORT: u16 = 20202;
/// [::]:20203 v6only, backlog 99, idle.
const V6_ONLY_PORT: u16 = 20203;
/// 10.88.0.1:80 backlog 1024 receiving SYN_COUNT spoofed SYNs (src/lab/syn.rs).
const SYN_BACKLOG: i32 = 1024;
const SYN_COUNT: u32 = 300;
/// UNIX listeners: (name, backlog, pending connections). A leading '@' means abstract.
const UNIX_DIR: &str = "/tmp/sockq-fixture";
const UNIX_LISTENERS: [(&str, i32, usize); 3] = [
    ("/tmp/sockq-fixture/idle.sock", 5, 0),
    ("/tmp/sockq-fixture/busy.sock", 10, 2),
    ("@sockq-fixture-abstract", 3, 0),
];
/// Sequence numbers of the two hand-made invalid requests.
const ERR_SEQ_FAMILY: u32 = 0x5eed_0001;
const ERR_SEQ_PROTO: u32 = 0x5eed_0002;
/// An address family no kernel has (AF_MAX is 46 in Linux 6.x).
const BAD_FAMILY: u8 = 99;
/// An IP protocol with no inet_diag handler.
const BAD_PROTOCOL: u8 = 255;

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/netlink");
    let handle = std::thread::spawn(move || capture(&out));
    handle
        .join()
        .map_err(|_| anyhow!("the capture thread panicked"))?
}

/// One captured reply: the datagrams of one request, under one file-name stem.
struct Capture {
    name: &'static str,
    request: String,
    seq: u32,
    datagrams: Vec<Vec<u8>>,
}

fn capture(out: &Path) -> anyhow::Result<()> {
    unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET): run this example as root")?;
    run("ip", &["link", "set", "lo", "up"])?;
    // lo up (again), 10.88.0.1 on lo, and 10.96.0.0/12 routed into the unattached tun sink0.
    syn::setup_sink()?;
    let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn")?
        .trim()
        .to_string();

    // The scene. Everything below stays alive until the capture is written.
    let mut keep: Vec<Socket> = Vec::new();
    let mut clients: Vec<TcpStream> = Vec::new();
    for k in 0..PLAIN_COUNT {
        let addr: SocketAddr = format!("127.0.0.1:{}", PLAIN_PORT0 + k).parse()?;
        keep.push(tcp_listen(addr, 5 + 3 * i32::from(k), None)?);
        clients.extend(connect_n(addr, usize::from(k % 3))?);
    }
    let full: SocketAddr = format!("127.0.0.1:{FULL_PORT}").parse()?;
    keep.push(tcp_listen(full, 2, None)?);
    clients.extend(connect_n(full, 3)?);
    // Let the final ACKs land in the accept queue before the SYNs that must be dropped.
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..2 {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        s.set_nonblocking(true)?;
        match s.connect(&full.into()) {
            Ok(()) => bail!("a SYN-only client to a full queue connected"),
            Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => {}
            Err(e) => return Err(e.into()),
        }
        // Closing a SYN_SENT socket sends nothing: no retransmitted SYN will follow.
        drop(s);
    }
    let v6_lo: SocketAddr = format!("[::1]:{V6_LOOPBACK_PORT}").parse()?;
    keep.push(tcp_listen(v6_lo, 77, Some(true))?);
    clients.extend(connect_n(v6_lo, 2)?);
    keep.push(tcp_listen(
        format!("[::]:{V6_DUAL_PORT}").parse()?,
        88,
        Some(false),
    )?);
    clients.extend(connect_n(format!("127.0.0.1:{V6_DUAL_PORT}").parse()?, 1)?);
    keep.push(tcp_listen(
        format!("[::]:{V6_ONLY_PORT}").parse()?,
        99,
        Some(true),
    )?);
    keep.push(tcp_listen(
        SocketAddr::V4(SocketAddrV4::new(syn::TARGET_ADDR, 80)),
        SYN_BACKLOG,
        None,
    )?);
    let mut sender = syn::SynSender::new()?;
    sender.flood(SocketAddrV4::new(syn::TARGET_ADDR, 80), 0, SYN_COUNT)?;

    let _ = std::fs::remove_dir_all(UNIX_DIR);
    std::fs::create_dir_all(UNIX_DIR)?;
    let mut unix_clients: Vec<Socket> = Vec::new();
    for (name, backlog, pending) in UNIX_LISTENERS {
        let addr = unix_addr(name)?;
        let l = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        l.bind(&addr).with_context(|| format!("binding {name}"))?;
        l.listen(backlog)?;
        keep.push(l);
        for _ in 0..pending {
            let c = Socket::new(Domain::UNIX, Type::STREAM, None)?;
            c.connect(&addr)?;
            unix_clients.push(c);
        }
    }

    wait_for_syn_recv(SYN_COUNT)?;
    std::thread::sleep(Duration::from_millis(200));

    // The capture: one socket, so the sequence numbers are 1, 2, 3, ... in this order.
    let mut nl = DiagSocket::new()?;
    let mut captures = Vec::new();
    let dumps: [(&'static str, &str, SockDiagMessage); 5] = [
        (
            "tcp-listen-v4",
            "inet_diag AF_INET TCP, states LISTEN, ext SKMEMINFO (diag::listen_request)",
            diag::listen_request(Family::Ipv4),
        ),
        (
            "tcp-listen-v6",
            "inet_diag AF_INET6 TCP, states LISTEN, ext SKMEMINFO (diag::listen_request)",
            diag::listen_request(Family::Ipv6),
        ),
        (
            "tcp-syn-recv-v4",
            "inet_diag AF_INET TCP, states SYN_RECV, no ext (diag::syn_recv_request)",
            diag::syn_recv_request(Family::Ipv4),
        ),
        (
            "tcp-syn-recv-v6",
            "inet_diag AF_INET6 TCP, states SYN_RECV, no ext (diag::syn_recv_request)",
            diag::syn_recv_request(Family::Ipv6),
        ),
        (
            "unix-listen",
            "unix_diag states LISTEN, show NAME|RQLEN (diag::unix_listen_request)",
            diag::unix_listen_request(),
        ),
    ];
    for (seq, (name, request, msg)) in (1u32..).zip(dumps) {
        let datagrams = nl
            .dump_raw(msg)
            .with_context(|| format!("dumping {name}"))?;
        captures.push(Capture {
            name,
            request: request.to_string(),
            seq,
            datagrams,
        });
    }
    captures.push(Capture {
        name: "error-family-99",
        request: format!(
            "SOCK_DIAG_BY_FAMILY dump, inet_diag_req_v2 with sdiag_family={BAD_FAMILY} (no such \
             family), protocol TCP, states LISTEN; sent through a plain netlink socket"
        ),
        seq: ERR_SEQ_FAMILY,
        datagrams: raw_request(BAD_FAMILY, IPPROTO_TCP, ERR_SEQ_FAMILY)?,
    });
    captures.push(Capture {
        name: "error-inet-proto-255",
        request: format!(
            "SOCK_DIAG_BY_FAMILY dump, inet_diag_req_v2 with sdiag_family=AF_INET, \
             sdiag_protocol={BAD_PROTOCOL} (no inet_diag handler), states LISTEN; sent through a \
             plain netlink socket"
        ),
        seq: ERR_SEQ_PROTO,
        datagrams: raw_request(AF_INET, BAD_PROTOCOL, ERR_SEQ_PROTO)?,
    });

    let manifest = check_and_describe(&captures, &somaxconn)?;
    write_fixtures(out, &captures, &manifest)?;
    drop((keep, clients, unix_clients));
    let _ = std::fs::remove_dir_all(UNIX_DIR);
    Ok(())
}

fn run(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {cmd}"))?;
    ensure!(
        out.status.success(),
        "`{cmd} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn tcp_listen(addr: SocketAddr, backlog: i32, v6only: Option<bool>) -> anyhow::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    if let Some(v) = v6only {
        s.set_only_v6(v)?;
    }
    s.bind(&addr.into())
        .with_context(|| format!("binding {addr}"))?;
    s.listen(backlog)?;
    Ok(s)
}

fn connect_n(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<TcpStream>> {
    (0..n)
        .map(|_| {
            TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                .with_context(|| format!("connecting to {addr}"))
        })
        .collect()
}

fn unix_addr(name: &str) -> anyhow::Result<SockAddr> {
    let path = match name.strip_prefix('@') {
        Some(abs) => format!("\0{abs}"),
        None => name.to_string(),
    };
    Ok(SockAddr::unix(path)?)
}

/// Polls (on a socket of its own, so the capture's sequence numbers stay 1, 2, ...) until the
/// kernel holds `want` SYN-RECV requests.
fn wait_for_syn_recv(want: u32) -> anyhow::Result<()> {
    let mut nl = DiagSocket::new()?;
    let start = Instant::now();
    loop {
        let mut n = 0u32;
        nl.dump(diag::syn_recv_request(Family::Ipv4), |_| {
            n += 1;
            Ok(())
        })?;
        if n == want {
            return Ok(());
        }
        ensure!(
            start.elapsed() < Duration::from_secs(5),
            "only {n} of {want} SYN-RECV requests after 5 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends one SOCK_DIAG_BY_FAMILY dump request with an arbitrary family/protocol through a plain
/// netlink socket (DiagSocket would turn the error reply into an Err and drop its bytes) and
/// returns the reply datagrams up to the first NLMSG_ERROR or NLMSG_DONE.
fn raw_request(family: u8, protocol: u8, seq: u32) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut socket = NlSocket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&NlAddr::new(0, 0))?;
    nix::sys::socket::setsockopt(
        &socket.as_fd(),
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(2, 0),
    )?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let request = SockDiagMessage::InetRequest(InetRequest {
        family,
        protocol,
        extensions: ExtensionFlags::empty(),
        states: StateFlags::LISTEN,
        socket_id: SocketId::new_v4(),
    });
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(request));
    packet.finalize();
    let mut bytes = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut bytes);
    socket.send(&bytes, 0)?;

    let mut datagrams = Vec::new();
    loop {
        let mut buf = Vec::with_capacity(64 * 1024);
        let len = socket
            .recv(&mut buf, nix::sys::socket::MsgFlags::MSG_TRUNC.bits())
            .with_context(|| format!("no reply to the request with family {family}"))?;
        ensure!(len <= buf.len(), "reply of {len} bytes truncated");
        let last = walk(&buf)
            .iter()
            .any(|h| h.seq == seq && matches!(h.ty, NLMSG_ERROR | NLMSG_DONE));
        datagrams.push(buf);
        if last {
            return Ok(datagrams);
        }
        ensure!(datagrams.len() < 16, "no end to the reply");
    }
}

/// One netlink header as found in a datagram.
struct Header {
    len: u32,
    ty: u16,
    flags: u16,
    seq: u32,
    pid: u32,
    /// For NLMSG_ERROR and NLMSG_DONE: the int that follows the header.
    code: Option<i32>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Walks the netlink headers of a datagram (stops at the first one that does not fit).
fn walk(d: &[u8]) -> Vec<Header> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while let (Some(len), Some(ty), Some(flags), Some(seq), Some(pid)) = (
        u32_at(d, off),
        u16_at(d, off + 4),
        u16_at(d, off + 6),
        u32_at(d, off + 8),
        u32_at(d, off + 12),
    ) {
        let l = len as usize;
        if l < 16 || off + l > d.len() {
            break;
        }
        let code = matches!(ty, NLMSG_ERROR | NLMSG_DONE)
            .then(|| u32_at(d, off + 16).map(|c| c as i32))
            .flatten();
        out.push(Header {
            len,
            ty,
            flags,
            seq,
            pid,
            code,
        });
        off += (l + 3) & !3;
    }
    out
}

/// The attribute types of every SOCK_DIAG_BY_FAMILY message (after a fixed header of `fixed`
/// bytes: 72 for inet_diag_msg, 16 for unix_diag_msg).
fn attributes(d: &[u8], fixed: usize) -> Vec<Vec<u16>> {
    let mut out = Vec::new();
    let mut off = 0usize;
    for h in walk(d) {
        if h.ty == SOCK_DIAG_BY_FAMILY {
            let end = off + h.len as usize;
            let mut p = off + 16 + fixed;
            let mut types = Vec::new();
            while let (Some(len), Some(ty)) = (u16_at(d, p), u16_at(d, p + 2)) {
                if len < 4 || p + usize::from(len) > end {
                    break;
                }
                types.push(ty);
                p += (usize::from(len) + 3) & !3;
            }
            out.push(types);
        }
        off += (h.len as usize + 3) & !3;
    }
    out
}

fn attr_name(unix: bool, ty: u16) -> String {
    let inet = [
        "NONE",
        "MEMINFO",
        "INFO",
        "VEGASINFO",
        "CONG",
        "TOS",
        "TCLASS",
        "SKMEMINFO",
        "SHUTDOWN",
        "DCTCPINFO",
        "PROTOCOL",
        "SKV6ONLY",
        "LOCALS",
        "PEERS",
        "PAD",
        "MARK",
        "BBRINFO",
        "CLASS_ID",
        "MD5SIG",
        "ULP_INFO",
        "SK_BPF_STORAGES",
        "CGROUP_ID",
        "SOCKOPT",
    ];
    let unix_names = [
        "NAME", "VFS", "PEER", "ICONS", "RQLEN", "MEMINFO", "SHUTDOWN", "UID",
    ];
    let (prefix, names): (&str, &[&str]) = if unix {
        ("UNIX_DIAG_", &unix_names)
    } else {
        ("INET_DIAG_", &inet)
    };
    match names.get(usize::from(ty)) {
        Some(n) => format!("{prefix}{n}"),
        None => format!("{prefix}{ty}"),
    }
}

fn type_name(ty: u16) -> String {
    match ty {
        NLMSG_ERROR => "NLMSG_ERROR".into(),
        NLMSG_DONE => "NLMSG_DONE".into(),
        SOCK_DIAG_BY_FAMILY => "SOCK_DIAG_BY_FAMILY".into(),
        other => format!("type {other}"),
    }
}

fn errno_name(errno: i32) -> String {
    let name = nix::errno::Errno::from_raw(errno);
    format!("{name:?} ({errno}, \"{}\")", name.desc())
}

fn tcp_line(l: &TcpListener) -> String {
    let addr = match l.address {
        IpAddr::V4(a) => format!("{a}:{}", l.port),
        IpAddr::V6(a) => format!("[{a}]:{}", l.port),
    };
    let drops = l.drops.map_or("-".to_string(), |d| d.to_string());
    let v6only = l.v6only.map_or("-".to_string(), |v| v.to_string());
    format!(
        "| {addr} | {} | {} | {drops} | {v6only} |",
        l.accept_queue, l.backlog
    )
}

fn unix_line(l: &UnixListener) -> String {
    format!("| `{}` | {} | {} |", l.name, l.accept_queue, l.backlog)
}

/// The facts of the scene the tests rely on: checked here, so a capture that raced is refused.
fn expected_v4() -> Vec<(String, u32, u32, u64)> {
    let mut v: Vec<(String, u32, u32, u64)> = (0..PLAIN_COUNT)
        .map(|k| {
            (
                format!("127.0.0.1:{}", PLAIN_PORT0 + k),
                u32::from(k % 3),
                5 + 3 * u32::from(k),
                0,
            )
        })
        .collect();
    v.push((format!("127.0.0.1:{FULL_PORT}"), 3, 2, 2));
    v.push((format!("{}:80", syn::TARGET_ADDR), 0, SYN_BACKLOG as u32, 0));
    v.sort();
    v
}

/// Decodes every capture with sockq's own parsers, checks the scene, and writes MANIFEST.md.
fn check_and_describe(captures: &[Capture], somaxconn: &str) -> anyhow::Result<String> {
    let kernel = run("uname", &["-r"])?;
    let machine = run("uname", &["-m"])?;
    let mut m = String::new();
    writeln!(
        m,
        "# Captured sock_diag (NETLINK_SOCK_DIAG) reply datagrams"
    )?;
    writeln!(m)?;
    writeln!(
        m,
        "Written by `cargo run --example capture_netlink` (as root) on Linux `{kernel}` \
         ({machine}, little-endian: the files are in host byte order). Every `.bin` file is one \
         datagram exactly as recv(2) returned it from the kernel; `<dump>-<i>.bin` is the i-th \
         datagram of the reply to one request. tests/netlink_fixtures.rs decodes them with \
         `sockq::collect::netlink::parse_datagram` and `sockq::collect::diag` and asserts the \
         facts below. Regenerate with the same command (the facts must stay the same; the \
         split into datagrams, inodes, cookies and the netlink port may change)."
    )?;
    writeln!(m)?;
    writeln!(
        m,
        "Kernel order is the order of the kernel's hash tables; the hashes are salted per \
         network namespace, so the order (and which listener lands in which datagram) differs \
         from one capture to the next: the tests do not depend on it. Captured as root: the \
         kernel adds INET_DIAG_MARK, which only a CAP_NET_ADMIN reader gets."
    )?;
    writeln!(m)?;
    writeln!(m, "## Scene")?;
    writeln!(m)?;
    writeln!(
        m,
        "A private network namespace (unshare(CLONE_NEWNET) on a thread), `lo` up, \
         net.core.somaxconn = {somaxconn} (the new namespace's default), and `syn::setup_sink` \
         (10.88.0.1/32 on lo, 10.96.0.0/12 routed into an unattached tun `sink0`)."
    )?;
    writeln!(m)?;
    writeln!(
        m,
        "- {PLAIN_COUNT} TCP listeners on 127.0.0.1:{PLAIN_PORT0}..={}: port {PLAIN_PORT0}+k \
         has backlog 5+3k and k%3 connected clients never accepted (k = 0..{}).",
        PLAIN_PORT0 + PLAIN_COUNT - 1,
        PLAIN_COUNT - 1
    )?;
    writeln!(
        m,
        "- 127.0.0.1:{FULL_PORT}, listen(2): 3 connected clients never accepted (the queue holds \
         backlog+1 = 3), then 2 non-blocking clients whose SYN the kernel drops (queue full), \
         closed right after their SYN so none is retransmitted: drops = 2."
    )?;
    writeln!(
        m,
        "- [::1]:{V6_LOOPBACK_PORT} (v6only) backlog 77, 2 clients never accepted; \
         [::]:{V6_DUAL_PORT} dual stack (IPV6_V6ONLY off) backlog 88, 1 client from 127.0.0.1 \
         never accepted; [::]:{V6_ONLY_PORT} IPV6_V6ONLY on, backlog 99, idle."
    )?;
    writeln!(
        m,
        "- {}:80 backlog {SYN_BACKLOG}, sent {SYN_COUNT} spoofed SYNs from 10.96.0.1.. \
         (`SynSender::flood(.., 0, {SYN_COUNT})`); the SYN-ACKs vanish into sink0, so \
         {SYN_COUNT} requests stay in SYN-RECV.",
        syn::TARGET_ADDR
    )?;
    writeln!(
        m,
        "- UNIX stream listeners: `{}` backlog {} ({} pending), `{}` backlog {} ({} pending \
         connections), abstract `{}` backlog {} ({} pending).",
        UNIX_LISTENERS[0].0,
        UNIX_LISTENERS[0].1,
        UNIX_LISTENERS[0].2,
        UNIX_LISTENERS[1].0,
        UNIX_LISTENERS[1].1,
        UNIX_LISTENERS[1].2,
        UNIX_LISTENERS[2].0,
        UNIX_LISTENERS[2].1,
        UNIX_LISTENERS[2].2,
    )?;
    writeln!(m)?;
    writeln!(m, "## Requests and files")?;
    writeln!(m)?;
    writeln!(
        m,
        "The five dumps were made in this order on one `DiagSocket` (so seq 1..5); the two \
         invalid requests on plain netlink sockets of their own. Tests pass the seq and may pass \
         `None` for the port."
    )?;
    writeln!(m)?;

    let mut v4: Vec<TcpListener> = Vec::new();
    let mut v6: Vec<TcpListener> = Vec::new();
    let mut unix: Vec<UnixListener> = Vec::new();
    let mut tally = SynRecvTally::default();
    let mut v6_syn = 0usize;
    let mut retrans = std::collections::BTreeSet::new();
    for c in captures {
        let ports: std::collections::BTreeSet<u32> = c
            .datagrams
            .iter()
            .flat_map(|d| walk(d).into_iter().map(|h| h.pid))
            .collect();
        writeln!(m, "### `{}-*.bin` (seq {} = {:#x})", c.name, c.seq, c.seq)?;
        writeln!(m)?;
        writeln!(m, "Request: {}.", c.request)?;
        writeln!(
            m,
            "Reply: {} datagram(s), nlmsg_seq {}, nlmsg_pid (our port) {:?}.",
            c.datagrams.len(),
            c.seq,
            ports
        )?;
        writeln!(m)?;
        for (i, d) in c.datagrams.iter().enumerate() {
            let headers = walk(d);
            let diag_msgs = headers
                .iter()
                .filter(|h| h.ty == SOCK_DIAG_BY_FAMILY)
                .count();
            writeln!(m, "#### `{}-{i}.bin`: {} bytes", c.name, d.len())?;
            writeln!(m)?;
            let mut kinds: Vec<String> = Vec::new();
            for h in &headers {
                ensure!(
                    h.seq == c.seq,
                    "{}-{i}: a message with seq {}",
                    c.name,
                    h.seq
                );
                let k = type_name(h.ty);
                match h.code {
                    Some(code) if h.ty == NLMSG_ERROR || code != 0 => kinds.push(format!(
                        "{k} (len {}, flags {:#x}, code {code} = -{})",
                        h.len,
                        h.flags,
                        errno_name(-code)
                    )),
                    Some(code) => kinds.push(format!(
                        "{k} (len {}, flags {:#x}, code {code})",
                        h.len, h.flags
                    )),
                    None => {}
                }
            }
            writeln!(
                m,
                "- {} netlink messages: {diag_msgs} SOCK_DIAG_BY_FAMILY{}",
                headers.len(),
                if kinds.is_empty() {
                    String::new()
                } else {
                    format!(", then {}", kinds.join(", "))
                }
            )?;
            let lens: std::collections::BTreeSet<u32> = headers
                .iter()
                .filter(|h| h.ty == SOCK_DIAG_BY_FAMILY)
                .map(|h| h.len)
                .collect();
            if !lens.is_empty() {
                writeln!(
                    m,
                    "- SOCK_DIAG_BY_FAMILY message lengths (nlmsg_len): {lens:?}"
                )?;
                let unix = c.name.starts_with("unix");
                let attrs: std::collections::BTreeSet<Vec<String>> =
                    attributes(d, if unix { 16 } else { 72 })
                        .into_iter()
                        .map(|v| v.into_iter().map(|t| attr_name(unix, t)).collect())
                        .collect();
                for a in attrs {
                    writeln!(m, "- attributes: {}", a.join(", "))?;
                }
            }
            let mut here_tcp: Vec<TcpListener> = Vec::new();
            let mut here_unix: Vec<UnixListener> = Vec::new();
            let mut here_syn = SynRecvTally::default();
            let end = parse_datagram(d, c.seq, None, |p| {
                match c.name {
                    "tcp-listen-v4" | "tcp-listen-v6" => {
                        here_tcp.extend(diag::decode_listener(p)?);
                    }
                    "tcp-syn-recv-v4" | "tcp-syn-recv-v6" => {
                        if let Some(e) = diag::decode_syn_recv(p)? {
                            retrans.insert(e.retrans);
                            here_syn.add(e);
                        }
                    }
                    "unix-listen" => here_unix.extend(diag::decode_unix_listener(p)?),
                    _ => {}
                }
                Ok(())
            });
            match end {
                Ok(end) => {
                    ensure!(end.messages == diag_msgs, "{}-{i}: count differs", c.name);
                    ensure!(!end.interrupted, "{}-{i}: dump interrupted", c.name);
                    writeln!(
                        m,
                        "- parse_datagram(seq {}): Ok, messages = {}, done = {}, interrupted = \
                         false",
                        c.seq, end.messages, end.done
                    )?;
                }
                Err(NetlinkError::Kernel { errno }) => writeln!(
                    m,
                    "- parse_datagram(seq {}): Err(NetlinkError::Kernel {{ errno: {errno} }}) \
                     = {}",
                    c.seq,
                    errno_name(errno)
                )?,
                Err(e) => bail!("{}-{i}: {e}", c.name),
            }
            if !here_tcp.is_empty() {
                writeln!(m, "- listeners in this datagram, in kernel order:")?;
                writeln!(m)?;
                writeln!(m, "  | local | recv-q | send-q | drops | v6only |")?;
                writeln!(m, "  |---|---|---|---|---|")?;
                for l in &here_tcp {
                    writeln!(m, "  {}", tcp_line(l))?;
                }
            }
            if here_syn.total > 0 {
                let mut by: Vec<_> = here_syn.by_local.iter().collect();
                by.sort();
                for ((fam, addr, port), (n, r)) in by {
                    writeln!(
                        m,
                        "- SYN-RECV requests: {n} with local {fam:?} {addr}:{port} (highest \
                         retransmit count {r})"
                    )?;
                }
                for (k, (n, _)) in &here_syn.by_local {
                    tally.by_local.entry(*k).or_insert((0, 0)).0 += n;
                }
                tally.total += here_syn.total;
                if c.name == "tcp-syn-recv-v6" {
                    v6_syn += 1;
                }
            }
            if !here_unix.is_empty() {
                writeln!(m, "- UNIX listeners in this datagram, in kernel order:")?;
                writeln!(m)?;
                writeln!(m, "  | name | recv-q (pending) | send-q (backlog) |")?;
                writeln!(m, "  |---|---|---|")?;
                for l in &here_unix {
                    writeln!(m, "  {}", unix_line(l))?;
                }
            }
            writeln!(m)?;
            match c.name {
                "tcp-listen-v4" => v4.extend(here_tcp),
                "tcp-listen-v6" => v6.extend(here_tcp),
                "unix-listen" => unix.extend(here_unix),
                _ => {}
            }
        }
    }

    // The scene, checked.
    let mut got_v4: Vec<(String, u32, u32, u64)> = v4
        .iter()
        .map(|l| {
            (
                format!("{}:{}", l.address, l.port),
                l.accept_queue,
                l.backlog,
                l.drops.unwrap_or(u64::MAX),
            )
        })
        .collect();
    got_v4.sort();
    ensure!(
        got_v4 == expected_v4(),
        "IPv4 listeners differ from the scene: {got_v4:?}"
    );
    let mut got_v6: Vec<(String, u32, u32, Option<bool>)> = v6
        .iter()
        .map(|l| {
            (
                format!("[{}]:{}", l.address, l.port),
                l.accept_queue,
                l.backlog,
                l.v6only,
            )
        })
        .collect();
    got_v6.sort();
    let want_v6 = vec![
        (format!("[::1]:{V6_LOOPBACK_PORT}"), 2, 77, Some(true)),
        (format!("[::]:{V6_DUAL_PORT}"), 1, 88, Some(false)),
        (format!("[::]:{V6_ONLY_PORT}"), 0, 99, Some(true)),
    ];
    ensure!(got_v6 == want_v6, "IPv6 listeners differ: {got_v6:?}");
    ensure!(
        v6.iter().all(|l| l.drops == Some(0)),
        "an IPv6 listener has drops"
    );
    ensure!(
        tally.total == u64::from(SYN_COUNT) && tally.by_local.len() == 1 && v6_syn == 0,
        "SYN-RECV differs: {:?}",
        tally.by_local
    );
    let mut got_unix: Vec<(String, u32, u32)> = unix
        .iter()
        .map(|l| (l.name.clone(), l.accept_queue, l.backlog))
        .collect();
    got_unix.sort();
    let mut want_unix: Vec<(String, u32, u32)> = UNIX_LISTENERS
        .iter()
        .map(|(n, b, p)| (n.to_string(), *p as u32, *b as u32))
        .collect();
    want_unix.sort();
    ensure!(got_unix == want_unix, "UNIX listeners differ: {got_unix:?}");
    let mut inodes: Vec<u64> = v4.iter().chain(&v6).map(|l| l.inode).collect();
    inodes.sort_unstable();
    inodes.dedup();
    ensure!(
        inodes.len() == v4.len() + v6.len() && inodes.iter().all(|&i| i != 0),
        "listener inodes are not distinct and nonzero"
    );
    ensure!(
        v4.iter().chain(&v6).all(|l| l.uid == 0),
        "a listener is not owned by uid 0"
    );
    let mut all = v4.clone();
    all.extend(v6.iter().cloned());
    let unmatched = diag::attribute_syn_recv(&mut all, &tally);
    ensure!(
        unmatched == 0,
        "{unmatched} SYN-RECV requests matched no listener"
    );

    writeln!(m, "## Totals")?;
    writeln!(m)?;
    writeln!(
        m,
        "- IPv4 listeners: {} (all uid 0, distinct nonzero inodes); IPv6 listeners: {}; UNIX \
         listeners: {}.",
        v4.len(),
        v6.len(),
        unix.len()
    )?;
    writeln!(
        m,
        "- SYN-RECV: {} requests, all AF_INET with local {}:80, retransmit counts seen {:?}; \
         `attribute_syn_recv` gives them all to {}:80 (unmatched 0). The AF_INET6 SYN-RECV dump \
         is empty (only NLMSG_DONE).",
        tally.total,
        syn::TARGET_ADDR,
        retrans,
        syn::TARGET_ADDR
    )?;
    writeln!(
        m,
        "- Drops: 2 on 127.0.0.1:{FULL_PORT}, 0 on every other listener (IPv4 and IPv6)."
    )?;
    Ok(m)
}

fn write_fixtures(out: &Path, captures: &[Capture], manifest: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    for e in std::fs::read_dir(out)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "bin") {
            std::fs::remove_file(&p)?;
        }
    }
    let mut total = 0usize;
    for c in captures {
        for (i, d) in c.datagrams.iter().enumerate() {
            let p = out.join(format!("{}-{i}.bin", c.name));
            std::fs::write(&p, d).with_context(|| format!("writing {}", p.display()))?;
            total += d.len();
            println!("{} ({} bytes)", p.display(), d.len());
        }
    }
    std::fs::write(out.join("MANIFEST.md"), manifest)?;
    println!("{} bytes of datagrams, MANIFEST.md written", total);
    Ok(())
}
