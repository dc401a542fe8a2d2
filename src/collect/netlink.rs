//! A sock_diag netlink socket and a strict reader of dump replies.
//!
//! The receive loop of the crate's example is not fit for a monitor (fixed 4 KiB buffer, unwraps,
//! no sequence check). Here: one datagram at a time into a 64 KiB buffer (sized so the kernel can
//! fill it; truncation is detected with MSG_TRUNC and reported, never parsed), messages framed
//! with `NetlinkBuffer` at 4-byte aligned offsets, sequence and port checked, NLMSG_ERROR and an
//! error in NLMSG_DONE turned into errors, and a receive timeout so a read can never hang.
//!
//! [`parse_datagram`] is the pure part, tested on captured datagrams.

use std::os::fd::AsFd;
use std::time::Duration;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable, NLMSG_DONE,
    NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::SOCK_DIAG_BY_FAMILY;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};
use thiserror::Error;

/// Size of the receive buffer. The kernel sizes dump datagrams to what the reader offers, up to
/// 32 KiB per skb for sock_diag; 64 KiB leaves room and is checked with MSG_TRUNC.
pub const RECV_BUFFER: usize = 64 * 1024;

/// How long one recv() may wait before the dump is declared stuck.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

const NLMSG_HDRLEN: usize = 16;

