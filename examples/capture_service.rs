//! Captures real reply datagrams of the service dump (a listener's children) as parser
//! fixtures: tests/fixtures/netlink/service.
//!
//! Run as root: `cargo run --example capture_service`.
//!
//! On a thread in its own network namespace it builds a scene of children in every state sockq
//! reads, dumps them with `service::children_request` (the port filter and tcp_info included)
//! through `DiagSocket::dump_raw`, and writes every reply datagram unchanged to
//! `children-v4-<i>.bin` / `children-v6-<i>.bin`, plus MANIFEST.md with the scene and the facts
//! tests/service_fixtures.rs asserts. The scene is checked first: a capture that raced is
//! refused, not written.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, ensure, Context};
use netlink_packet_sock_diag::constants::{
    TCP_CLOSE_WAIT, TCP_ESTABLISHED, TCP_FIN_WAIT2, TCP_TIME_WAIT,
};
use nix::sched::{unshare, CloneFlags};
use socket2::{Domain, Socket, Type};
use sockq::collect::netlink::{parse_datagram, DiagSocket};
use sockq::collect::service::{self, ChildEntry};
use sockq::model::Family;

/// 127.0.0.1:V4_PORT, backlog 16: see MANIFEST.md for its children.
const V4_PORT: u16 = 20301;
/// [::]:V6_PORT dual stack, backlog 16: one IPv4 client, accepted, idle.
const V6_PORT: u16 = 20302;
/// Unread bytes each of the two "unread" clients sends.
const UNREAD: usize = 100;
/// What the "unsent" connection writes (the client never reads).
const UNSENT: usize = 256 * 1024;

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/netlink/service");
    std::thread::spawn(move || capture(&out))
        .join()
        .map_err(|_| anyhow!("the capture thread panicked"))?
}

fn run(cmd: &str, args: &[&str]) -> anyhow::Result<()> {
    let st = Command::new(cmd).args(args).status()?;
    ensure!(st.success(), "{cmd} {args:?} failed");
    Ok(())
}

fn listener(addr: SocketAddr, v6only: Option<bool>) -> anyhow::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    if let Some(v) = v6only {
        s.set_only_v6(v)?;
    }
    s.bind(&addr.into())?;
    s.listen(16)?;
    Ok(s)
}

fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).with_context(|| format!("{addr}"))
}

