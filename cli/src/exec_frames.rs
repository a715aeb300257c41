//! The byte protocol of an attached `berth exec` (stdin, or a terminal), spoken on the
//! API connection once the daemon answered `101 Switching Protocols` to a `Berth.Exec`
//! request carrying `Upgrade: berth-exec/1`.
//!
//! Both directions carry frames: one kind byte, the payload's length (4 bytes, big
//! endian), the payload. A framed stream, rather than raw bytes as `docker attach` uses,
//! keeps stdout apart from stderr, carries terminal resizes beside typed input, and
//! ends with the command's exit code on the same connection.

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The `Upgrade` token of the protocol.
pub(crate) const PROTOCOL: &str = "berth-exec/1";

/// The largest payload accepted (a reader's buffer is far smaller; this bounds a
/// corrupt length).
const MAX_PAYLOAD: u32 = 1 << 20;

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Client to daemon: bytes for the command's stdin (or typed on its terminal).
    Stdin(Bytes),
    /// Client to daemon: the client's input ended (the command's stdin closes; on a
    /// terminal nothing happens, as with `docker exec -it`).
    StdinClosed,
    /// Client to daemon: the client's terminal has this size.
    Resize { rows: u16, cols: u16 },
    /// Daemon to client: the command's stdout (everything, on a terminal).
    Stdout(Bytes),
    /// Daemon to client: the command's stderr.
    Stderr(Bytes),
    /// Daemon to client, last: the command's exit code (`None`: the task stopped, or
    /// the command was killed, before it exited).
    Exit(Option<i32>),
}

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const EXIT: u8 = 3;
const STDIN_CLOSED: u8 = 4;
const RESIZE: u8 = 5;

impl Frame {
    /// The frame as it goes on the wire.
    pub(crate) fn encode(&self) -> Bytes {
        let (kind, payload): (u8, Bytes) = match self {
            Frame::Stdin(b) => (STDIN, b.clone()),
            Frame::Stdout(b) => (STDOUT, b.clone()),
            Frame::Stderr(b) => (STDERR, b.clone()),
            Frame::StdinClosed => (STDIN_CLOSED, Bytes::new()),
            Frame::Resize { rows, cols } => {
                let mut p = BytesMut::with_capacity(4);
                p.put_u16(*rows);
                p.put_u16(*cols);
                (RESIZE, p.freeze())
            }
            Frame::Exit(code) => (
                EXIT,
                code.map_or_else(Bytes::new, |c| Bytes::copy_from_slice(&c.to_be_bytes())),
            ),
        };
        let mut out = BytesMut::with_capacity(5 + payload.len());
        out.put_u8(kind);
        out.put_u32(payload.len() as u32);
        out.put_slice(&payload);
        out.freeze()
    }

    /// Reads the next frame; `None` at a clean end of the stream (between frames).
    pub(crate) async fn read<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Frame>> {
        let mut head = [0u8; 5];
        let mut got = 0;
        while got < head.len() {
            match r.read(&mut head[got..]).await? {
                0 if got == 0 => return Ok(None),
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => got += n,
            }
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        if len > MAX_PAYLOAD {
            return Err(invalid(format!(
                "a frame of {len} bytes (the most is {MAX_PAYLOAD})"
            )));
        }
        let mut payload = vec![0u8; len as usize];
        r.read_exact(&mut payload).await?;
        Frame::decode(head[0], payload).map(Some)
    }

    fn decode(kind: u8, payload: Vec<u8>) -> std::io::Result<Frame> {
        let fixed = |n: usize| -> std::io::Result<()> {
            if payload.len() == n {
                Ok(())
            } else {
                Err(invalid(format!(
                    "frame kind {kind} has {} payload bytes, not {n}",
                    payload.len()
                )))
            }
        };
        Ok(match kind {
            STDIN => Frame::Stdin(payload.into()),
            STDOUT => Frame::Stdout(payload.into()),
            STDERR => Frame::Stderr(payload.into()),
            STDIN_CLOSED => {
                fixed(0)?;
                Frame::StdinClosed
            }
            RESIZE => {
                fixed(4)?;
                Frame::Resize {
                    rows: u16::from_be_bytes([payload[0], payload[1]]),
                    cols: u16::from_be_bytes([payload[2], payload[3]]),
                }
            }
            EXIT if payload.is_empty() => Frame::Exit(None),
            EXIT => {
                fixed(4)?;
                Frame::Exit(Some(i32::from_be_bytes([
                    payload[0], payload[1], payload[2], payload[3],
                ])))
            }
            other => return Err(invalid(format!("unknown frame kind {other}"))),
        })
    }
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_frame_reads_back_as_written() {
        let frames = [
            Frame::Stdin(Bytes::from_static(b"echo hi\n")),
            Frame::StdinClosed,
            Frame::Resize {
                rows: 50,
                cols: 132,
            },
            Frame::Stdout(Bytes::from_static(b"hi\r\n")),
            Frame::Stderr(Bytes::new()),
            Frame::Exit(Some(-1)),
            Frame::Exit(Some(137)),
            Frame::Exit(None),
        ];
        let wire: Vec<u8> = frames.iter().flat_map(|f| f.encode().to_vec()).collect();
        let mut r = wire.as_slice();
        for want in &frames {
            assert_eq!(Frame::read(&mut r).await.unwrap().as_ref(), Some(want));
        }
        assert_eq!(Frame::read(&mut r).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_cut_or_malformed_frame_is_an_error() {
        let whole = Frame::Stdout(Bytes::from_static(b"abc")).encode();
        let mut cut = &whole[..whole.len() - 1];
        assert!(Frame::read(&mut cut).await.is_err());
        let mut half_head = &whole[..3];
        assert!(Frame::read(&mut half_head).await.is_err());
        let mut unknown: &[u8] = &[9, 0, 0, 0, 0];
        let e = Frame::read(&mut unknown).await.unwrap_err();
        assert!(e.to_string().contains("unknown frame kind 9"), "{e}");
        let mut short_resize: &[u8] = &[RESIZE, 0, 0, 0, 2, 0, 1];
        assert!(Frame::read(&mut short_resize).await.is_err());
        let mut huge: &[u8] = &[STDIN, 0xff, 0xff, 0xff, 0xff];
        assert!(Frame::read(&mut huge).await.is_err());
    }
}
