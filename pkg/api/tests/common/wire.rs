//! Raw-socket helpers for tests of the served API: a server on a loopback port, requests written
//! byte by byte, answers and SSE event ids read off the socket.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use astrolabe_api::{AppState, ServeOptions, router, serve};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// A bound on waits for something that should happen promptly.
pub const PROMPTLY: Duration = Duration::from_secs(10);

/// A served router; stops serving when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Serves the router over `state` on a loopback port with `options`.
pub async fn start(state: AppState, options: ServeOptions) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, router(state), options, stop.clone()));
    Server { addr, stop }
}

/// Options with these bounds.
pub fn options(header_read: Duration, idle: Duration, max_connections: usize) -> ServeOptions {
    ServeOptions {
        header_read_timeout: header_read,
        idle_timeout: idle,
        max_connections,
    }
}

/// A whole `GET path` request head.
pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// Connects to `addr` and writes `bytes`.
pub async fn send(addr: SocketAddr, bytes: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes.as_bytes()).await.unwrap();
    stream
}

/// How long until the server closes `stream` (reading and discarding what it sends); panics
/// past `bound`.
pub async fn closed_within(stream: &mut TcpStream, bound: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = vec![0_u8; 64 << 10];
    timeout(bound, async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the connection was still open after {bound:?}"));
    start.elapsed()
}

/// A response read off a socket: status, headers (lowercase names) and body.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body (by `Content-Length`).
    pub body: String,
}

impl Reply {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// Reads one response with a `Content-Length` body (or none) off `stream`.
pub async fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before a response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before the body's end");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    Reply {
        status,
        headers,
        body,
    }
}

/// Writes `request` on `stream` and reads the answer, within [`PROMPTLY`].
pub async fn ask(stream: &mut TcpStream, request: &str) -> Reply {
    stream.write_all(request.as_bytes()).await.unwrap();
    timeout(PROMPTLY, read_reply(stream))
        .await
        .unwrap_or_else(|_| panic!("no answer within {PROMPTLY:?}"))
}

/// Sends `request` (a whole request head) on a new connection and reads the answer.
pub async fn exchange(addr: SocketAddr, request: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    ask(&mut stream, request).await
}

/// The ids of SSE events read off a raw chunked response.
#[derive(Default)]
pub struct Events {
    text: String,
    /// The id of the last event read.
    pub last: u64,
}

impl Events {
    /// Reads the response head; asserts a 200.
    pub async fn read_head(&mut self, stream: &mut TcpStream) {
        let mut buf = [0_u8; 4096];
        while !self.text.contains("\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the response head");
            self.text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert!(self.text.starts_with("HTTP/1.1 200"), "{}", self.text);
        let end = self.text.find("\r\n\r\n").unwrap() + 4;
        self.text.drain(..end);
    }

    /// Reads until the event with id `id` arrived, within [`PROMPTLY`].
    pub async fn until(&mut self, stream: &mut TcpStream, id: u64) {
        let mut buf = vec![0_u8; 64 << 10];
        timeout(PROMPTLY, async {
            while self.last < id {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the stream ended");
                self.text.push_str(&String::from_utf8_lossy(&buf[..n]));
                while let Some(end) = self.text.find('\n') {
                    let line: String = self.text.drain(..=end).collect();
                    if let Some(v) = line.trim_end().strip_prefix("id: ") {
                        self.last = v.parse().unwrap();
                    }
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("event {id} not received within {PROMPTLY:?}"));
    }
}
