//! A small synchronous netlink socket: framing, sequence numbers, acks, dumps and batches.
//!
//! In the manner of netavark's `network/netlink.rs`: no async runtime, one socket per operation
//! sequence, errors reported per message. The socket is bound to the network namespace of the
//! thread that created it, which is how we talk to a task's namespace without ever `setns`-ing a
//! long-lived thread (see `netns::open_route_socket_in`). Message *contents* are built elsewhere:
//! rtnetlink with `netlink-packet-route` (`route.rs`), nf_tables by hand (`nft.rs`).

use std::io;
use std::time::Duration;

use netlink_sys::{Socket, SocketAddr};

use crate::sys;

/// `NLMSG_ERROR`: an ack (error 0) or an error.
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
const NLMSG_DONE: u16 = 3;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_MULTI: u16 = 0x2;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP_INTR: u16 = 0x10;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_REPLACE: u16 = 0x100;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
pub(crate) const NLM_F_APPEND: u16 = 0x800;
/// In an error message: the original request was cut (we ask for that with `NETLINK_CAP_ACK`).
const NLM_F_CAPPED: u16 = 0x100;
/// In an error message: extended-ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: the kernel's human-readable reason.
const NLMSGERR_ATTR_MSG: u16 = 1;
pub(crate) const NLMSG_HDRLEN: usize = 16;

/// How long we wait for the kernel to answer before calling it a failure.
const RECV_TIMEOUT: Duration = Duration::from_secs(10);
/// Large enough for any single netlink datagram the kernel sends us (dumps are capped at 32 KiB).
const RECV_BUFFER: usize = 64 * 1024;

/// Errors of the netlink transport and the kernel's answers.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The socket could not be created or bound.
    #[error("open netlink socket")]
    Open(#[source] io::Error),
    /// Sending a request failed.
    #[error("send netlink request")]
    Send(#[source] io::Error),
    /// Receiving the answer failed (including a timeout).
    #[error("receive netlink reply")]
    Recv(#[source] io::Error),
    /// The kernel refused the request.
    #[error("{}", describe_errno(*errno, message.as_deref()))]
    Kernel {
        /// The positive errno value.
        errno: i32,
        /// The kernel's extended-ack message, when it gave one.
        message: Option<String>,
    },
    /// The reply could not be parsed.
    #[error("malformed netlink reply: {0}")]
    Malformed(String),
}

impl NetlinkError {
    /// The errno of a kernel refusal, if this is one.
    pub(crate) fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// Whether the kernel said the object does not exist.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc::ENOENT | libc::ENODEV | libc::ESRCH)
        )
    }

    /// Whether the kernel said the object already exists.
    pub(crate) fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }
}

fn describe_errno(errno: i32, message: Option<&str>) -> String {
    let base = io::Error::from_raw_os_error(errno).to_string();
    match message {
        Some(m) if !m.is_empty() => format!("{base}: {m}"),
        _ => base,
    }
}

/// One received netlink message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame<'a> {
    pub(crate) ty: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    /// The message without its header.
    pub(crate) payload: &'a [u8],
    /// The whole message, header included (what `netlink-packet-core` deserialises).
    pub(crate) whole: &'a [u8],
}

/// A netlink socket of one protocol, in the network namespace of the thread that opened it.
#[derive(Debug)]
pub(crate) struct NlSocket {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl NlSocket {
    /// Opens and binds a socket of `protocol` (`NETLINK_ROUTE`, `NETLINK_NETFILTER`).
    pub(crate) fn open(protocol: isize) -> Result<Self, NetlinkError> {
        let mut socket = Socket::new(protocol).map_err(NetlinkError::Open)?;
        socket
            .bind(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Open)?;
        // Short error messages (no copy of our request) plus the kernel's reason text.
        socket.set_cap_ack(true).map_err(NetlinkError::Open)?;
        socket.set_ext_ack(true).map_err(NetlinkError::Open)?;
        sys::set_recv_timeout(&socket, RECV_TIMEOUT).map_err(NetlinkError::Open)?;
        // Start from a per-socket value so that stray replies of a former socket never match.
        let seq = std::process::id().wrapping_mul(7919) ^ 0x5eed;
        Ok(NlSocket {
            socket,
            seq,
            buf: vec![0; RECV_BUFFER],
        })
    }

    /// A fresh sequence number.
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one datagram (one message, or a whole nf_tables batch).
    pub(crate) fn send(&self, bytes: &[u8]) -> Result<(), NetlinkError> {
        let sent = self.socket.send(bytes, 0).map_err(NetlinkError::Send)?;
        if sent != bytes.len() {
            return Err(NetlinkError::Send(io::Error::other(format!(
                "short send: {sent} of {} bytes",
                bytes.len()
            ))));
        }
        Ok(())
    }

