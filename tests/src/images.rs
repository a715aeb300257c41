//! OCI images built by tests from the host's static busybox.
//!
//! ```no_run
//! use berth_tests::images::{Compression, ImageBuilder, Layer};
//!
//! // A base layer with /bin/busybox and the chosen applets (as symlinks), /etc/passwd
//! // and /etc/group (root, nobody and any added users), /tmp (1777), PATH=/bin.
//! let image = ImageBuilder::busybox(&["sh", "httpd", "sleep", "cat", "wget"])
//!     .user_account("app", 1000, 1000)
//!     .layer(Layer::new().file("www/index.html", b"hello", 0o644).compression(Compression::Zstd))
//!     .layer(Layer::new().whiteout("etc/group"))
//!     .entrypoint(&["/bin/httpd", "-f", "-p", "8080", "-h", "/www"])
//!     .expose("8080/tcp")
//!     .user("app")
//!     .build();
//! image.write_layout(std::path::Path::new("/tmp/bA-layout"), "v1").unwrap();
//! ```
//!
//! Everything is deterministic (fixed mtimes, gzip header without time or name), so
//! two images built with the same base layer share that layer's blob and diffID.
//! Layers that cannot be pushed normally (a foreign layer whose blob the registry
//! must not have) are marked with [`Layer::foreign`]. Multi-platform indexes come
//! from [`IndexBuilder`]; `docker save` archives from [`BuiltImage::write_docker_archive`].

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

mod layouts;
pub use layouts::{BuiltIndex, IndexBuilder, tar_dir, write_docker_archive};

/// Media types used by the builder.
pub mod media_type {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// Docker v2 schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// OCI config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// Docker config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `tar+gzip`.
    Gzip,
    /// `tar+zstd`.
    Zstd,
    /// Plain `tar`.
    None,
}

/// One entry of a layer.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A directory.
    Dir {
        path: String,
        mode: u32,
        uid: u64,
        gid: u64,
    },
    /// A regular file.
    File {
        path: String,
        data: Vec<u8>,
        mode: u32,
        uid: u64,
        gid: u64,
        xattrs: Vec<(String, Vec<u8>)>,
    },
    /// A symbolic link.
    Symlink { path: String, target: String },
    /// A hard link to an earlier entry.
    Hardlink { path: String, target: String },
    /// A character device.
    Char {
        path: String,
        major: u32,
        minor: u32,
        mode: u32,
    },
    /// A FIFO.
    Fifo { path: String, mode: u32 },
    /// An OCI whiteout (`.wh.<name>`) deleting `path` from lower layers.
    Whiteout { path: String },
    /// An opaque-directory marker (`<dir>/.wh..wh..opq`).
    Opaque { dir: String },
}

/// A layer under construction.
#[derive(Debug, Clone)]
pub struct Layer {
    entries: Vec<Entry>,
    compression: Compression,
    media_type: Option<String>,
    urls: Vec<String>,
    foreign: bool,
}

impl Default for Layer {
    fn default() -> Layer {
        Layer {
            entries: Vec::new(),
            compression: Compression::Gzip,
            media_type: None,
            urls: Vec::new(),
            foreign: false,
        }
    }
}

