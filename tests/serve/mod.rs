//! `miniworker serve` (docs/spec.md section 9), driven as users drive it: the real
//! binary on loopback ports it picks itself, real WebSocket clients
//! (tokio-tungstenite), tar archives made from the fixture projects, and the
//! admin endpoints read over HTTP. Every server is started by its test and
//! killed by its process id when the test ends; every wait is bounded.

mod admission;
mod archives;
mod balanced;
mod deploy;
mod playground;
mod sessions;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::common::{PATIENCE, event_line};

/// A `miniworker serve` process.
pub struct Server {
    child: Child,
    /// The data listener's address.
    pub data: String,
    /// The admin listener's address.
    pub admin: String,
}

impl Server {
    /// Starts a server on loopback ports of its choosing, with `args`.
    pub fn start(args: &[&str]) -> Server {
        Server::start_on("127.0.0.1:0", "127.0.0.1:0", args)
    }

    /// Starts a server on these addresses, with `args`.
    pub fn start_on(listen: &str, admin: &str, args: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_miniworker"));
        command
            .args(["serve", "--listen", listen, "--admin", admin])
            .args(args);
        Server::spawn(command)
    }

    /// Starts `command`, a `miniworker serve` of some kind.
    pub fn spawn(mut command: Command) -> Server {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(PATIENCE)
            .expect("the server says where it listens");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        Server {
            child,
            data: v["listening"].as_str().expect("listening").into(),
            admin: v["admin"].as_str().expect("admin").into(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` to the server.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the process this test started.
        unsafe { libc::kill(self.pid(), signal) };
    }

    /// The exit code, once the process ended within `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// An admin endpoint: its status code and body.
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(&self.admin, path)
    }

    /// The value of one sample of `/metrics` (`name` with its labels), or 0.
    pub fn metric(&self, sample: &str) -> f64 {
        let (status, text) = self.admin_get("/metrics");
        assert_eq!(status, 200, "{text}");
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET over HTTP/1.1 with a fresh connection: status and body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("the admin listener answers");
    stream.set_read_timeout(Some(PATIENCE)).expect("a timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// A project as the server takes it: a tar archive and its hash.
#[derive(Clone)]
pub struct Archive {
    pub bytes: Vec<u8>,
    pub hash: String,
}

impl Archive {
    /// The tar archive of a project directory.
    pub fn of_dir(dir: &Path) -> Archive {
        let mut builder = tar::Builder::new(Vec::new());
        builder.append_dir_all(".", dir).expect("the project is archived");
        Archive::of_bytes(builder.into_inner().expect("the archive ends"))
    }

    pub fn of_bytes(bytes: Vec<u8>) -> Archive {
        let hash: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let hash = format!("sha256:{hash}");
        Archive { bytes, hash }
    }
}

/// The repository's examples/hello.
pub fn hello() -> Archive {
    Archive::of_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello"))
}

/// What a client received next.
#[derive(Debug)]
pub enum Received {
    /// A line of the stream (checked against the schema).
    Line(Value),
    /// The connection closed, with this close code.
    Closed(Option<u16>),
}

type Stream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client of one session.
pub struct Client {
    ws: Stream,
}

impl Client {
    /// Connects to a server's data address with subprotocol `miniworker.v1`, and a token in
    /// the Authorization header when given.
    pub async fn connect(data: &str, token: Option<&str>) -> Result<Client, tungstenite::Error> {
        Client::connect_with(data, token.map(|t| ("authorization", format!("Bearer {t}")))).await
    }

    /// Connects with one extra header.
    pub async fn connect_with(
        data: &str,
        header: Option<(&'static str, String)>,
    ) -> Result<Client, tungstenite::Error> {
        let mut request = format!("ws://{data}/v1/session").into_client_request()?;
        let headers = request.headers_mut();
        headers.insert(
            "sec-websocket-protocol",
            "miniworker.v1".parse().expect("a header"),
        );
        if let Some((name, value)) = header {
            headers.insert(name, value.parse().expect("a header"));
        }
        let (ws, _) = tokio::time::timeout(
            PATIENCE,
            tokio_tungstenite::connect_async_with_config(request, None, true),
        )
        .await
        .expect("the server answers the upgrade")?;
        Ok(Client { ws })
    }

    pub async fn send(&mut self, value: Value) {
        self.ws
            .send(Message::Text(value.to_string().into()))
            .await
            .expect("the frame is sent");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .expect("the frame is sent");
    }

    /// The next line or the close, within `PATIENCE`.
    pub async fn next(&mut self) -> Received {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("the server says something in time");
            match frame {
                Some(Ok(Message::Text(text))) => return Received::Line(event_line(text.as_str())),
                Some(Ok(Message::Close(frame))) => return Received::Closed(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Received::Closed(None),
            }
        }
    }

    /// The next line; panics on a close.
    pub async fn line(&mut self) -> Value {
        match self.next().await {
            Received::Line(v) => v,
            Received::Closed(code) => panic!("closed ({code:?}) where a line was expected"),
        }
    }

    /// Lines up to the close: the lines, and the close code.
    pub async fn rest(&mut self) -> (Vec<Value>, Option<u16>) {
        let mut lines = Vec::new();
        loop {
            match self.next().await {
                Received::Line(v) => lines.push(v),
                Received::Closed(code) => return (lines, code),
            }
        }
    }

    /// Sends `open` for `archive` (uploading it when asked); the first line
    /// after, `opened` when it worked.
    pub async fn open(&mut self, archive: &Archive, entry: Option<&str>) -> Received {
        let open = match entry {
            Some(entry) => json!({ "type": "open", "project": archive.hash, "entry": entry }),
            None => json!({ "type": "open", "project": archive.hash, "run": true }),
        };
        self.send(open).await;
        match self.next().await {
            Received::Line(v) if v["type"] == "need-project" => {
                self.send_binary(archive.bytes.clone()).await;
                self.next().await
            }
            other => other,
        }
    }

    /// A worker session on examples/hello, opened (the `opened` line).
    pub async fn open_hello(&mut self) -> Value {
        match self.open(&hello(), Some("workers/request/index.js")).await {
            Received::Line(v) if v["type"] == "opened" => v,
            other => panic!("expected opened, got {other:?}"),
        }
    }

    /// One round trip with the hello worker: `msg` out, its echo back.
    pub async fn round_trip(&mut self, msg: &str) {
        self.send(json!({ "type": "message", "data": { "msg": msg } }))
            .await;
        loop {
            let v = self.line().await;
            match v["type"].as_str() {
                Some("message") => {
                    assert_eq!(v["data"], json!({ "msg": "hello main", "echo": msg }));
                    return;
                }
                Some("console" | "ready") => continue,
                _ => panic!("expected the echo, got {v}"),
            }
        }
    }
}

/// Opens a worker session of `entry` on `archive` and expects it to fail
/// as a bad project: a `protocol-error` saying `why`, then `exit` with code
/// 2, then close 1000.
pub async fn expect_bad_project(data: &str, archive: &Archive, entry: &str, why: &str) {
    let mut client = Client::connect(data, None).await.expect("connected");
    let answer = client.open(archive, Some(entry)).await;
    let Received::Line(line) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(line["type"], "protocol-error", "{line}");
    let message = line["message"].as_str().unwrap_or_default();
    assert!(message.contains(why), "{message:?} should say {why:?}");
    let (lines, code) = client.rest().await;
    assert_eq!(
        lines,
        [json!({ "type": "exit", "code": 2, "reason": "bad-project" })]
    );
    assert_eq!(code, Some(1000));
}

/// An HS256 token of `claims` for `key` (RFC 7519), signed with hmac here:
/// the server's verification is what is under test.
pub fn token(key: &str, claims: &Value) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let unsigned = format!(
        "{}.{}",
        b64(json!({ "alg": "HS256", "typ": "JWT" }).to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(unsigned.as_bytes());
    format!("{unsigned}.{}", b64(&mac.finalize().into_bytes()))
}