fn capture(out: &Path) -> anyhow::Result<()> {
    unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET): run this example as root")?;
    run("ip", &["link", "set", "lo", "up"])?;
    let v4: SocketAddr = format!("127.0.0.1:{V4_PORT}").parse()?;
    let l4 = listener(v4, None)?;
    let l6 = listener(format!("[::]:{V6_PORT}").parse()?, Some(false))?;

    // Accepted children first (accept() takes them in arrival order).
    let mut keep_clients = Vec::new();
    let mut keep_server = Vec::new();
    // 2 accepted, each with UNREAD bytes the server never reads.
    for _ in 0..2 {
        let mut c = connect(v4)?;
        let (s, _) = l4.accept()?;
        c.write_all(&[b'u'; UNREAD])?;
        keep_clients.push(c);
        keep_server.push(s);
    }
    // 1 accepted that writes UNSENT bytes to a client that never reads.
    let c = connect(v4)?;
    let (s, _) = l4.accept()?;
    s.set_nonblocking(true)?;
    let mut written = 0;
    while written < UNSENT {
        match (&s).write(&vec![b'w'; UNSENT - written]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e.into()),
        }
    }
    keep_clients.push(c);
    keep_server.push(s);
    // 1 CLOSE-WAIT: the client closes, the server keeps its socket.
    let c = connect(v4)?;
    let (s, _) = l4.accept()?;
    drop(c);
    keep_server.push(s);
    // 1 FIN-WAIT-2: the server closes, the client does not.
    let c = connect(v4)?;
    let (s, _) = l4.accept()?;
    s.shutdown(Shutdown::Both)?;
    drop(s);
    keep_clients.push(c);
    // 1 TIME-WAIT: the server closes first, then the client.
    let c = connect(v4)?;
    let (s, _) = l4.accept()?;
    drop(s);
    std::thread::sleep(Duration::from_millis(100));
    drop(c);
    // 2 waiting in the accept queue (never accepted).
    for _ in 0..2 {
        keep_clients.push(connect(v4)?);
    }
    // The dual-stack listener: one IPv4 client, accepted.
    let c = connect(format!("127.0.0.1:{V6_PORT}").parse()?)?;
    let (s, _) = l6.accept()?;
    keep_clients.push(c);
    keep_server.push(s);
    std::thread::sleep(Duration::from_millis(300));

    let ranges = service::port_ranges(&[V4_PORT, V6_PORT], service::MAX_PORT_RANGES);
    let mut nl = DiagSocket::new()?;
    let mut captures: Vec<(&str, u32, Vec<Vec<u8>>)> = Vec::new();
    for (seq, (name, family)) in
        (1u32..).zip([("children-v4", Family::Ipv4), ("children-v6", Family::Ipv6)])
    {
        let d = nl
            .dump_raw(service::children_request(family, &ranges, true))
            .with_context(|| format!("dumping {name}"))?;
        captures.push((name, seq, d));
    }

    // Check the scene and describe it.
    let mut m = String::new();
    writeln!(
        m,
        "# Captured service-dump datagrams (a listener's children)\n"
    )?;
    writeln!(
        m,
        "Written by `cargo run --example capture_service` (as root) on Linux `{}` ({}, host byte \
         order). Each `.bin` is one datagram as recv(2) returned it; `<dump>-<i>.bin` is the i-th \
         datagram of one reply. tests/service_fixtures.rs decodes them with \
         `sockq::collect::service::decode_child` and asserts the facts below. Regenerate with the \
         same command (cookies, inodes, ports of clients, ages and the split into datagrams may \
         change; the facts must not).\n",
        nix::sys::utsname::uname()?.release().to_string_lossy(),
        std::env::consts::ARCH
    )?;
    writeln!(m, "## Scene\n")?;
    writeln!(
        m,
        "A private network namespace, `lo` up. Listener 127.0.0.1:{V4_PORT} (backlog 16) with, in \
         this order: 2 accepted children whose clients sent {UNREAD} bytes each, never read; 1 \
         accepted child that wrote up to {UNSENT} bytes to a client that never reads; 1 \
         accepted child whose client closed (CLOSE-WAIT); 1 accepted child the server closed, \
         its client not (FIN-WAIT-2); 1 the server closed first, then its client (TIME-WAIT); 2 \
         clients never accepted (waiting). Listener [::]:{V6_PORT} dual stack (v6only off) with \
         one IPv4 client accepted (its child is AF_INET6 with a v4-mapped address). The clients' \
         own sockets are in the namespace too: the port filter keeps them out of the dump.\n"
    )?;
    writeln!(m, "## Requests\n")?;
    writeln!(
        m,
        "One DiagSocket, seq 1 then 2: `service::children_request(family, &[({V4_PORT}, {V6_PORT})], \
         true)` — states ESTABLISHED|CLOSE-WAIT|FIN-WAIT-1|FIN-WAIT-2|TIME-WAIT, ext \
         SKMEMINFO|INFO, bytecode `{}` (hex).\n",
        hex(service::children_request(Family::Ipv4, &ranges, true).bytecode())
    )?;
    let mut all: BTreeMap<&str, Vec<ChildEntry>> = BTreeMap::new();
    for (name, seq, datagrams) in &captures {
        writeln!(m, "### `{name}-*.bin` (seq {seq})\n")?;
        for (i, d) in datagrams.iter().enumerate() {
            let mut here = Vec::new();
            let end = parse_datagram(d, *seq, None, |p| {
                if let Some(c) = service::decode_child(p)? {
                    here.push(c);
                }
                Ok(())
            })?;
            writeln!(
                m,
                "- `{name}-{i}.bin`: {} bytes, {} messages, done = {}",
                d.len(),
                end.messages,
                end.done
            )?;
            all.entry(name).or_default().extend(here);
        }
        writeln!(m)?;
    }
    let v4c = all.get("children-v4").cloned().unwrap_or_default();
    let v6c = all.get("children-v6").cloned().unwrap_or_default();
    let count =
        |cs: &[ChildEntry], f: &dyn Fn(&ChildEntry) -> bool| cs.iter().filter(|c| f(c)).count();
    let est = |c: &ChildEntry| c.state == TCP_ESTABLISHED;
    ensure!(v4c.len() == 8, "IPv4 children: {v4c:#?}");
    ensure!(
        v4c.iter().all(|c| c.port == V4_PORT),
        "a client socket passed the filter"
    );
    ensure!(count(&v4c, &|c| est(c) && c.inode == 0) == 2, "waiting");
    ensure!(count(&v4c, &|c| est(c) && c.inode != 0) == 3, "in service");
    ensure!(
        count(&v4c, &|c| c.state == TCP_CLOSE_WAIT && c.inode != 0) == 1,
        "CLOSE-WAIT"
    );
    ensure!(
        count(&v4c, &|c| c.state == TCP_FIN_WAIT2 && c.inode == 0) == 1,
        "FIN-WAIT-2"
    );
    ensure!(count(&v4c, &|c| c.state == TCP_TIME_WAIT) == 1, "TIME-WAIT");
    ensure!(
        count(&v4c, &|c| est(c) && c.rqueue == UNREAD as u32) == 2,
        "unread"
    );
    let unsent: u64 = v4c.iter().map(|c| u64::from(c.wqueue)).sum();
    ensure!(count(&v4c, &|c| c.wqueue > 0) == 1 && unsent > 0, "unsent");
    ensure!(
        v4c.iter()
            .filter(|c| matches!(c.state, TCP_ESTABLISHED | TCP_CLOSE_WAIT))
            .all(|c| c.mem.is_some() && c.info.is_some()),
        "full sockets carry SK_MEMINFO and tcp_info"
    );
    ensure!(
        v4c.iter()
            .filter(|c| c.state == TCP_TIME_WAIT)
            .all(|c| c.mem.is_none() && c.info.is_none() && c.inode == 0),
        "the TIME-WAIT socket carries neither"
    );
    // An orphan in FIN-WAIT-2 becomes a timewait socket when tcp_fin_timeout is not above
    // 60 s (tcp_rcv_state_process → tcp_time_wait(sk, TCP_FIN_WAIT2, tmo)).
    let fw2_timewait = v4c
        .iter()
        .any(|c| c.state == TCP_FIN_WAIT2 && c.mem.is_none());
    ensure!(v6c.len() == 1, "IPv6 children: {v6c:#?}");
    let v6 = v6c[0];
    ensure!(
        v6.family == Family::Ipv6 && v6.port == V6_PORT && est(&v6) && v6.inode != 0,
        "{v6:?}"
    );
    ensure!(
        v6.address.to_string() == "::ffff:127.0.0.1",
        "{}",
        v6.address
    );

    writeln!(m, "## Facts\n")?;
    writeln!(
        m,
        "- `children-v4`: 8 children, every local port {V4_PORT} (no client socket passed the \
         filter): ESTABLISHED inode 0: 2 (waiting); ESTABLISHED with an inode: 3 (two with \
         rqueue {UNREAD}, one with wqueue > 0: {unsent} bytes in this capture, the only non-zero \
         wqueue); CLOSE-WAIT with an inode and rqueue 1 (the peer's FIN, no data): 1; FIN-WAIT-2 inode 0: 1; TIME-WAIT: 1. Every \
         ESTABLISHED and CLOSE-WAIT socket carries SK_MEMINFO and tcp_info; the TIME-WAIT one \
         neither. The FIN-WAIT-2 orphan is {} (tcp_fin_timeout 60 s: \
         `tcp_time_wait(sk, TCP_FIN_WAIT2, tmo)` in tcp_rcv_state_process).",
        if fw2_timewait {
            "a timewait socket (no SK_MEMINFO, no tcp_info)"
        } else {
            "a full socket"
        }
    )?;
    writeln!(
        m,
        "- `children-v6`: 1 child, AF_INET6, local ::ffff:127.0.0.1:{V6_PORT}, ESTABLISHED \
         with an inode."
    )?;
    writeln!(
        m,
        "- Matched to listeners 127.0.0.1:{V4_PORT} and [::]:{V6_PORT} (v6only false) by \
         `attribute_service`: 0 unmatched; {V4_PORT}: waiting 2, in service 3, unread 2 \
         connections / {} bytes, unsent 1 connection, close_wait 1, fin_wait2 1, time_wait 1; \
         {V6_PORT}: in service 1.",
        2 * UNREAD
    )?;

    std::fs::create_dir_all(out)?;
    for e in std::fs::read_dir(out)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "bin") {
            std::fs::remove_file(&p)?;
        }
    }
    for (name, _, datagrams) in &captures {
        for (i, d) in datagrams.iter().enumerate() {
            std::fs::write(out.join(format!("{name}-{i}.bin")), d)?;
        }
    }
    std::fs::write(out.join("MANIFEST.md"), m)?;
    println!("written to {}", out.display());
    drop((keep_clients, keep_server, l4, l6));
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
