//! Just enough of the Chrome DevTools Protocol to drive a page: a WebSocket client over a
//! `TcpStream` (RFC 6455 text frames, client-side masking, fragments, ping), commands with
//! ids, and the console and log events collected as they arrive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long a DOM condition may take to hold.
const WAIT: Duration = Duration::from_secs(30);

/// A headless Chromium with one page under our control.
pub struct Browser {
    child: Child,
    socket: TcpStream,
    next_id: u64,
    /// Console errors, uncaught exceptions and failed loads, as they were reported.
    pub errors: Vec<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn launch(binary: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(binary)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
            .args(["--disable-extensions", "--window-size=1280,900", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the browser");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let endpoint = loop {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "the browser exited before listening");
            if let Some(url) = line.trim().strip_prefix("DevTools listening on ws://") {
                break url.split('/').next().unwrap().to_string();
            }
        };
        // Keep draining the browser's log so it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let targets: Value = ureq::get(&format!("http://{endpoint}/json/list")).call().unwrap().into_json().unwrap();
        let page = targets.as_array().unwrap().iter().find(|t| t["type"] == "page").expect("a page target")
            ["webSocketDebuggerUrl"]
            .as_str()
            .unwrap()
            .to_string();
        let socket = connect(&page);
        let mut browser = Browser { child, socket, next_id: 0, errors: Vec::new(), _profile: profile };
        for method in ["Runtime.enable", "Log.enable", "Page.enable"] {
            browser.call(method, json!({}));
        }
        browser
    }

    /// Send a command and wait for its answer (events before it are collected).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        send_text(&mut self.socket, &json!({"id": id, "method": method, "params": params}).to_string());
        loop {
            let message: Value = serde_json::from_str(&read_message(&mut self.socket)).unwrap();
            if message["id"] == id {
                assert!(message.get("error").is_none(), "{method}: {}", message["error"]);
                return message["result"].clone();
            }
            self.observe(&message);
        }
    }

    fn observe(&mut self, message: &Value) {
        let params = &message["params"];
        match message["method"].as_str() {
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                self.errors.push(format!("console.error: {}", params["args"]))
            }
            Some("Runtime.exceptionThrown") => self.errors.push(format!("exception: {}", params["exceptionDetails"])),
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                self.errors.push(format!("log: {} {}", params["entry"]["text"], params["entry"]["url"]))
            }
            _ => {}
        }
    }

    /// The value of a JavaScript expression (promises awaited).
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call("Runtime.evaluate", json!({"expression": expression, "awaitPromise": true, "returnByValue": true}));
        assert!(result.get("exceptionDetails").is_none(), "{expression}: {}", result["exceptionDetails"]);
        result["result"]["value"].clone()
    }

    /// Wait until `condition` (an expression) is truthy; its value.
    pub fn wait_for(&mut self, condition: &str, what: &str) -> Value {
        let started = Instant::now();
        loop {
            let value =
                self.eval(&format!("(() => {{ try {{ return {condition}; }} catch (e) {{ return null; }} }})()"));
            if !(value.is_null() || value == false || value == "" || value == 0) {
                return value;
            }
            assert!(started.elapsed() < WAIT, "waited {WAIT:?} for {what}: {condition}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for("document.readyState === 'complete'", "the page to load");
    }

    /// Click the element `selector` finds (it must exist).
    pub fn click(&mut self, selector: &str) {
        let found = self.eval(&format!(
            "(() => {{ const el = document.querySelector({selector:?}); if (!el) return false; el.click(); return true; }})()"
        ));
        assert_eq!(found, true, "no element {selector}");
    }

    /// Type into the focused element as a keyboard would (input events fire).
    pub fn type_text(&mut self, text: &str) {
        self.call("Input.insertText", json!({"text": text}));
    }

    /// A PNG of the viewport.
    pub fn screenshot(&mut self, path: &std::path::Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        std::fs::write(path, decode_base64(shot["data"].as_str().unwrap())).unwrap();
        eprintln!("screenshot: {}", path.display());
    }

    /// Emulate a viewport `width` CSS pixels wide (`mobile` for a phone).
    pub fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(url: &str) -> TcpStream {
    let rest = url.strip_prefix("ws://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut socket = TcpStream::connect(host).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        socket,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        socket.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "no WebSocket upgrade: {head}");
    socket
}

/// One masked frame (clients must mask; the key may be anything).
fn send_frame(socket: &mut TcpStream, opcode: u8, payload: &[u8]) {
    let mask = [0x5a, 0x17, 0xc3, 0x81];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n < 65_536 => {
            frame.push(0x80 | 126);
            frame.extend((n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend((n as u64).to_be_bytes());
        }
    }
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    socket.write_all(&frame).unwrap();
}

fn send_text(socket: &mut TcpStream, text: &str) {
    send_frame(socket, 0x1, text.as_bytes());
}

/// The next whole text message (fragments joined, pings answered).
fn read_message(socket: &mut TcpStream) -> String {
    let mut message = Vec::new();
    loop {
        let mut head = [0u8; 2];
        socket.read_exact(&mut head).unwrap();
        let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
        let mut len = (head[1] & 0x7f) as u64;
        if len == 126 {
            let mut ext = [0u8; 2];
            socket.read_exact(&mut ext).unwrap();
            len = u16::from_be_bytes(ext) as u64;
        } else if len == 127 {
            let mut ext = [0u8; 8];
            socket.read_exact(&mut ext).unwrap();
            len = u64::from_be_bytes(ext);
        }
        let mut payload = vec![0u8; len as usize];
        socket.read_exact(&mut payload).unwrap();
        match opcode {
            0x9 => send_frame(socket, 0xA, &payload),
            0x8 => panic!("the browser closed the connection"),
            0x0..=0x2 => {
                message.extend(payload);
                if fin {
                    return String::from_utf8(message).unwrap();
                }
            }
            _ => {}
        }
    }
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()).map(value).collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, v)| acc | (*v as u32) << (18 - 6 * i));
        out.extend(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}
