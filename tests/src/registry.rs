//! A real OCI registry for tests: Debian's `docker-registry` on a free loopback port.
//!
//! ```no_run
//! use berth_tests::images::ImageBuilder;
//! use berth_tests::registry::Registry;
//!
//! let registry = Registry::start().unwrap();
//! let image = ImageBuilder::busybox(&["sh", "sleep"]).cmd(&["sleep", "60"]).build();
//! registry.push(&image, "demo/sleeper:v1").unwrap();
//! let reference = registry.reference("demo/sleeper:v1"); // "127.0.0.1:PORT/demo/sleeper:v1"
//! # let _ = reference;
//! ```
//!
//! Debian's `/etc/docker/registry/config.yml` cannot be used (it listens on every
//! interface and enables htpasswd auth), so each instance gets its own config in a
//! temporary directory holding its storage too. The registry is stopped by PID when
//! the value is dropped, and the directory removed.
//!
//! Images are pushed over the registry's HTTP API by [`Registry::push`] (monolithic
//! blob uploads, then manifests), which also takes hand-made manifests that `skopeo`
//! would refuse; [`Registry::push_with_skopeo`] pushes an OCI layout with `skopeo copy`.
//! The small HTTP/1.1 client used for this ([`http`]) is public for tests that want
//! to talk to a registry or proxy directly.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::images::{BuiltImage, BuiltIndex};

/// A running `docker-registry`.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

/// Registry settings beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Regular expressions of foreign-layer URLs the registry accepts in manifests
    /// (`validation.manifests.urls.allow`); by default none are.
    pub allow_foreign_urls: Vec<String>,
}

impl Registry {
    /// Starts a registry with default settings.
    pub fn start() -> io::Result<Registry> {
        Registry::start_with(&RegistryOptions::default())
    }

