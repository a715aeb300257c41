//! Pull progress: events, a sink to send them to, and a renderer for the CLI.
//!
//! The daemon streams [`ProgressEvent`]s as JSON lines (`serde_json::to_string`); the
//! CLI feeds each line back into a [`ProgressRenderer`], which draws per-layer bytes
//! and rate on a terminal (redrawing its block of lines in place) and writes one plain
//! line per state change otherwise (logs, pipes, CI).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_registry::Digest;
use serde::{Deserialize, Serialize};

/// Minimum time between two byte-count events of one layer.
const BYTES_EVERY: Duration = Duration::from_millis(100);

/// A layer as announced when the manifest is resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// The layer blob's digest.
    pub digest: Digest,
    /// Its compressed size.
    pub size: u64,
}

/// One step of a pull or load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// The manifest is known: what will be fetched.
    Resolved {
        /// The reference being pulled.
        reference: String,
        /// The platform manifest's digest.
        manifest_digest: Digest,
        /// The platform chosen.
        platform: String,
        /// Every layer, bottom first.
        layers: Vec<LayerInfo>,
    },
    /// Bytes of a layer received so far.
    LayerBytes {
        /// The layer.
        digest: Digest,
        /// Bytes received.
        downloaded: u64,
        /// Bytes expected.
        total: u64,
    },
    /// The layer was already present (blob and snapshot).
    LayerCached {
        /// The layer.
        digest: Digest,
    },
    /// The layer is downloaded, verified and unpacked.
    LayerDone {
        /// The layer.
        digest: Digest,
    },
    /// The image is stored under its reference.
    Finished {
        /// The reference.
        reference: String,
        /// The platform manifest's digest.
        manifest_digest: Digest,
        /// The image id (config digest).
        image_id: Digest,
        /// Total content size (manifest, config, layers).
        size: u64,
    },
}

type Sink = dyn Fn(ProgressEvent) + Send + Sync;

/// Where progress events go. Cheap to clone; `Progress::none()` drops them.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<Sink>>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(sink)"
        } else {
            "Progress(none)"
        })
    }
}

impl Progress {
    /// Discards events.
    pub fn none() -> Progress {
        Progress(None)
    }

    /// Calls `f` with every event (from any thread).
    pub fn new(f: impl Fn(ProgressEvent) + Send + Sync + 'static) -> Progress {
        Progress(Some(Arc::new(f)))
    }

    /// Sends every event into a channel; a closed channel drops them.
    pub fn channel(tx: tokio::sync::mpsc::UnboundedSender<ProgressEvent>) -> Progress {
        Progress::new(move |e| {
            let _ = tx.send(e);
        })
    }

    pub(crate) fn emit(&self, e: ProgressEvent) {
        if let Some(f) = &self.0 {
            f(e);
        }
    }

