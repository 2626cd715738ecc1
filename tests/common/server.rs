//! A gigatile server started in process on 127.0.0.1:0 over a temporary data folder, and a
//! small HTTP/1.1 client on raw TCP (so tests can also send what real clients should not).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use gigatile::config::{Settings, SettingsLayer};

use super::TempDir;

/// A running server; stopped (gracefully) on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    data: Option<TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server whose data folder is filled by `fill` first.
    pub fn start(name: &str, layer: SettingsLayer, fill: impl FnOnce(&TempDir)) -> TestServer {
        let data = TempDir::new(name);
        fill(&data);
        TestServer::start_in(data, layer)
    }

    /// Stops this server and starts another over the same data folder.
    pub fn restart(mut self, layer: SettingsLayer) -> TestServer {
        self.stop();
        let data = self.data.take().expect("a data folder");
        TestServer::start_in(data, layer)
    }

    fn start_in(data: TempDir, layer: SettingsLayer) -> TestServer {
        let settings = Settings::resolve(SettingsLayer {
            data_dir: Some(data.0.clone()),
            warmup_levels: Some(layer.warmup_levels.unwrap_or(0)),
            ..layer
        })
        .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                gigatile::server::run(settings, listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        TestServer {
            addr,
            data: Some(data),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A path inside the data folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.data.as_ref().expect("a data folder").path(name)
    }

    /// Sends a request and reads the whole response.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        request_at(self.addr, method, path, headers, body)
    }

    /// Sends `bytes` as they are (requests of the test's making, malformed ones included) on
    /// one connection and reads every response until the server closes it (none when it
    /// closed without answering).
    pub fn raw(&self, bytes: &[u8]) -> Vec<Response> {
        self.raw_on(bytes, false)
    }

    /// [`TestServer::raw`], then closes the sending side at once, as a client that gives up
    /// mid-request does.
    pub fn raw_then_close(&self, bytes: &[u8]) -> Vec<Response> {
        self.raw_on(bytes, true)
    }

    fn raw_on(&self, bytes: &[u8], close: bool) -> Vec<Response> {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        // The server may answer and close before it has read everything.
        let _ = stream.write_all(bytes);
        if close {
            let _ = stream.shutdown(std::net::Shutdown::Write);
        }
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        Response::parse_all(&raw)
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// GETs JSON, asserting a 200.
    pub fn json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()
    }

    /// Polls `meta` of an image until its status is `ready` (or panics after `secs`).
    pub fn wait_ready(&self, id: &str, secs: u64) -> serde_json::Value {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            let r = self.get(&format!("/api/images/{}/meta", encode(id)));
            if r.status == 200 && r.json()["status"] == "ready" {
                return r.json();
            }
            assert!(
                Instant::now() < until,
                "{id} not ready: {} {}",
                r.status,
                r.text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls until `check` holds for the image list (or panics after `secs`).
    pub fn wait_list(
        &self,
        secs: u64,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            let list = self.json("/api/images");
            if check(&list) {
                return list;
            }
            assert!(Instant::now() < until, "list never matched: {list}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The value of a counter or gauge in `/metrics`.
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").text();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in {text}"))
    }

    /// Stops the server and waits for it.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Percent-encodes an id into one path segment (`/` as `%2F`), as the server emits it.
/// Sends one request on a fresh connection to any server at `addr` and reads the answer.
pub fn request_at(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    Response::read(&mut stream, method == "HEAD")
}

/// The ids of an `/api/images` answer, in order.
pub fn ids(list: &serde_json::Value) -> Vec<&str> {
    list.as_array()
        .expect("a JSON array")
        .iter()
        .map(|e| e["id"].as_str().expect("an id"))
        .collect()
}

pub fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn read(stream: &mut TcpStream, head_only: bool) -> Response {
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no HTTP response: {:?}", String::from_utf8_lossy(&raw)));
        let Response {
            status, headers, ..
        } = Response::read_head(&raw[..split]);
        let mut body = raw[split + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        if chunked && !head_only {
            body = dechunk(&body);
        }
        Response {
            status,
            headers,
            body,
        }
    }

    /// The responses in `raw`, one after another, each delimited by its `Content-Length` or
    /// chunked encoding (a response with neither ends the list: its body runs to the end).
    pub fn parse_all(mut raw: &[u8]) -> Vec<Response> {
        let mut all = Vec::new();
        while let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let mut response = Response::read_head(&raw[..split]);
            let rest = &raw[split + 4..];
            let length = response
                .header("content-length")
                .and_then(|v| v.parse::<usize>().ok());
            let chunked = response
                .header("transfer-encoding")
                .is_some_and(|v| v.contains("chunked"));
            let used = match (length, chunked) {
                (Some(n), false) => n.min(rest.len()),
                (_, true) => {
                    let (body, used) = dechunk_counted(rest);
                    response.body = body;
                    all.push(response);
                    raw = &rest[used..];
                    continue;
                }
                _ => rest.len(),
            };
            response.body = rest[..used].to_vec();
            all.push(response);
            raw = &rest[used..];
        }
        all
    }

    fn read_head(head: &[u8]) -> Response {
        let head = String::from_utf8_lossy(head).into_owned();
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Response {
            status,
            headers,
            body: Vec::new(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Asserts an error response: the status, a JSON body with `code`, and no server path.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{}",
            self.text()
        );
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert!(body["error"].is_string(), "{body}");
        assert!(
            !self.text().contains("/tmp/"),
            "a server path leaked: {}",
            self.text()
        );
    }
}

fn dechunk(data: &[u8]) -> Vec<u8> {
    dechunk_counted(data).0
}

/// A chunked body's bytes, and how many bytes of `data` it took (final CRLF included).
fn dechunk_counted(data: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(end) = data[at..].windows(2).position(|w| w == b"\r\n") {
        let line = std::str::from_utf8(&data[at..at + end]).unwrap();
        let size = usize::from_str_radix(line.trim(), 16).unwrap();
        at += end + 2;
        if size == 0 {
            return (out, (at + 2).min(data.len()));
        }
        out.extend_from_slice(&data[at..at + size]);
        at += size + 2;
    }
    (out, data.len())
}

/// A multipart/form-data body with a file and text fields; returns the content type and body.
pub fn multipart(file_name: &str, file: &[u8], fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "gigatile-test-boundary-7d3f";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