    /// Starts a registry, retrying on another port if the chosen one was taken.
    pub fn start_with(options: &RegistryOptions) -> io::Result<Registry> {
        let mut last = None;
        for _ in 0..5 {
            match Registry::try_start(options) {
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn try_start(options: &RegistryOptions) -> io::Result<Registry> {
        let dir = tempfile::Builder::new().prefix("bA-registry-").tempdir()?;
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  cache:\n    blobdescriptor: inmemory\n\
             http:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if !options.allow_foreign_urls.is_empty() {
            config.push_str("validation:\n  manifests:\n    urls:\n      allow:\n");
            for re in &options.allow_foreign_urls {
                config.push_str(&format!("        - '{re}'\n"));
            }
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot start docker-registry (apt install docker-registry): {e}"),
                )
            })?;
        let mut reg = Registry { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = reg.child.try_wait()? {
                let log = std::fs::read_to_string(reg.dir.path().join("registry.log"))
                    .unwrap_or_default();
                return Err(io::Error::other(format!(
                    "docker-registry exited ({status}): {log}"
                )));
            }
            if let Ok(r) = http(addr, "GET", "/v2/", &[], b"")
                && r.status == 200
            {
                return Ok(reg);
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "docker-registry did not become ready",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The registry's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`, as written in image references and `--insecure-registry`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `127.0.0.1:PORT/<repo_tag>`.
    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.addr)
    }

    /// The registry's storage directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Pushes an image as `repo:tag` (or `repo@digest`-less `repo` with the tag after
    /// the last colon).
    pub fn push(&self, image: &BuiltImage, repo_tag: &str) -> io::Result<()> {
        let (repo, tag) = split_repo_tag(repo_tag);
        self.push_image_blobs(image, repo)?;
        self.put_manifest(repo, tag, &image.manifest_media_type, &image.manifest)
    }

    /// Pushes a multi-platform index and its images as `repo:tag`.
    pub fn push_index(&self, index: &BuiltIndex, repo_tag: &str) -> io::Result<()> {
        let (repo, tag) = split_repo_tag(repo_tag);
        for image in &index.images {
            self.push_image_blobs(image, repo)?;
            self.put_manifest(
                repo,
                &image.manifest_digest,
                &image.manifest_media_type,
                &image.manifest,
            )?;
        }
        self.put_manifest(repo, tag, &index.media_type, &index.bytes)
    }

    fn push_image_blobs(&self, image: &BuiltImage, repo: &str) -> io::Result<()> {
        self.push_blob(repo, &image.config_digest, &image.config)?;
        for layer in &image.layers {
            if !layer.skip_push {
                self.push_blob(repo, &layer.digest, &layer.blob)?;
            }
        }
        Ok(())
    }

    /// Uploads one blob (monolithic upload), unless the registry has it.
    pub fn push_blob(&self, repo: &str, digest: &str, bytes: &[u8]) -> io::Result<()> {
        let head = http(
            self.addr,
            "HEAD",
            &format!("/v2/{repo}/blobs/{digest}"),
            &[],
            b"",
        )?;
        if head.status == 200 {
            return Ok(());
        }
        let start = http(
            self.addr,
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            b"",
        )?;
        if start.status != 202 {
            return Err(io::Error::other(format!(
                "blob upload start: HTTP {}",
                start.status
            )));
        }
        let location = start
            .header("location")
            .ok_or_else(|| io::Error::other("no upload location"))?;
        let path = location
            .strip_prefix(&format!("http://{}", self.addr))
            .unwrap_or(location);
        let sep = if path.contains('?') { '&' } else { '?' };
        let put = http(
            self.addr,
            "PUT",
            &format!("{path}{sep}digest={digest}"),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        )?;
        if put.status != 201 {
            return Err(io::Error::other(format!(
                "blob upload of {digest}: HTTP {} {}",
                put.status,
                String::from_utf8_lossy(&put.body)
            )));
        }
        Ok(())
    }

    /// Puts a manifest (or index) under a tag or digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        tag_or_digest: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> io::Result<()> {
        let r = http(
            self.addr,
            "PUT",
            &format!("/v2/{repo}/manifests/{tag_or_digest}"),
            &[("Content-Type", media_type)],
            bytes,
        )?;
        if r.status != 201 {
            return Err(io::Error::other(format!(
                "manifest put {repo}:{tag_or_digest}: HTTP {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )));
        }
        Ok(())
    }

    /// Deletes a blob from the registry's storage (the registry must allow deletes;
    /// this one does).
    pub fn delete_blob(&self, repo: &str, digest: &str) -> io::Result<()> {
        let r = http(
            self.addr,
            "DELETE",
            &format!("/v2/{repo}/blobs/{digest}"),
            &[],
            b"",
        )?;
        if r.status != 202 {
            return Err(io::Error::other(format!("blob delete: HTTP {}", r.status)));
        }
        Ok(())
    }

    /// Pushes `layout_dir:layout_tag` (an OCI layout) to `repo_tag` with skopeo.
    pub fn push_with_skopeo(
        &self,
        layout_dir: &Path,
        layout_tag: &str,
        repo_tag: &str,
    ) -> io::Result<()> {
        let out = Command::new("skopeo")
            .args(["copy", "-q", "--all", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{layout_tag}", layout_dir.display()))
            .arg(format!("docker://{}", self.reference(repo_tag)))
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "skopeo copy failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn split_repo_tag(repo_tag: &str) -> (&str, &str) {
    let slash = repo_tag.rfind('/').map_or(0, |i| i + 1);
    match repo_tag[slash..].rfind(':') {
        Some(i) => (&repo_tag[..slash + i], &repo_tag[slash + i + 1..]),
        None => (repo_tag, "latest"),
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; callers retry on a race).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// An HTTP response read by [`http`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no response"))?;
    let head_only = method == "HEAD" || status == 204 || status == 304;
    let body = if head_only {
        Vec::new()
    } else {
        read_body(&mut r, &headers)?
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Header names (lower-cased) and values.
pub type Headers = Vec<(String, String)>;

/// Reads a response status line and headers; `None` at a clean end of stream.
pub(crate) fn read_head(r: &mut impl BufRead) -> io::Result<Option<(u16, Headers)>> {
    let Some(lines) = read_head_lines(r)? else {
        return Ok(None);
    };
    let first = &lines[0];
    let status = first
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {first:?}"),
            )
        })?;
    Ok(Some((status, parse_headers(&lines[1..]))))
}

/// The lines of a message head, without the empty line; `None` at end of stream.
pub(crate) fn read_head_lines(r: &mut impl BufRead) -> io::Result<Option<Vec<String>>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return if lines.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            return Ok(Some(lines));
        }
        lines.push(line);
        if lines.len() > 200 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "header too long",
            ));
        }
    }
}

pub(crate) fn parse_headers(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect()
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn read_body(r: &mut impl BufRead, headers: &[(String, String)]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if header(headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if n == 0 {
                let mut crlf = String::new();
                r.read_line(&mut crlf)?;
                return Ok(body);
            }
            let start = body.len();
            body.resize(start + n, 0);
            r.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
        }
    }
    match header(headers, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(n) => {
            body.resize(n, 0);
            r.read_exact(&mut body)?;
        }
        None => {
            r.read_to_end(&mut body)?;
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_repo_and_tag() {
        assert_eq!(split_repo_tag("a/b:v1"), ("a/b", "v1"));
        assert_eq!(split_repo_tag("a/b"), ("a/b", "latest"));
    }
}
