//! The one-pass layer pipeline.
//!
//! A layer's bytes are read once and, in the same pass, written to a content-store
//! ingest file (hashing them), decompressed (gzip through flate2's zlib-rs backend,
//! zstd, or nothing, chosen by magic bytes), hashed again as the uncompressed diff, and
//! applied to a snapshot directory by the safe unpacker:
//!
//! ```text
//! registry ──▶ ingest stage ─────────────────▶ unpack stage
//! (tokio)      blob sha256, ingest file        inflate ─▶ diffID sha256 ─▶ unpack
//!              (blocking thread)               (its own thread)
//! ```
//!
//! The two stages run on separate threads joined by a bounded channel of chunks, so
//! hashing and writing the blob overlap with decompressing and unpacking it.
//!
//! The blob is committed only if its size and digest match the descriptor; the
//! snapshot directory is only *valid* if, in addition, the uncompressed stream hashes
//! to the diffID from the image config. The caller owns the snapshot directory and
//! discards it on any error. When the blob is wrong, that is the error reported,
//! even if the garbage also failed to decompress; when the connection broke, that is
//! the error reported.

use std::io::{self, BufReader, Read};
use std::path::PathBuf;

use bytes::Bytes;
use futures::StreamExt;

use crate::client::{RegistryError, ResolvedImage, error_chain, is_verification_error};
use crate::content::{ContentError, ContentStore, Ingest};
use crate::digest::{Digest, Hasher, HashingReader};
use crate::error::Class;
use crate::manifest::{Compression, Descriptor};
use crate::unpack::{self, Limits, UnpackError, UnpackStats};

/// Chunks buffered between the network task and the blocking stage.
const CHANNEL_CHUNKS: usize = 64;
const BUF: usize = 256 << 10;

/// What to do with one layer.
#[derive(Debug, Clone)]
pub struct LayerJob {
    /// The layer's descriptor (digest, size, media type).
    pub desc: Descriptor,
    /// The uncompressed digest the image config promises.
    pub diff_id: Digest,
    /// A fresh, empty directory to unpack into; `None` only verifies the diffID.
    pub snapshot: Option<PathBuf>,
    /// Bounds for the unpacker.
    pub limits: Limits,
}

/// What a layer job did.
#[derive(Debug, Clone, Default)]
pub struct LayerOutcome {
    /// Unpacker statistics, when a snapshot was written.
    pub stats: Option<UnpackStats>,
    /// Bytes of the uncompressed layer (the tar stream).
    pub diff_size: u64,
}

/// Where the blob bytes go while the layer is processed.
#[derive(Debug)]
pub enum BlobSink {
    /// Into the content store, verified and committed at the end.
    Ingest(Ingest),
    /// Nowhere, but verified against a digest (an archive member being applied).
    Verify(Digest, u64),
    /// Nowhere, unverified: the bytes come from a committed blob, verified when it
    /// was committed.
    Trusted,
}

/// A layer that could not be fetched, stored or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("failed to download layer {layer}")]
    Fetch {
        layer: Digest,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("download of layer {layer} broke off after {received} of {size} bytes: {detail}")]
    Interrupted {
        layer: Digest,
        received: u64,
        size: u64,
        detail: String,
    },
    #[error("layer {layer} could not be stored")]
    Content {
        layer: Digest,
        #[source]
        source: ContentError,
    },
    #[error("layer {layer} does not match its digest: the content hashes to {actual}")]
    DigestMismatch { layer: Digest, actual: Digest },
    #[error("layer {layer} could not be decompressed ({compression:?})")]
    Decompress {
        layer: Digest,
        compression: Compression,
        #[source]
        source: io::Error,
    },
    #[error("layer {layer} could not be unpacked")]
    Unpack {
        layer: Digest,
        #[source]
        source: UnpackError,
    },
    #[error(
        "layer {layer} uncompresses to {actual}, but the image config says its diff id is {expected}"
    )]
    DiffId {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("failed to read layer {layer}")]
    Read {
        layer: Digest,
        #[source]
        source: io::Error,
    },
}

