//! A fault-injecting HTTP proxy to put in front of a registry.
//!
//! ```no_run
//! use berth_tests::proxy::{Auth, Proxy, Rule};
//! use berth_tests::registry::Registry;
//!
//! let registry = Registry::start().unwrap();
//! let proxy = Proxy::start(registry.addr()).unwrap();
//! // Flip a byte 100 bytes into one blob, once; cut another blob after 1 MiB.
//! proxy.add_rule(Rule::path_contains("sha256:aaaa").corrupt_at(100).once());
//! proxy.add_rule(Rule::path_contains("/blobs/").cut_after(1 << 20));
//! // Require basic credentials on /v2/ requests.
//! proxy.set_auth(Auth::Basic { user: "u".into(), password: "p".into() });
//! // References then use proxy.host() instead of registry.host().
//! for r in proxy.requests() {
//!     println!("{} {} {:?}", r.method, r.path, r.header("authorization"));
//! }
//! ```
//!
//! Each connection carries one request: the proxy answers with `Connection: close`,
//! forwards the request to the upstream with `Connection: close` and streams the
//! answer back, applying the first matching [`Rule`]. Every request's method, path and
//! headers are recorded. Bearer-token auth ([`Auth::Token`]) serves its own token
//! endpoint at `/token`, like Docker Hub's auth service. The listener thread stops and
//! the port closes when the value is dropped.

use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::registry::{header, parse_headers, read_head, read_head_lines};

/// What the proxy does to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Forward unchanged.
    Forward,
    /// Forward, then XOR the response body byte at `offset` with 0xff.
    CorruptAt(u64),
    /// Forward the headers and the first `n` body bytes, then close the connection.
    CutAfter(u64),
    /// Answer `307 Temporary Redirect` to `location` (a full URL; `{path}` is
    /// replaced by the request path).
    Redirect(String),
    /// Answer with this status and body, without contacting the upstream.
    Respond(u16, String),
    /// Wait this long before forwarding.
    Delay(Duration),
}

/// A fault rule: which requests, what to do, how often.
#[derive(Debug, Clone)]
pub struct Rule {
    method: Option<String>,
    path_contains: String,
    action: Action,
    remaining: Option<u32>,
}

impl Rule {
    /// Matches requests whose path contains `s`.
    pub fn path_contains(s: &str) -> Rule {
        Rule {
            method: None,
            path_contains: s.to_owned(),
            action: Action::Forward,
            remaining: None,
        }
    }
    /// Matches only this method (`GET`, `HEAD`).
    pub fn method(mut self, m: &str) -> Rule {
        self.method = Some(m.to_owned());
        self
    }
    /// Corrupts the body at `offset`.
    pub fn corrupt_at(mut self, offset: u64) -> Rule {
        self.action = Action::CorruptAt(offset);
        self
    }
    /// Cuts the connection after `n` body bytes.
    pub fn cut_after(mut self, n: u64) -> Rule {
        self.action = Action::CutAfter(n);
        self
    }
    /// Redirects to `location` (`{path}` expands to the request path).
    pub fn redirect(mut self, location: &str) -> Rule {
        self.action = Action::Redirect(location.to_owned());
        self
    }
    /// Answers `status` with `body`.
    pub fn respond(mut self, status: u16, body: &str) -> Rule {
        self.action = Action::Respond(status, body.to_owned());
        self
    }
    /// Delays the request.
    pub fn delay(mut self, d: Duration) -> Rule {
        self.action = Action::Delay(d);
        self
    }
    /// Applies to the first matching request only.
    pub fn once(self) -> Rule {
        self.times(1)
    }
    /// Applies to the first `n` matching requests.
    pub fn times(mut self, n: u32) -> Rule {
        self.remaining = Some(n);
        self
    }
}

/// Authentication the proxy demands on `/v2/` requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// None (default).
    None,
    /// HTTP basic with these credentials.
    Basic { user: String, password: String },
    /// Bearer tokens from `/token`, which hands out `token` to anyone (anonymous
    /// pulls, like Docker Hub) or, with `user`, only to basic credentials.
    Token {
        token: String,
        user: Option<(String, String)>,
    },
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header names (lower-cased) and values.
    pub headers: Vec<(String, String)>,
}

impl Recorded {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, &name.to_ascii_lowercase())
    }
}