impl Layer {
    /// An empty gzip layer.
    pub fn new() -> Layer {
        Layer::default()
    }
    /// Sets the compression.
    pub fn compression(mut self, c: Compression) -> Layer {
        self.compression = c;
        self
    }
    /// Overrides the layer's media type in the manifest.
    pub fn media_type(mut self, t: &str) -> Layer {
        self.media_type = Some(t.to_owned());
        self
    }
    /// Adds foreign-layer `urls` to the descriptor and does not push the blob.
    pub fn foreign(mut self, urls: &[&str]) -> Layer {
        self.urls = urls.iter().map(|s| s.to_string()).collect();
        self.foreign = true;
        self
    }
    /// Adds any entry.
    pub fn entry(mut self, e: Entry) -> Layer {
        self.entries.push(e);
        self
    }
    /// A root-owned directory.
    pub fn dir(self, path: &str, mode: u32) -> Layer {
        self.entry(Entry::Dir {
            path: path.into(),
            mode,
            uid: 0,
            gid: 0,
        })
    }
    /// A root-owned file.
    pub fn file(self, path: &str, data: &[u8], mode: u32) -> Layer {
        self.entry(Entry::File {
            path: path.into(),
            data: data.to_vec(),
            mode,
            uid: 0,
            gid: 0,
            xattrs: vec![],
        })
    }
    /// A file with an owner.
    pub fn file_owned(self, path: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> Layer {
        self.entry(Entry::File {
            path: path.into(),
            data: data.to_vec(),
            mode,
            uid,
            gid,
            xattrs: vec![],
        })
    }
    /// A symlink `path -> target`.
    pub fn symlink(self, path: &str, target: &str) -> Layer {
        self.entry(Entry::Symlink {
            path: path.into(),
            target: target.into(),
        })
    }
    /// A hard link `path` to the earlier entry `target`.
    pub fn hardlink(self, path: &str, target: &str) -> Layer {
        self.entry(Entry::Hardlink {
            path: path.into(),
            target: target.into(),
        })
    }
    /// A whiteout deleting `path`.
    pub fn whiteout(self, path: &str) -> Layer {
        self.entry(Entry::Whiteout { path: path.into() })
    }
    /// Marks `dir` opaque (hides everything lower layers have in it).
    pub fn opaque(self, dir: &str) -> Layer {
        self.entry(Entry::Opaque { dir: dir.into() })
    }
    /// A file of `size` pseudo-random (incompressible) bytes from `seed`.
    pub fn random_file(self, path: &str, size: usize, seed: u64) -> Layer {
        self.file(path, &random_bytes(size, seed), 0o644)
    }

    /// The uncompressed tar.
    pub fn tar(&self) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        b.mode(tar::HeaderMode::Deterministic);
        let header = |kind: tar::EntryType, mode: u32, uid: u64, gid: u64, size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_uid(uid);
            h.set_gid(gid);
            h.set_mtime(1_600_000_000);
            h.set_size(size);
            h
        };
        for e in &self.entries {
            let r = match e {
                Entry::Dir {
                    path,
                    mode,
                    uid,
                    gid,
                } => {
                    let mut h = header(tar::EntryType::Directory, *mode, *uid, *gid, 0);
                    b.append_data(
                        &mut h,
                        format!("{}/", path.trim_end_matches('/')),
                        io::empty(),
                    )
                }
                Entry::File {
                    path,
                    data,
                    mode,
                    uid,
                    gid,
                    xattrs,
                } => {
                    if !xattrs.is_empty() {
                        let pax: Vec<(String, &[u8])> = xattrs
                            .iter()
                            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
                            .collect();
                        b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))
                            .unwrap();
                    }
                    let mut h = header(
                        tar::EntryType::Regular,
                        *mode,
                        *uid,
                        *gid,
                        data.len() as u64,
                    );
                    b.append_data(&mut h, path, data.as_slice())
                }
                Entry::Symlink { path, target } => {
                    let mut h = header(tar::EntryType::Symlink, 0o777, 0, 0, 0);
                    b.append_link(&mut h, path, target)
                }
                Entry::Hardlink { path, target } => {
                    let mut h = header(tar::EntryType::Link, 0o644, 0, 0, 0);
                    b.append_link(&mut h, path, target)
                }
                Entry::Char {
                    path,
                    major,
                    minor,
                    mode,
                } => {
                    let mut h = header(tar::EntryType::Char, *mode, 0, 0, 0);
                    h.set_device_major(*major).unwrap();
                    h.set_device_minor(*minor).unwrap();
                    b.append_data(&mut h, path, io::empty())
                }
                Entry::Fifo { path, mode } => {
                    let mut h = header(tar::EntryType::Fifo, *mode, 0, 0, 0);
                    b.append_data(&mut h, path, io::empty())
                }
                Entry::Whiteout { path } => {
                    let (dir, name) = path
                        .rsplit_once('/')
                        .map_or(("", path.as_str()), |(d, n)| (d, n));
                    let p = if dir.is_empty() {
                        format!(".wh.{name}")
                    } else {
                        format!("{dir}/.wh.{name}")
                    };
                    let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, 0);
                    b.append_data(&mut h, p, io::empty())
                }
                Entry::Opaque { dir } => {
                    let mut h = header(tar::EntryType::Regular, 0o644, 0, 0, 0);
                    b.append_data(
                        &mut h,
                        format!("{}/.wh..wh..opq", dir.trim_end_matches('/')),
                        io::empty(),
                    )
                }
            };
            r.expect("building a test layer");
        }
        b.into_inner().expect("building a test layer")
    }
}

/// `size` deterministic pseudo-random bytes (xorshift64*), incompressible.
pub fn random_bytes(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(size);
    out
}