/// Errors from a netlink dump.
#[derive(Debug, Error)]
pub enum NetlinkError {
    /// A socket call failed.
    #[error("netlink {op}: {source}")]
    Io {
        /// Which call.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The kernel answered with an error (NLMSG_ERROR or an error in NLMSG_DONE).
    #[error("the kernel refused the sock_diag dump: {}", std::io::Error::from_raw_os_error(*errno))]
    Kernel {
        /// errno (positive).
        errno: i32,
    },
    /// A message's length field does not fit the datagram.
    #[error("malformed netlink datagram at byte {offset}: {what}")]
    Malformed {
        /// Byte offset of the bad message within the datagram.
        offset: usize,
        /// What is wrong.
        what: String,
    },
    /// The datagram was larger than the receive buffer.
    #[error("netlink datagram of {len} bytes truncated to {buffer} bytes")]
    Truncated {
        /// The datagram's real length.
        len: usize,
        /// The buffer's size.
        buffer: usize,
    },
    /// The kernel lost messages (NLMSG_OVERRUN).
    #[error("netlink overrun: the kernel dropped part of the dump")]
    Overrun,
    /// No answer within the timeout.
    #[error("no reply from the kernel within {0:?} (sock_diag dump stuck)")]
    Timeout(Duration),
    /// A message's payload could not be decoded.
    #[error("undecodable sock_diag message: {0}")]
    Decode(String),
}

/// What the end of one datagram means for the dump.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatagramEnd {
    /// NLMSG_DONE was seen: the dump is complete.
    pub done: bool,
    /// Some message carried NLM_F_DUMP_INTR: the tables changed during the dump, so it may be
    /// inconsistent (a socket missed or seen twice).
    pub interrupted: bool,
    /// Messages delivered to the callback.
    pub messages: usize,
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The header and length of the message at the start of `rest` (the datagram from `offset`
/// on), checked: a whole header, a length no shorter than the header and within the datagram.
fn message_at(rest: &[u8], offset: usize) -> Result<(NetlinkBuffer<&[u8]>, usize), NetlinkError> {
    if rest.len() < NLMSG_HDRLEN {
        return Err(NetlinkError::Malformed {
            offset,
            what: format!("{} trailing bytes, less than a netlink header", rest.len()),
        });
    }
    let msg = NetlinkBuffer::new_checked(rest).map_err(|e| NetlinkError::Malformed {
        offset,
        what: e.to_string(),
    })?;
    let len = msg.length() as usize;
    if len < NLMSG_HDRLEN {
        return Err(NetlinkError::Malformed {
            offset,
            what: format!("message length {len} is shorter than its header"),
        });
    }
    Ok((msg, len))
}

/// Walks the netlink messages of one datagram of a dump reply.
///
/// `seq`/`port` select the messages that answer our request (others — stale replies of an
/// earlier, abandoned dump — are skipped). Each SOCK_DIAG_BY_FAMILY payload goes to `on_msg`.
/// Stops at NLMSG_DONE. Pure: no I/O.
pub fn parse_datagram<'a, F>(
    dgram: &'a [u8],
    seq: u32,
    port: Option<u32>,
    mut on_msg: F,
) -> Result<DatagramEnd, NetlinkError>
where
    F: FnMut(&'a [u8]) -> Result<(), NetlinkError>,
{
    let mut end = DatagramEnd::default();
    let mut offset = 0usize;
    while offset < dgram.len() {
        let rest = &dgram[offset..];
        let (msg, len) = message_at(rest, offset)?;
        let ours = msg.sequence_number() == seq && port.is_none_or(|p| msg.port_number() == p);
        if ours {
            if msg.flags() & NLM_F_DUMP_INTR != 0 {
                end.interrupted = true;
            }
            let payload = &rest[NLMSG_HDRLEN..len];
            match msg.message_type() {
                NLMSG_DONE => {
                    // The DONE payload is an int: 0, or a negative errno if the dump failed.
                    if let Some(code) = read_i32(payload) {
                        if code < 0 {
                            return Err(kernel_error(code, offset));
                        }
                    }
                    end.done = true;
                    return Ok(end);
                }
                NLMSG_ERROR => {
                    let code = read_i32(payload).ok_or_else(|| NetlinkError::Malformed {
                        offset,
                        what: "NLMSG_ERROR without an error code".into(),
                    })?;
                    if code < 0 {
                        return Err(kernel_error(code, offset));
                    }
                    // An ACK (code 0) ends a request.
                    end.done = true;
                    return Ok(end);
                }
                NLMSG_OVERRUN => return Err(NetlinkError::Overrun),
                NLMSG_NOOP => {}
                SOCK_DIAG_BY_FAMILY => {
                    on_msg(payload)?;
                    end.messages += 1;
                }
                other => {
                    return Err(NetlinkError::Malformed {
                        offset,
                        what: format!("unexpected netlink message type {other}"),
                    })
                }
            }
        }
        offset += align4(len);
    }
    Ok(end)
}

/// The error of a negative `code` in NLMSG_ERROR or NLMSG_DONE: the kernel's errno, or a
/// malformed message for i32::MIN, which has no positive counterpart (and is no errno).
fn kernel_error(code: i32, offset: usize) -> NetlinkError {
    match code.checked_neg() {
        Some(errno) => NetlinkError::Kernel { errno },
        None => NetlinkError::Malformed {
            offset,
            what: format!("error code {code} is not a negative errno"),
        },
    }
}

fn read_i32(payload: &[u8]) -> Option<i32> {
    let bytes: [u8; 4] = payload.get(..4)?.try_into().ok()?;
    Some(i32::from_ne_bytes(bytes))
}

/// A NETLINK_SOCK_DIAG socket in the network namespace of the thread that created it.
pub struct DiagSocket {
    socket: Socket,
    port: u32,
    seq: u32,
    buf: Vec<u8>,
}

impl DiagSocket {
    /// Opens the socket. It belongs to the calling thread's network namespace for its whole life.
    pub fn new() -> Result<Self, NetlinkError> {
        let io = |op| move |source| NetlinkError::Io { op, source };
        let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(io("socket"))?;
        let addr = socket.bind_auto().map_err(io("bind"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(io("connect"))?;
        let timeout = nix::sys::time::TimeVal::new(RECV_TIMEOUT.as_secs() as _, 0);
        nix::sys::socket::setsockopt(
            &socket.as_fd(),
            nix::sys::socket::sockopt::ReceiveTimeout,
            &timeout,
        )
        .map_err(|e| NetlinkError::Io {
            op: "setsockopt(SO_RCVTIMEO)",
            source: e.into(),
        })?;
        Ok(Self {
            port: addr.port_number(),
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUFFER),
        })
    }

    fn send_dump_request<M: NetlinkSerializable>(
        &mut self,
        request: M,
    ) -> Result<(), NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(request));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket
            .send(&out, 0)
            .map(drop)
            .map_err(|source| NetlinkError::Io { op: "send", source })
    }

    /// Sends a dump request and feeds every reply message's payload to `on_msg` until
    /// NLMSG_DONE. Returns whether the dump was interrupted (possibly inconsistent).
    ///
    /// On any error the rest of the reply is read and thrown away (or, failing that, the socket
    /// is replaced): the kernel refuses a new dump with EBUSY while one is still running on a
    /// socket, so an aborted dump must not poison the next sample.
    pub fn dump<M, F>(&mut self, request: M, mut on_msg: F) -> Result<bool, NetlinkError>
    where
        M: NetlinkSerializable,
        F: FnMut(&[u8]) -> Result<(), NetlinkError>,
    {
        self.send_dump_request(request)?;
        let result = self.read_dump(&mut on_msg);
        if result.is_err() {
            self.recover();
        }
        result
    }

    fn read_dump<F>(&mut self, on_msg: &mut F) -> Result<bool, NetlinkError>
    where
        F: FnMut(&[u8]) -> Result<(), NetlinkError>,
    {
        let mut interrupted = false;
        loop {
            let len = self.recv_datagram()?;
            let end = parse_datagram(&self.buf[..len], self.seq, Some(self.port), &mut *on_msg)?;
            interrupted |= end.interrupted;
            if end.done {
                return Ok(interrupted);
            }
        }
    }

    /// Receives one datagram into `buf`; its length. EINTR is retried; a datagram larger than
    /// the buffer is an error (it has been consumed).
    fn recv_datagram(&mut self) -> Result<usize, NetlinkError> {
        loop {
            self.buf.clear();
            let len = match self.socket.recv(&mut self.buf, libc_msg_trunc()) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => return Err(NetlinkError::Timeout(RECV_TIMEOUT)),
                Err(source) => return Err(NetlinkError::Io { op: "recv", source }),
            };
            if len > self.buf.len() {
                return Err(NetlinkError::Truncated {
                    len,
                    buffer: self.buf.len(),
                });
            }
            return Ok(len);
        }
    }