    /// Receives datagrams and hands every message to `on_frame` until it returns `true`
    /// (done). Errors and acks are handed over like any other message: see [`error_of`].
    fn recv_until(
        &mut self,
        mut on_frame: impl FnMut(Frame<'_>) -> Result<bool, NetlinkError>,
    ) -> Result<(), NetlinkError> {
        loop {
            let n = self
                .socket
                .recv(&mut &mut self.buf[..], 0)
                .map_err(NetlinkError::Recv)?;
            let mut rest = &self.buf[..n];
            while !rest.is_empty() {
                let frame = parse_frame(rest)?;
                let len = frame.whole.len();
                if on_frame(frame)? {
                    return Ok(());
                }
                rest = &rest[align4(len).min(rest.len())..];
            }
        }
    }

    /// Sends `request` (which must carry `seq` and `NLM_F_ACK`) and waits for its ack.
    pub(crate) fn request_ack(&mut self, request: &[u8], seq: u32) -> Result<(), NetlinkError> {
        self.send(request)?;
        let mut outcome = Ok(());
        self.recv_until(|f| {
            if f.seq != seq {
                return Ok(false); // a late answer to an earlier request: not ours
            }
            match f.ty {
                NLMSG_ERROR => {
                    outcome = error_of(&f)?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })?;
        outcome
    }

    /// Sends `request` (which must carry `seq` and `NLM_F_ACK`) and returns the messages the
    /// kernel echoes before its ack (for `GET` requests of one object).
    pub(crate) fn request_get(
        &mut self,
        request: &[u8],
        seq: u32,
    ) -> Result<Vec<Vec<u8>>, NetlinkError> {
        self.send(request)?;
        let mut out = Vec::new();
        let mut outcome = Ok(());
        self.recv_until(|f| {
            if f.seq != seq {
                return Ok(false);
            }
            match f.ty {
                NLMSG_ERROR => {
                    outcome = error_of(&f)?;
                    Ok(true)
                }
                NLMSG_DONE => Ok(true),
                _ => {
                    out.push(f.whole.to_vec());
                    Ok(false)
                }
            }
        })?;
        outcome.map(|()| out)
    }

    /// Sends a dump `request` and returns every message of the dump. A dump that the kernel
    /// marks as interrupted (the table changed while it was read) is reported as
    /// `Malformed("dump interrupted")` for the caller to retry.
    pub(crate) fn request_dump(
        &mut self,
        request: &[u8],
        seq: u32,
    ) -> Result<Vec<Vec<u8>>, NetlinkError> {
        self.send(request)?;
        let mut out = Vec::new();
        let mut outcome = Ok(());
        let mut interrupted = false;
        self.recv_until(|f| {
            if f.seq != seq {
                return Ok(false);
            }
            if f.flags & NLM_F_DUMP_INTR != 0 {
                interrupted = true;
            }
            match f.ty {
                NLMSG_DONE => Ok(true),
                NLMSG_ERROR => {
                    outcome = error_of(&f)?;
                    Ok(true)
                }
                _ => {
                    out.push(f.whole.to_vec());
                    Ok(f.flags & NLM_F_MULTI == 0)
                }
            }
        })?;
        outcome?;
        if interrupted {
            return Err(NetlinkError::Malformed("dump interrupted".into()));
        }
        Ok(out)
    }

    /// Sends an nf_tables batch and collects one outcome per command sequence number in
    /// `commands` (each command must carry `NLM_F_ACK`). An error the kernel reports against
    /// the batch itself (its begin or end message) is returned as the outer error.
    pub(crate) fn request_batch(
        &mut self,
        batch: &[u8],
        commands: &[u32],
    ) -> Result<Vec<Result<(), NetlinkError>>, NetlinkError> {
        self.send(batch)?;
        let mut outcomes: Vec<Option<Result<(), NetlinkError>>> =
            commands.iter().map(|_| None).collect();
        let mut pending = commands.len();
        let mut batch_error = None;
        if pending == 0 {
            return Ok(Vec::new());
        }
        self.recv_until(|f| {
            if f.ty != NLMSG_ERROR {
                return Ok(false);
            }
            match commands.iter().position(|&s| s == f.seq) {
                Some(i) => {
                    if outcomes[i].is_none() {
                        pending -= 1;
                    }
                    outcomes[i] = Some(error_of(&f)?);
                    Ok(pending == 0)
                }
                None => {
                    let e = error_of(&f)?;
                    if e.is_err() {
                        batch_error = e.err();
                        return Ok(true);
                    }
                    Ok(false)
                }
            }
        })?;
        if let Some(e) = batch_error {
            return Err(e);
        }
        Ok(outcomes.into_iter().map(|o| o.unwrap_or(Ok(()))).collect())
    }
}

/// Rounds `len` up to netlink's 4-byte alignment.
pub(crate) const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

fn parse_frame(buf: &[u8]) -> Result<Frame<'_>, NetlinkError> {
    if buf.len() < NLMSG_HDRLEN {
        return Err(NetlinkError::Malformed(format!(
            "{} bytes left, no header",
            buf.len()
        )));
    }
    let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len < NLMSG_HDRLEN || len > buf.len() {
        return Err(NetlinkError::Malformed(format!(
            "message length {len} with {} bytes received",
            buf.len()
        )));
    }
    Ok(Frame {
        ty: u16::from_ne_bytes([buf[4], buf[5]]),
        flags: u16::from_ne_bytes([buf[6], buf[7]]),
        seq: u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]),
        payload: &buf[NLMSG_HDRLEN..len],
        whole: &buf[..len],
    })
}

/// The outcome an `NLMSG_ERROR` message carries: `Ok(())` for an ack, the kernel's errno and
/// extended-ack message otherwise.
fn error_of(f: &Frame<'_>) -> Result<Result<(), NetlinkError>, NetlinkError> {
    let p = f.payload;
    if p.len() < 4 {
        return Err(NetlinkError::Malformed("short error message".into()));
    }
    let code = i32::from_ne_bytes([p[0], p[1], p[2], p[3]]);
    if code == 0 {
        return Ok(Ok(()));
    }
    let mut message = None;
    if f.flags & NLM_F_ACK_TLVS != 0 && p.len() >= 4 + NLMSG_HDRLEN {
        let orig_len = u32::from_ne_bytes([p[4], p[5], p[6], p[7]]) as usize;
        let skip = if f.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            orig_len
        };
        if let Some(tlvs) = p.get(4 + align4(skip)..) {
            for (ty, value) in Attrs::new(tlvs) {
                if ty == NLMSGERR_ATTR_MSG {
                    let s = value.split(|&b| b == 0).next().unwrap_or_default();
                    message = Some(String::from_utf8_lossy(s).into_owned());
                }
            }
        }
    }
    Ok(Err(NetlinkError::Kernel {
        errno: code.saturating_neg(),
        message,
    }))
}