/// Compresses a tar as a layer blob.
pub fn compress(tar: &[u8], c: Compression) -> Vec<u8> {
    match c {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut w = flate2::GzBuilder::new()
                .mtime(0)
                .write(Vec::new(), flate2::Compression::fast());
            w.write_all(tar).unwrap();
            w.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(tar, 3).unwrap(),
    }
}

/// Image config settings.
#[derive(Debug, Clone, Default)]
struct Config {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Vec<String>,
    user: Option<String>,
    workdir: Option<String>,
    volumes: Vec<String>,
    exposed: Vec<String>,
    labels: BTreeMap<String, String>,
    stop_signal: Option<String>,
    healthcheck: Option<Value>,
}

/// Builds one single-platform image.
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    layers: Vec<Layer>,
    config: Config,
    os: String,
    architecture: String,
    variant: Option<String>,
    docker_media_types: bool,
    users: Vec<(String, u32, u32)>,
    busybox: Option<Vec<String>>,
    config_patch: Option<fn(&mut Value)>,
}

impl Default for ImageBuilder {
    fn default() -> ImageBuilder {
        ImageBuilder::new()
    }
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

impl ImageBuilder {
    /// An image with no layers yet, for the host's platform.
    pub fn new() -> ImageBuilder {
        ImageBuilder {
            layers: Vec::new(),
            config: Config::default(),
            os: "linux".into(),
            architecture: host_arch().into(),
            variant: (host_arch() == "arm64").then(|| "v8".to_owned()),
            docker_media_types: false,
            users: Vec::new(),
            busybox: None,
            config_patch: None,
        }
    }

    /// An image whose base layer holds the host's static `/bin/busybox` with the
    /// given applets linked in `/bin`, `/etc/passwd` and `/etc/group`, `/tmp` (1777),
    /// `/root`, and mount points `/proc`, `/sys`, `/dev`; `PATH=/bin:/usr/bin`.
    pub fn busybox(applets: &[&str]) -> ImageBuilder {
        let mut b = ImageBuilder::new();
        b.busybox = Some(applets.iter().map(|s| s.to_string()).collect());
        b.config.env.push("PATH=/bin:/usr/bin".into());
        b
    }

    /// Adds an account to the base layer's `/etc/passwd` and `/etc/group`.
    pub fn user_account(mut self, name: &str, uid: u32, gid: u32) -> ImageBuilder {
        self.users.push((name.into(), uid, gid));
        self
    }
    /// Adds a layer on top.
    pub fn layer(mut self, l: Layer) -> ImageBuilder {
        self.layers.push(l);
        self
    }
    /// Sets the entrypoint.
    pub fn entrypoint(mut self, v: &[&str]) -> ImageBuilder {
        self.config.entrypoint = Some(v.iter().map(|s| s.to_string()).collect());
        self
    }
    /// Sets the command.
    pub fn cmd(mut self, v: &[&str]) -> ImageBuilder {
        self.config.cmd = Some(v.iter().map(|s| s.to_string()).collect());
        self
    }
    /// Adds `KEY=value` to the environment.
    pub fn env(mut self, kv: &str) -> ImageBuilder {
        self.config.env.push(kv.into());
        self
    }
    /// Sets the user (`name`, `uid`, `uid:gid`).
    pub fn user(mut self, u: &str) -> ImageBuilder {
        self.config.user = Some(u.into());
        self
    }
    /// Sets the working directory.
    pub fn workdir(mut self, d: &str) -> ImageBuilder {
        self.config.workdir = Some(d.into());
        self
    }
    /// Declares a volume.
    pub fn volume(mut self, p: &str) -> ImageBuilder {
        self.config.volumes.push(p.into());
        self
    }
    /// Exposes a port (`80/tcp`).
    pub fn expose(mut self, p: &str) -> ImageBuilder {
        self.config.exposed.push(p.into());
        self
    }
    /// Adds a label.
    pub fn label(mut self, k: &str, v: &str) -> ImageBuilder {
        self.config.labels.insert(k.into(), v.into());
        self
    }
    /// Sets the stop signal.
    pub fn stop_signal(mut self, s: &str) -> ImageBuilder {
        self.config.stop_signal = Some(s.into());
        self
    }
    /// Sets a Docker healthcheck (`["CMD-SHELL", "..."]`, interval in seconds).
    pub fn healthcheck(mut self, test: &[&str], interval_secs: u64, retries: u64) -> ImageBuilder {
        self.config.healthcheck = Some(json!({
            "Test": test, "Interval": interval_secs * 1_000_000_000, "Retries": retries,
        }));
        self
    }
    /// Sets the platform (`linux`, `arm64`, `Some("v8")`).
    pub fn platform(mut self, os: &str, architecture: &str, variant: Option<&str>) -> ImageBuilder {
        self.os = os.into();
        self.architecture = architecture.into();
        self.variant = variant.map(str::to_owned);
        self
    }
    /// Edits the config JSON just before it is serialised (for hostile images, e.g. a
    /// wrong `rootfs.diff_ids`).
    pub fn config_patch(mut self, f: fn(&mut Value)) -> ImageBuilder {
        self.config_patch = Some(f);
        self
    }