    /// Reads and discards the rest of an aborted dump; replaces the socket if that fails.
    fn recover(&mut self) {
        for _ in 0..1_000_000 {
            match self.recv_datagram() {
                Ok(len) => {
                    match parse_datagram(&self.buf[..len], self.seq, Some(self.port), |_| Ok(())) {
                        Ok(end) if end.done => return,
                        Err(NetlinkError::Kernel { .. }) => return,
                        Ok(_) | Err(_) => {}
                    }
                }
                Err(NetlinkError::Truncated { .. }) => {}
                Err(_) => break,
            }
        }
        // Could not drain: start afresh (same thread, so the same network namespace).
        if let Ok(fresh) = DiagSocket::new() {
            *self = fresh;
        }
    }

    /// Like [`dump`](Self::dump) but returns the raw datagrams (for capturing fixtures).
    pub fn dump_raw<M: NetlinkSerializable>(
        &mut self,
        request: M,
    ) -> Result<Vec<Vec<u8>>, NetlinkError> {
        self.send_dump_request(request)?;
        let mut datagrams = Vec::new();
        let result = loop {
            let len = match self.recv_datagram() {
                Ok(len) => len,
                Err(e) => break Err(e),
            };
            let dgram = self.buf[..len].to_vec();
            match parse_datagram(&dgram, self.seq, Some(self.port), |_| Ok(())) {
                Ok(end) => {
                    datagrams.push(dgram);
                    if end.done {
                        break Ok(datagrams);
                    }
                }
                Err(e) => break Err(e),
            }
        };
        if result.is_err() {
            self.recover();
        }
        result
    }
}

/// Most exact requests sent in one datagram: each answer is its own skb in the socket's receive
/// queue (about 1 KiB of truesize for a listener without extensions), and the kernel drops an
/// answer that does not fit the receive buffer (default 208 KiB) instead of waiting.
pub const EXACT_BATCH: usize = 64;

/// What the kernel answered to one exact request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExactAnswer<'a> {
    /// The socket's message (SOCK_DIAG_BY_FAMILY payload).
    Found(&'a [u8]),
    /// An error (positive errno): ENOENT when no socket matches the id and cookie.
    Error(i32),
}