    /// A byte counter for one layer that emits at most every 100 ms, and always the
    /// final count.
    pub(crate) fn layer_bytes(
        &self,
        digest: Digest,
        total: u64,
    ) -> impl Fn(u64) + Send + Sync + 'static {
        let this = self.clone();
        let last = Mutex::new(None::<Instant>);
        move |downloaded| {
            if this.0.is_none() {
                return;
            }
            let now = Instant::now();
            let mut last = last.lock().expect("not poisoned");
            let due =
                last.is_none_or(|t| now.duration_since(t) >= BYTES_EVERY) || downloaded >= total;
            if due {
                *last = Some(now);
                drop(last);
                this.emit(ProgressEvent::LayerBytes {
                    digest: digest.clone(),
                    downloaded,
                    total,
                });
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LayerState {
    Waiting,
    Downloading,
    Cached,
    Done,
}

#[derive(Debug)]
struct Line {
    digest: Digest,
    total: u64,
    downloaded: u64,
    started: Option<Instant>,
    state: LayerState,
}

/// Renders progress events for a person.
#[derive(Debug)]
pub struct ProgressRenderer<W: Write> {
    out: W,
    tty: bool,
    lines: Vec<Line>,
    drawn: usize,
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

impl<W: Write> ProgressRenderer<W> {
    /// A renderer writing to `out`; `tty` selects the redrawing display.
    pub fn new(out: W, tty: bool) -> ProgressRenderer<W> {
        ProgressRenderer {
            out,
            tty,
            lines: Vec::new(),
            drawn: 0,
        }
    }

    /// Handles an event now.
    pub fn event(&mut self, e: &ProgressEvent) -> io::Result<()> {
        self.event_at(e, Instant::now())
    }

    /// Handles an event as if at `now` (for tests).
    pub fn event_at(&mut self, e: &ProgressEvent, now: Instant) -> io::Result<()> {
        match e {
            ProgressEvent::Resolved {
                reference,
                manifest_digest,
                platform,
                layers,
            } => {
                self.lines = layers
                    .iter()
                    .map(|l| Line {
                        digest: l.digest.clone(),
                        total: l.size,
                        downloaded: 0,
                        started: None,
                        state: LayerState::Waiting,
                    })
                    .collect();
                self.drawn = 0;
                let total: u64 = layers.iter().map(|l| l.size).sum();
                writeln!(
                    self.out,
                    "Pulling {reference} ({platform}, manifest {}): {} layers, {}",
                    manifest_digest.short(),
                    layers.len(),
                    human(total)
                )?;
            }
            ProgressEvent::LayerBytes {
                digest,
                downloaded,
                total,
            } => {
                if let Some(l) = self.line(digest) {
                    l.started.get_or_insert(now);
                    l.downloaded = *downloaded;
                    l.total = *total;
                    l.state = LayerState::Downloading;
                }
            }
            ProgressEvent::LayerCached { digest } => {
                if let Some(l) = self.line(digest) {
                    l.state = LayerState::Cached;
                }
                if !self.tty {
                    writeln!(self.out, "{}: already exists", digest.short())?;
                }
            }
            ProgressEvent::LayerDone { digest } => {
                let mut plain = None;
                if let Some(l) = self.line(digest) {
                    l.state = LayerState::Done;
                    l.downloaded = l.total;
                    plain = Some(format!(
                        "{}: pull complete ({})",
                        digest.short(),
                        human(l.total)
                    ));
                }
                if !self.tty {
                    writeln!(
                        self.out,
                        "{}",
                        plain.unwrap_or_else(|| format!("{}: pull complete", digest.short()))
                    )?;
                }
            }
            ProgressEvent::Finished {
                reference,
                manifest_digest,
                image_id,
                size,
            } => {
                if self.tty {
                    self.redraw(now)?;
                    self.drawn = 0;
                }
                writeln!(self.out, "Digest: {manifest_digest}")?;
                writeln!(
                    self.out,
                    "Pulled {reference} (image {}, {})",
                    image_id.short(),
                    human(*size)
                )?;
                return self.out.flush();
            }
        }
        if self.tty && !self.lines.is_empty() {
            self.redraw(now)?;
        }
        self.out.flush()
    }

    fn line(&mut self, digest: &Digest) -> Option<&mut Line> {
        self.lines.iter_mut().find(|l| &l.digest == digest)
    }

    fn redraw(&mut self, now: Instant) -> io::Result<()> {
        if self.drawn > 0 {
            write!(self.out, "\x1b[{}A", self.drawn)?;
        }
        for l in &self.lines {
            let status = match l.state {
                LayerState::Waiting => "Waiting".to_owned(),
                LayerState::Cached => "Already exists".to_owned(),
                LayerState::Done => format!("Pull complete {:>10}", human(l.total)),
                LayerState::Downloading => {
                    let secs = l
                        .started
                        .map_or(0.0, |s| now.duration_since(s).as_secs_f64());
                    let rate = if secs > 0.0 {
                        format!("{}/s", human((l.downloaded as f64 / secs) as u64))
                    } else {
                        String::new()
                    };
                    let pct = (l.downloaded * 100).checked_div(l.total).unwrap_or(100);
                    format!(
                        "Downloading {:>10}/{:<10} {pct:>3}% {rate}",
                        human(l.downloaded),
                        human(l.total)
                    )
                }
            };
            writeln!(self.out, "\x1b[2K{}: {status}", l.digest.short())?;
        }
        self.drawn = self.lines.len();
        Ok(())
    }

    /// The writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::sha256_of(&[n])
    }

    fn events() -> Vec<ProgressEvent> {
        vec![
            ProgressEvent::Resolved {
                reference: "127.0.0.1:5000/app:v1".into(),
                manifest_digest: d(0),
                platform: "linux/amd64".into(),
                layers: vec![
                    LayerInfo {
                        digest: d(1),
                        size: 2048,
                    },
                    LayerInfo {
                        digest: d(2),
                        size: 10 << 20,
                    },
                ],
            },
            ProgressEvent::LayerCached { digest: d(1) },
            ProgressEvent::LayerBytes {
                digest: d(2),
                downloaded: 5 << 20,
                total: 10 << 20,
            },
            ProgressEvent::LayerBytes {
                digest: d(2),
                downloaded: 10 << 20,
                total: 10 << 20,
            },
            ProgressEvent::LayerDone { digest: d(2) },
            ProgressEvent::Finished {
                reference: "127.0.0.1:5000/app:v1".into(),
                manifest_digest: d(0),
                image_id: d(3),
                size: (10 << 20) + 4096,
            },
        ]
    }

    #[test]
    fn events_are_json_lines() {
        let e = &events()[2];
        let json = serde_json::to_string(e).unwrap();
        assert!(
            json.starts_with(r#"{"event":"layer_bytes","digest":"sha256:"#),
            "{json}"
        );
        assert_eq!(&serde_json::from_str::<ProgressEvent>(&json).unwrap(), e);
    }

    #[test]
    fn plain_output_has_one_line_per_state_change() {
        let mut r = ProgressRenderer::new(Vec::new(), false);
        for e in events() {
            r.event(&e).unwrap();
        }
        let out = String::from_utf8(r.into_inner()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "{out}");
        assert!(
            lines[0].starts_with("Pulling 127.0.0.1:5000/app:v1 (linux/amd64"),
            "{out}"
        );
        assert_eq!(lines[1], format!("{}: already exists", d(1).short()));
        assert_eq!(
            lines[2],
            format!("{}: pull complete (10.0MiB)", d(2).short())
        );
        assert!(
            lines[4].starts_with("Pulled 127.0.0.1:5000/app:v1 (image "),
            "{out}"
        );
        assert!(!out.contains('\x1b'));
    }

    #[test]
    fn terminal_output_shows_bytes_and_rate_in_place() {
        let mut r = ProgressRenderer::new(Vec::new(), true);
        let t0 = Instant::now();
        let ev = events();
        r.event_at(&ev[0], t0).unwrap();
        r.event_at(&ev[1], t0).unwrap();
        r.event_at(
            &ProgressEvent::LayerBytes {
                digest: d(2),
                downloaded: 0,
                total: 10 << 20,
            },
            t0,
        )
        .unwrap();
        r.event_at(&ev[2], t0 + Duration::from_secs(1)).unwrap();
        let out = String::from_utf8(r.into_inner()).unwrap();
        assert!(out.contains("Already exists"), "{out}");
        assert!(
            out.contains("Downloading     5.0MiB/10.0MiB     50% 5.0MiB/s"),
            "{out}"
        );
        assert!(
            out.contains("\x1b[2A"),
            "redraws the two layer lines in place: {out:?}"
        );
    }

    #[test]
    fn byte_events_are_throttled() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let p = Progress::new(move |e| s.lock().unwrap().push(e));
        let f = p.layer_bytes(d(1), 1000);
        for i in 1..=1000 {
            f(i);
        }
        let seen = seen.lock().unwrap();
        assert!(seen.len() <= 3, "{}", seen.len());
        assert_eq!(
            seen.last(),
            Some(&ProgressEvent::LayerBytes {
                digest: d(1),
                downloaded: 1000,
                total: 1000
            })
        );
    }
}