/// An iterator over netlink attributes (`struct nlattr` + value), yielding the type with the
/// nested/byte-order flags masked off. Stops at the first malformed attribute.
#[derive(Debug, Clone)]
pub(crate) struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Attrs { rest: buf }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([self.rest[0], self.rest[1]]));
        let ty = u16::from_ne_bytes([self.rest[2], self.rest[3]]) & 0x3fff;
        if len < 4 || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let value = &self.rest[4..len];
        self.rest = &self.rest[align4(len).min(self.rest.len())..];
        Some((ty, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(
            &u32::try_from(NLMSG_HDRLEN + payload.len())
                .unwrap()
                .to_ne_bytes(),
        );
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn an_ack_is_ok() {
        let bytes = frame(NLMSG_ERROR, 0, 7, &[0; 20]);
        let f = parse_frame(&bytes).unwrap();
        assert_eq!(f.seq, 7);
        assert!(error_of(&f).unwrap().is_ok());
    }

    #[test]
    fn an_error_carries_errno_and_extack_message() {
        let mut payload = Vec::new();
        payload.extend_from_slice(&(-libc::EEXIST).to_ne_bytes());
        payload.extend_from_slice(&frame(99, 0, 7, &[])); // the capped original header
        let msg = b"port taken\0";
        payload.extend_from_slice(&u16::try_from(4 + msg.len()).unwrap().to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        payload.extend_from_slice(msg);
        payload.resize(align4(payload.len()), 0);
        let bytes = frame(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 7, &payload);
        let e = error_of(&parse_frame(&bytes).unwrap())
            .unwrap()
            .unwrap_err();
        assert!(e.is_exists());
        assert_eq!(e.to_string(), "File exists (os error 17): port taken");
    }

    #[test]
    fn truncated_frames_are_malformed() {
        let mut bytes = frame(NLMSG_DONE, 0, 1, &[0; 4]);
        bytes.truncate(18);
        assert!(matches!(
            parse_frame(&bytes),
            Err(NetlinkError::Malformed(_))
        ));
        assert!(matches!(
            parse_frame(&bytes[..8]),
            Err(NetlinkError::Malformed(_))
        ));
    }

    #[test]
    fn attrs_iterate_and_stop_at_garbage() {
        let mut b = Vec::new();
        b.extend_from_slice(&5u16.to_ne_bytes());
        b.extend_from_slice(&(0x8000u16 | 3).to_ne_bytes());
        b.extend_from_slice(&[9, 0, 0, 0]); // value 9 + 3 padding bytes
        b.extend_from_slice(&60u16.to_ne_bytes()); // claims more than there is
        b.extend_from_slice(&1u16.to_ne_bytes());
        let got: Vec<_> = Attrs::new(&b).collect();
        assert_eq!(got, vec![(3, &[9u8][..])]);
    }
}