/// Walks the messages of one datagram answering a batch of exact requests with sequence
/// numbers `base`, `base + 1`, … `base + n - 1`; hands each answer to `on_answer` with the
/// index of its request. Messages of other sequence numbers or ports (left over from an earlier,
/// abandoned batch or dump) are skipped. Returns how many answers the datagram held. Pure.
pub fn parse_exact_datagram<'a, F>(
    dgram: &'a [u8],
    base: u32,
    n: usize,
    port: Option<u32>,
    mut on_answer: F,
) -> Result<usize, NetlinkError>
where
    F: FnMut(usize, ExactAnswer<'a>),
{
    let mut answers = 0;
    let mut offset = 0usize;
    while offset < dgram.len() {
        let rest = &dgram[offset..];
        let (msg, len) = message_at(rest, offset)?;
        let index = msg.sequence_number().wrapping_sub(base) as usize;
        if index < n && port.is_none_or(|p| msg.port_number() == p) {
            let payload = &rest[NLMSG_HDRLEN..len];
            match msg.message_type() {
                SOCK_DIAG_BY_FAMILY => {
                    on_answer(index, ExactAnswer::Found(payload));
                    answers += 1;
                }
                NLMSG_ERROR => {
                    let code = read_i32(payload).ok_or_else(|| NetlinkError::Malformed {
                        offset,
                        what: "NLMSG_ERROR without an error code".into(),
                    })?;
                    if code < 0 {
                        match kernel_error(code, offset) {
                            NetlinkError::Kernel { errno } => {
                                on_answer(index, ExactAnswer::Error(errno))
                            }
                            other => return Err(other),
                        }
                    }
                    answers += 1;
                }
                NLMSG_OVERRUN => return Err(NetlinkError::Overrun),
                _ => {}
            }
        }
        offset += align4(len);
    }
    Ok(answers)
}

impl DiagSocket {
    /// Sends exact requests (no NLM_F_DUMP: the kernel looks each socket up by its id and
    /// checks its cookie, O(1) each) and feeds every answer to `on_answer` with the index of its
    /// request. At most [`EXACT_BATCH`] requests go out in one datagram; a batch's answers are
    /// read before the next batch is sent.
    pub fn exact<M, F>(&mut self, requests: Vec<M>, mut on_answer: F) -> Result<(), NetlinkError>
    where
        M: NetlinkSerializable,
        F: FnMut(usize, ExactAnswer<'_>),
    {
        let mut requests = requests.into_iter().peekable();
        let mut first = 0usize;
        while requests.peek().is_some() {
            let base = self.seq.wrapping_add(1);
            let mut out = Vec::new();
            let mut n = 0usize;
            for request in requests.by_ref().take(EXACT_BATCH) {
                self.seq = self.seq.wrapping_add(1);
                let mut header = NetlinkHeader::default();
                header.flags = NLM_F_REQUEST;
                header.sequence_number = self.seq;
                let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(request));
                packet.finalize();
                let at = out.len();
                out.resize(at + packet.buffer_len(), 0);
                packet.serialize(&mut out[at..]);
                n += 1;
            }
            self.socket
                .send(&out, 0)
                .map_err(|source| NetlinkError::Io { op: "send", source })?;
            let mut answered = 0usize;
            while answered < n {
                let len = self.recv_datagram()?;
                answered +=
                    parse_exact_datagram(&self.buf[..len], base, n, Some(self.port), |i, a| {
                        on_answer(first + i, a)
                    })?;
            }
            first += n;
        }
        Ok(())
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn libc_msg_trunc() -> i32 {
    nix::sys::socket::MsgFlags::MSG_TRUNC.bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDRLEN + payload.len();
        let mut v = Vec::new();
        v.extend_from_slice(&(len as u32).to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&7u32.to_ne_bytes());
        v.extend_from_slice(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn walks_aligned_messages_and_stops_at_done() {
        let mut d = msg(SOCK_DIAG_BY_FAMILY, 2, 5, &[1, 2, 3]); // padded to 20
        d.extend(msg(SOCK_DIAG_BY_FAMILY, 2, 5, &[4, 5, 6, 7, 8]));
        d.extend(msg(NLMSG_DONE, 2, 5, &0i32.to_ne_bytes()));
        let mut seen = Vec::new();
        let end = parse_datagram(&d, 5, Some(7), |p| {
            seen.push(p.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![vec![1, 2, 3], vec![4, 5, 6, 7, 8]]);
        assert!(end.done);
        assert!(!end.interrupted);
        assert_eq!(end.messages, 2);
    }

    #[test]
    fn skips_other_sequence_numbers_and_flags_interruption() {
        let mut d = msg(SOCK_DIAG_BY_FAMILY, 2, 4, &[9; 8]);
        d.extend(msg(SOCK_DIAG_BY_FAMILY, 2 | NLM_F_DUMP_INTR, 5, &[1; 8]));
        let mut n = 0;
        let end = parse_datagram(&d, 5, None, |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 1);
        assert!(end.interrupted);
        assert!(!end.done);
    }

    #[test]
    fn error_message_and_error_in_done_are_errors() {
        let mut payload = (-1i32).to_ne_bytes().to_vec(); // -EPERM
        payload.extend([0u8; 16]);
        let d = msg(NLMSG_ERROR, 0, 5, &payload);
        match parse_datagram(&d, 5, None, |_| Ok(())) {
            Err(NetlinkError::Kernel { errno: 1 }) => {}
            other => panic!("expected EPERM, got {other:?}"),
        }
        let d = msg(NLMSG_DONE, 2, 5, &(-22i32).to_ne_bytes());
        assert!(matches!(
            parse_datagram(&d, 5, None, |_| Ok(())),
            Err(NetlinkError::Kernel { errno: 22 })
        ));
    }

    #[test]
    fn exact_answers_go_to_their_request_and_strays_are_skipped() {
        // Requests 10, 11, 12: 11 found, 10 refused with ENOENT; a stray answer to an earlier
        // batch (seq 9) and one to another port are skipped; 12 answers in a later datagram.
        let mut d = msg(SOCK_DIAG_BY_FAMILY, 0, 9, &[9; 8]);
        d.extend(msg(SOCK_DIAG_BY_FAMILY, 0, 11, &[1; 8]));
        let mut enoent = (-2i32).to_ne_bytes().to_vec();
        enoent.extend([0u8; 16]);
        d.extend(msg(NLMSG_ERROR, 0, 10, &enoent));
        let mut seen = Vec::new();
        let n = parse_exact_datagram(&d, 10, 3, Some(7), |i, a| seen.push(format!("{i}:{a:?}")))
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(seen, ["1:Found([1, 1, 1, 1, 1, 1, 1, 1])", "0:Error(2)"]);
        assert_eq!(
            parse_exact_datagram(&d, 10, 3, Some(8), |_, _| {}).unwrap(),
            0
        );
        // Sequence numbers wrap.
        let d = msg(SOCK_DIAG_BY_FAMILY, 0, 1, &[2; 4]);
        let mut at = None;
        assert_eq!(
            parse_exact_datagram(&d, u32::MAX, 3, None, |i, _| at = Some(i)).unwrap(),
            1
        );
        assert_eq!(at, Some(2));
        // Garbage is an error, never a panic.
        for cut in 1..d.len() {
            let _ = parse_exact_datagram(&d[..cut], 1, 1, None, |_, _| {});
        }
    }

    #[test]
    fn truncated_and_garbage_datagrams_are_errors_not_panics() {
        let d = msg(SOCK_DIAG_BY_FAMILY, 2, 5, &[0; 40]);
        for cut in 1..d.len() {
            let r = parse_datagram(&d[..cut], 5, None, |_| Ok(()));
            assert!(r.is_err(), "cut at {cut} must be an error");
        }
        let mut bad = msg(SOCK_DIAG_BY_FAMILY, 2, 5, &[0; 4]);
        bad[..4].copy_from_slice(&8u32.to_ne_bytes()); // shorter than a header
        assert!(matches!(
            parse_datagram(&bad, 5, None, |_| Ok(())),
            Err(NetlinkError::Malformed { .. })
        ));
        // Arbitrary bytes never panic.
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let n = (x % 97) as usize;
            let bytes: Vec<u8> = (0..n)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = parse_datagram(&bytes, 5, None, |_| Ok(()));
        }
    }
}