    /// Uses Docker v2 schema 2 media types instead of OCI ones.
    pub fn docker_media_types(mut self) -> ImageBuilder {
        self.docker_media_types = true;
        self
    }

    fn base_layer(&self, applets: &[String]) -> Layer {
        let busybox = std::fs::read("/bin/busybox")
            .expect("the host's /bin/busybox (apt install busybox-static)");
        let mut passwd = String::from(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        );
        let mut group = String::from("root:x:0:\nnogroup:x:65534:\n");
        for (name, uid, gid) in &self.users {
            passwd.push_str(&format!(
                "{name}:x:{uid}:{gid}:{name}:/home/{name}:/bin/sh\n"
            ));
            group.push_str(&format!("{name}:x:{gid}:\n"));
        }
        let mut l = Layer::new()
            .dir("bin", 0o755)
            .file("bin/busybox", &busybox, 0o755)
            .dir("etc", 0o755)
            .file("etc/passwd", passwd.as_bytes(), 0o644)
            .file("etc/group", group.as_bytes(), 0o644)
            .dir("tmp", 0o1777)
            .dir("root", 0o700)
            .dir("proc", 0o555)
            .dir("sys", 0o555)
            .dir("dev", 0o755)
            .dir("home", 0o755);
        for a in applets {
            l = l.symlink(&format!("bin/{a}"), "busybox");
        }
        for (name, uid, gid) in &self.users {
            l = l.entry(Entry::Dir {
                path: format!("home/{name}"),
                mode: 0o755,
                uid: *uid as u64,
                gid: *gid as u64,
            });
        }
        l
    }