impl LayerError {
    /// The error's class.
    pub fn class(&self) -> Class {
        match self {
            LayerError::Fetch { source, .. } => source.class(),
            LayerError::Content { source, .. } => source.class(),
            LayerError::Unpack { source, .. } => source.class(),
            LayerError::Decompress { .. } => Class::Invalid,
            _ => Class::Internal,
        }
    }
}

/// Downloads one layer of `image` into `store` and (optionally) unpacks it, in one
/// pass. `progress` is called with the bytes received so far.
pub async fn fetch_layer(
    image: &ResolvedImage,
    store: &ContentStore,
    job: LayerJob,
    progress: impl Fn(u64) + Send + 'static,
) -> Result<LayerOutcome, LayerError> {
    let layer = job.desc.digest.clone();
    let mut stream = image
        .blob_stream(&job.desc)
        .await
        .map_err(|source| LayerError::Fetch {
            layer: layer.clone(),
            source: Box::new(source),
        })?;
    let ingest = store
        .ingest(&layer, Some(job.desc.size))
        .map_err(|source| LayerError::Content {
            layer: layer.clone(),
            source,
        })?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    let worker = tokio::task::spawn_blocking(move || {
        pipeline(move || rx.blocking_recv(), BlobSink::Ingest(ingest), &job)
    });
    let mut received = 0u64;
    while let Some(item) = stream.next().await {
        let stop = match &item {
            Ok(b) => {
                received += b.len() as u64;
                progress(received);
                false
            }
            // Every byte arrived; the ingest's own check reports the mismatch.
            Err(e) if is_verification_error(e) => break,
            Err(_) => true,
        };
        if tx.send(item).await.is_err() || stop {
            break;
        }
    }
    drop(tx);
    worker.await.expect("the layer worker does not panic")
}

/// Processes one layer from a local reader (an archive member or a committed blob).
pub fn apply_layer(
    mut reader: impl Read,
    sink: BlobSink,
    job: &LayerJob,
) -> Result<LayerOutcome, LayerError> {
    pipeline(
        move || {
            let mut buf = vec![0u8; BUF];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => return None,
                    Ok(n) => {
                        buf.truncate(n);
                        return Some(Ok(Bytes::from(buf)));
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Some(Err(e)),
                }
            }
        },
        sink,
        job,
    )
}