#[derive(Debug)]
struct State {
    rules: Vec<Rule>,
    auth: Auth,
    requests: Vec<Recorded>,
    ignore_range: bool,
}

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy on a free loopback port in front of `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            rules: Vec::new(),
            auth: Auth::None,
            requests: Vec::new(),
            ignore_range: false,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("bA-proxy".into())
            .spawn(move || {
                while !sp.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let st = st.clone();
                            std::thread::spawn(move || {
                                let _ = serve(conn, upstream, addr, &st);
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2))
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })?;
        Ok(Proxy {
            addr,
            upstream,
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`, to use as the registry host in references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The upstream address.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Adds a rule (earlier rules win).
    pub fn add_rule(&self, rule: Rule) {
        self.state.lock().unwrap().rules.push(rule);
    }

    /// Removes every rule.
    pub fn clear_rules(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// Sets the authentication demanded.
    pub fn set_auth(&self, auth: Auth) {
        self.state.lock().unwrap().auth = auth;
    }

    /// Drops `Range` headers before forwarding, like a registry or CDN that ignores
    /// them (answers are then 200 with the whole body).
    pub fn set_ignore_range(&self, ignore: bool) {
        self.state.lock().unwrap().ignore_range = ignore;
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Forgets recorded requests.
    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(
    conn: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)
}

fn serve(
    conn: TcpStream,
    upstream: SocketAddr,
    me: SocketAddr,
    state: &Mutex<State>,
) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    let Some(lines) = read_head_lines(&mut reader)? else {
        return Ok(());
    };
    let mut parts = lines[0].split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let headers = parse_headers(&lines[1..]);
    let body_len: usize = header(&headers, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; body_len];
    reader.read_exact(&mut body)?;

    let (action, auth, ignore_range) = {
        let mut st = state.lock().unwrap();
        st.requests.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            headers: headers.clone(),
        });
        let auth = st.auth.clone();
        let mut action = Action::Forward;
        for r in st.rules.iter_mut() {
            let method_ok = r.method.as_deref().is_none_or(|m| m == method);
            if method_ok && path.contains(&r.path_contains) && r.remaining != Some(0) {
                if let Some(n) = &mut r.remaining {
                    *n -= 1;
                }
                action = r.action.clone();
                break;
            }
        }
        (action, auth, st.ignore_range)
    };

    let authorization = header(&headers, "authorization").unwrap_or("");
    let basic = |u: &str, p: &str| format!("Basic {}", base64(format!("{u}:{p}").as_bytes()));
    match &auth {
        Auth::None => {}
        Auth::Basic { user, password } => {
            if path.starts_with("/v2/") && authorization != basic(user, password) {
                let body =
                    br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
                return respond(
                    &mut conn,
                    401,
                    &[("WWW-Authenticate", r#"Basic realm="bA-proxy""#.into())],
                    body,
                );
            }
        }
        Auth::Token { token, user } => {
            if path.starts_with("/token") {
                if let Some((u, p)) = user
                    && authorization != basic(u, p)
                {
                    return respond(&mut conn, 401, &[], br#"{"details":"bad credentials"}"#);
                }
                let body =
                    format!(r#"{{"token":"{token}","access_token":"{token}","expires_in":300}}"#);
                return respond(
                    &mut conn,
                    200,
                    &[("Content-Type", "application/json".into())],
                    body.as_bytes(),
                );
            }
            if path.starts_with("/v2/") && authorization != format!("Bearer {token}") {
                let challenge = format!(r#"Bearer realm="http://{me}/token",service="bA-proxy""#);
                let body =
                    br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
                return respond(&mut conn, 401, &[("WWW-Authenticate", challenge)], body);
            }
        }
    }

    match &action {
        Action::Redirect(location) => {
            return respond(
                &mut conn,
                307,
                &[("Location", location.replace("{path}", &path))],
                b"",
            );
        }
        Action::Respond(status, body) => {
            return respond(
                &mut conn,
                *status,
                &[("Content-Type", "application/json".into())],
                body.as_bytes(),
            );
        }
        Action::Delay(d) => std::thread::sleep(*d),
        _ => {}
    }

    let mut up = TcpStream::connect(upstream)?;
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in &headers {
        if k != "connection"
            && k != "host"
            && k != "authorization"
            && !(ignore_range && k == "range")
        {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    req.push_str(&format!("Host: {upstream}\r\nConnection: close\r\n\r\n"));
    up.write_all(req.as_bytes())?;
    up.write_all(&body)?;
    let mut up_reader = BufReader::new(up);
    let Some((status, up_headers)) = read_head(&mut up_reader)? else {
        return Ok(());
    };
    let mut head = format!("HTTP/1.1 {status} X\r\n");
    for (k, v) in &up_headers {
        if k == "connection" {
            continue;
        }
        let v = if k == "location" {
            v.replace(&upstream.to_string(), &me.to_string())
        } else {
            v.clone()
        };
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    conn.write_all(head.as_bytes())?;
    if method == "HEAD" {
        return Ok(());
    }
    let mut buf = vec![0u8; 64 << 10];
    let mut sent: u64 = 0;
    loop {
        let n = up_reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = &mut buf[..n];
        match action {
            Action::CorruptAt(off)
                if (status == 200 || status == 206) && off >= sent && off < sent + n as u64 =>
            {
                chunk[(off - sent) as usize] ^= 0xff;
            }
            Action::CutAfter(limit)
                if (status == 200 || status == 206) && sent + n as u64 > limit =>
            {
                let keep = (limit - sent) as usize;
                conn.write_all(&chunk[..keep])?;
                conn.flush()?;
                // An abrupt end: reset rather than a clean close where possible.
                let linger = libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                };
                let _ =
                    nix::sys::socket::setsockopt(&conn, nix::sys::socket::sockopt::Linger, &linger);
                let _ = conn.shutdown(Shutdown::Both);
                return Ok(());
            }
            _ => {}
        }
        conn.write_all(chunk)?;
        sent += n as u64;
    }
    conn.flush()
}

/// Standard base64 with padding (for basic credentials).
pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_base64() {
        assert_eq!(super::base64(b"u:p"), "dTpw");
        assert_eq!(super::base64(b"hub:secret"), "aHViOnNlY3JldA==");
        assert_eq!(super::base64(b"ab"), "YWI=");
    }
}