    /// Builds blobs, config and manifest.
    pub fn build(&self) -> BuiltImage {
        let mut layers: Vec<Layer> = Vec::new();
        if let Some(applets) = &self.busybox {
            layers.push(self.base_layer(applets));
        }
        layers.extend(self.layers.iter().cloned());
        let docker = self.docker_media_types;
        let built: Vec<BuiltLayer> = layers
            .iter()
            .map(|l| {
                let tar = l.tar();
                let blob = compress(&tar, l.compression);
                let media_type =
                    l.media_type
                        .clone()
                        .unwrap_or_else(|| match (docker, l.compression) {
                            (true, Compression::Gzip) => {
                                "application/vnd.docker.image.rootfs.diff.tar.gzip".into()
                            }
                            (true, Compression::None) => {
                                "application/vnd.docker.image.rootfs.diff.tar".into()
                            }
                            (_, Compression::Gzip) => {
                                "application/vnd.oci.image.layer.v1.tar+gzip".into()
                            }
                            (_, Compression::Zstd) => {
                                "application/vnd.oci.image.layer.v1.tar+zstd".into()
                            }
                            (false, Compression::None) => {
                                "application/vnd.oci.image.layer.v1.tar".into()
                            }
                        });
                BuiltLayer {
                    digest: sha256(&blob),
                    diff_id: sha256(&tar),
                    tar,
                    blob,
                    media_type,
                    urls: l.urls.clone(),
                    skip_push: l.foreign,
                }
            })
            .collect();
        let c = &self.config;
        let mut cfg = serde_json::Map::new();
        if let Some(e) = &c.entrypoint {
            cfg.insert("Entrypoint".into(), json!(e));
        }
        if let Some(e) = &c.cmd {
            cfg.insert("Cmd".into(), json!(e));
        }
        if !c.env.is_empty() {
            cfg.insert("Env".into(), json!(c.env));
        }
        if let Some(u) = &c.user {
            cfg.insert("User".into(), json!(u));
        }
        if let Some(w) = &c.workdir {
            cfg.insert("WorkingDir".into(), json!(w));
        }
        if !c.volumes.is_empty() {
            let v: BTreeMap<&str, Value> =
                c.volumes.iter().map(|p| (p.as_str(), json!({}))).collect();
            cfg.insert("Volumes".into(), json!(v));
        }
        if !c.exposed.is_empty() {
            let v: BTreeMap<&str, Value> =
                c.exposed.iter().map(|p| (p.as_str(), json!({}))).collect();
            cfg.insert("ExposedPorts".into(), json!(v));
        }
        if !c.labels.is_empty() {
            cfg.insert("Labels".into(), json!(c.labels));
        }
        if let Some(s) = &c.stop_signal {
            cfg.insert("StopSignal".into(), json!(s));
        }
        if let Some(h) = &c.healthcheck {
            cfg.insert("Healthcheck".into(), h.clone());
        }
        let mut config = json!({
            "created": "2026-01-01T00:00:00Z",
            "architecture": self.architecture,
            "os": self.os,
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": built.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
            "history": built.iter().map(|_| json!({"created": "2026-01-01T00:00:00Z", "created_by": "berth-tests"})).collect::<Vec<_>>(),
        });
        if let Some(v) = &self.variant {
            config["variant"] = json!(v);
        }
        if let Some(patch) = self.config_patch {
            patch(&mut config);
        }
        let config = serde_json::to_vec(&config).unwrap();
        let config_digest = sha256(&config);
        let (manifest_media_type, config_media_type) = if docker {
            (media_type::DOCKER_MANIFEST, media_type::DOCKER_CONFIG)
        } else {
            (media_type::OCI_MANIFEST, media_type::OCI_CONFIG)
        };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_media_type,
            "config": {"mediaType": config_media_type, "digest": config_digest, "size": config.len()},
            "layers": built.iter().map(|l| {
                let mut d = json!({"mediaType": l.media_type, "digest": l.digest, "size": l.blob.len()});
                if !l.urls.is_empty() {
                    d["urls"] = json!(l.urls);
                }
                d
            }).collect::<Vec<_>>(),
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        BuiltImage {
            manifest_digest: sha256(&manifest),
            manifest,
            manifest_media_type: manifest_media_type.into(),
            config_digest,
            config,
            layers: built,
            platform: (
                self.os.clone(),
                self.architecture.clone(),
                self.variant.clone(),
            ),
        }
    }
}

/// A built layer.
#[derive(Debug, Clone)]
pub struct BuiltLayer {
    /// Digest of the (compressed) blob.
    pub digest: String,
    /// Digest of the uncompressed tar.
    pub diff_id: String,
    /// The uncompressed tar.
    pub tar: Vec<u8>,
    /// The blob as pushed.
    pub blob: Vec<u8>,
    /// Its media type.
    pub media_type: String,
    /// Foreign URLs in its descriptor.
    pub urls: Vec<String>,
    /// Whether pushes leave this blob out.
    pub skip_push: bool,
}

/// A built image: every blob plus manifest and config.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The manifest bytes.
    pub manifest: Vec<u8>,
    /// Their digest.
    pub manifest_digest: String,
    /// The manifest media type.
    pub manifest_media_type: String,
    /// The config bytes.
    pub config: Vec<u8>,
    /// Their digest (the image id).
    pub config_digest: String,
    /// The layers, bottom first.
    pub layers: Vec<BuiltLayer>,
    /// `(os, architecture, variant)`.
    pub platform: (String, String, Option<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_deterministic_images_that_share_base_layers() {
        let a = ImageBuilder::busybox(&["sh"]).cmd(&["sh"]).build();
        let b = ImageBuilder::busybox(&["sh"])
            .layer(Layer::new().file("x", b"x", 0o644))
            .build();
        assert_eq!(a.layers[0].digest, b.layers[0].digest);
        assert_ne!(a.manifest_digest, b.manifest_digest);
        let again = ImageBuilder::busybox(&["sh"]).cmd(&["sh"]).build();
        assert_eq!(a.manifest_digest, again.manifest_digest);
        let zstd = Layer::new()
            .file("z", b"z", 0o644)
            .compression(Compression::Zstd);
        let z = ImageBuilder::new().layer(zstd).build();
        assert!(z.layers[0].media_type.ends_with("+zstd"));
        assert_eq!(&z.layers[0].blob[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    }

    #[test]
    fn writes_a_layout_skopeo_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let img = ImageBuilder::busybox(&["sh"]).build();
        img.write_layout(dir.path(), "v1").unwrap();
        img.write_layout(dir.path(), "v2").unwrap();
        let index: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
        if std::process::Command::new("skopeo")
            .arg("--version")
            .output()
            .is_ok()
        {
            let out = std::process::Command::new("skopeo")
                .arg("inspect")
                .arg(format!("oci:{}:v1", dir.path().display()))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