/// Reads the chunks the ingest stage forwards.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Bytes>,
    chunk: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.recv() {
                Ok(b) => self.chunk = b,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// Two threads: this one writes and hashes the blob (the ingest stage) and forwards
/// every chunk to a second one that decompresses, hashes the diff and unpacks. When
/// the unpacker stops early (an error), ingesting goes on to the end so that a wrong
/// blob is reported as such.
fn pipeline(
    mut next: impl FnMut() -> Option<io::Result<Bytes>>,
    sink: BlobSink,
    job: &LayerJob,
) -> Result<LayerOutcome, LayerError> {
    let layer = job.desc.digest.clone();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(CHANNEL_CHUNKS);
    let (mut sink, mut hasher) = match sink {
        BlobSink::Verify(d, size) => {
            let h = Hasher::new(d.algorithm());
            (BlobSink::Verify(d, size), Some(h))
        }
        other => (other, None),
    };
    let (result, compression, count, read_error, sink_error) = std::thread::scope(|scope| {
        let unpacker = std::thread::Builder::new()
            .name("berth-unpack".into())
            .spawn_scoped(scope, move || {
                let mut compression = Compression::None;
                let r = unpack_stream(
                    ChunkReader {
                        rx,
                        chunk: Bytes::new(),
                    },
                    job,
                    &mut compression,
                );
                (r, compression)
            })
            .expect("spawning the unpack thread");
        let (mut count, mut read_error, mut sink_error, mut forward) = (0u64, None, None, true);
        while let Some(item) = next() {
            match item {
                Ok(b) => {
                    count += b.len() as u64;
                    if let Some(h) = &mut hasher {
                        h.update(&b);
                    }
                    if let BlobSink::Ingest(w) = &mut sink
                        && let Err(e) = io::Write::write_all(w, &b)
                    {
                        sink_error = Some(e);
                        break;
                    }
                    if forward && tx.send(b).is_err() {
                        forward = false; // the unpacker stopped; keep hashing
                    }
                }
                Err(e) => {
                    read_error = Some(error_chain(&e));
                    break;
                }
            }
        }
        drop(tx);
        let (result, compression) = unpacker.join().expect("the unpack thread does not panic");
        (result, compression, count, read_error, sink_error)
    });
    if let Some(detail) = read_error {
        return Err(LayerError::Interrupted {
            layer,
            received: count,
            size: job.desc.size,
            detail,
        });
    }
    if let Some(e) = sink_error {
        return Err(LayerError::Read { layer, source: e });
    }
    match sink {
        BlobSink::Ingest(w) => w.commit().map_err(|source| match source {
            ContentError::DigestMismatch { actual, .. } => LayerError::DigestMismatch {
                layer: layer.clone(),
                actual,
            },
            ContentError::SizeMismatch {
                actual, expected, ..
            } if actual < expected => LayerError::Interrupted {
                layer: layer.clone(),
                received: actual,
                size: expected,
                detail: "the stream ended early".into(),
            },
            source => LayerError::Content {
                layer: layer.clone(),
                source,
            },
        })?,
        BlobSink::Verify(expected, size) => {
            let actual = hasher.expect("set for Verify").finish();
            if actual != expected {
                return Err(LayerError::DigestMismatch { layer, actual });
            }
            if count != size {
                return Err(LayerError::Content {
                    layer,
                    source: ContentError::SizeMismatch {
                        digest: expected,
                        expected: size,
                        actual: count,
                    },
                });
            }
        }
        BlobSink::Trusted => {}
    }
    result.map_err(|e| match e {
        StreamError::Decompress(source) => LayerError::Decompress {
            layer: layer.clone(),
            compression,
            source,
        },
        StreamError::Unpack(source) => LayerError::Unpack {
            layer: layer.clone(),
            source,
        },
        StreamError::DiffId(actual) => LayerError::DiffId {
            layer: layer.clone(),
            expected: job.diff_id.clone(),
            actual,
        },
    })
}

enum StreamError {
    Decompress(io::Error),
    Unpack(UnpackError),
    DiffId(Digest),
}

fn unpack_stream(
    mut input: impl Read,
    job: &LayerJob,
    compression: &mut Compression,
) -> Result<LayerOutcome, StreamError> {
    let head = read_head(&mut input, 6).map_err(StreamError::Decompress)?;
    *compression = Compression::sniff(&head);
    if Some(*compression) != Compression::from_media_type(&job.desc.media_type) {
        tracing::debug!(layer = %job.desc.digest, media_type = %job.desc.media_type, sniffed = ?compression,
            "layer compression differs from its media type; using what the bytes show");
    }
    let raw = BufReader::with_capacity(BUF, io::Cursor::new(head).chain(input));
    let decoder: Box<dyn Read + '_> = match compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(raw).map_err(StreamError::Decompress)?,
        ),
        Compression::None => Box::new(raw),
    };
    let mut diff =
        BufReader::with_capacity(BUF, HashingReader::new(decoder, job.diff_id.algorithm()));
    let stats = match &job.snapshot {
        Some(dir) => Some(
            unpack::unpack(&mut diff, dir, &job.limits).map_err(|e| match e {
                // A read error inside the tar parser is a decompression error.
                UnpackError::Tar(io)
                    if io.kind() != io::ErrorKind::UnexpectedEof && !is_tar_format(&io) =>
                {
                    StreamError::Decompress(io)
                }
                e => StreamError::Unpack(e),
            })?,
        ),
        None => None,
    };
    io::copy(&mut diff, &mut io::sink()).map_err(StreamError::Decompress)?;
    let (actual, diff_size) = diff.into_inner().finish();
    if actual != job.diff_id {
        return Err(StreamError::DiffId(actual));
    }
    Ok(LayerOutcome { stats, diff_size })
}

/// Errors the tar parser raises about the archive format itself.
fn is_tar_format(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Other
        && e.get_ref()
            .is_some_and(|inner| inner.to_string().contains("archive"))
}

/// Reads up to `n` bytes (fewer only at end of stream), looping over short reads.
fn read_head(r: &mut impl Read, n: u64) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    r.take(n).read_to_end(&mut head)?;
    Ok(head)
}
