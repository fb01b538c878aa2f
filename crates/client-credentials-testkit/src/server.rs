//! The loopback server: an accept thread, one thread per connection, one request per
//! connection.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::handler::Handler;
use crate::reply::{Body, Fault, Framing, Reply, reason};
use crate::request::Request;

/// How often the accept loop looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(2);
/// The slice of every injected sleep: a shut-down server stops sleeping within it.
const SLEEP_SLICE: Duration = Duration::from_millis(10);
/// Read and write timeout of every connection: no connection thread outlives it when the
/// client goes quiet.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The cap on a request's line and headers.
const MAX_HEAD: u64 = 64 * 1024;
/// The cap on a request body.
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// A loopback HTTP/1.1 server on `127.0.0.1:<ephemeral port>`, answering through a
/// [`Handler`] and recording every request it reads.
///
/// It closes every connection after one response (`Connection: close`), so each request is
/// a fresh connection and no client pools a connection that a fault left half-used. It stops
/// accepting when dropped; connection threads end at their next write, at the end of a
/// sleep slice, or after a 10-second I/O timeout, whichever comes first.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .field("requests", &self.request_count())
            .finish_non_exhaustive()
    }
}

struct Shared {
    handler: Box<dyn Handler>,
    shutdown: AtomicBool,
    log: Mutex<Vec<Request>>,
    changed: Condvar,
    connections: AtomicUsize,
}

impl Shared {
    fn log(&self) -> MutexGuard<'_, Vec<Request>> {
        // A panicking handler cannot corrupt the log: it is only pushed to.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Sleeps for `d` in short slices; `false` when the server shut down meanwhile.
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        loop {
            if self.stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            thread::sleep(SLEEP_SLICE.min(deadline - now));
        }
    }

    fn record(&self, head: Head, body: Vec<u8>) -> Request {
        let mut log = self.log();
        let path = head
            .target
            .split_once('?')
            .map_or(head.target.as_str(), |(p, _)| p)
            .to_owned();
        let request = Request {
            index: log.len(),
            received_at: Instant::now(),
            method: head.method,
            target: head.target,
            path,
            headers: head.headers,
            body,
        };
        log.push(request.clone());
        self.changed.notify_all();
        request
    }
}

impl TestServer {
    /// Starts a server answering with `handler`.
    ///
    /// # Panics
    /// When no loopback port can be bound or no thread started: the test environment is
    /// broken, and the test cannot run.
    #[must_use]
    pub fn start(handler: impl Handler) -> Self {
        Self::try_start(handler)
            .unwrap_or_else(|e| panic!("testkit: cannot start a loopback server: {e}"))
    }

    /// Starts a server answering with `handler`.
    ///
    /// # Errors
    /// When no loopback port can be bound or the accept thread cannot start.
    pub fn try_start(handler: impl Handler) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            shutdown: AtomicBool::new(false),
            log: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            connections: AtomicUsize::new(0),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name(format!("testkit-accept-{}", addr.port()))
            .spawn(move || accept_loop(&listener, &accept_shared))?;
        Ok(Self {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// The address the server listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port><path>`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request read so far, in arrival order.
    #[must_use]
    pub fn requests(&self) -> Vec<Request> {
        self.shared.log().clone()
    }

    /// The last request read, if any.
    #[must_use]
    pub fn last_request(&self) -> Option<Request> {
        self.shared.log().last().cloned()
    }

    /// How many requests were read.
    #[must_use]
    pub fn request_count(&self) -> usize {
        self.shared.log().len()
    }

    /// How many requests for `path` (the target without its query) were read.
    #[must_use]
    pub fn count(&self, path: &str) -> usize {
        self.shared.log().iter().filter(|r| r.path == path).count()
    }

    /// How many TCP connections were accepted (a connection that sent no complete request
    /// is counted here and not in [`TestServer::request_count`]).
    #[must_use]
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests were read, for at most `timeout`. Returns whether
    /// they were.
    #[must_use]
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut log = self.shared.log();
        loop {
            if log.len() >= n {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            log = self
                .shared
                .changed
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Stops the server (what dropping it does).
    pub fn shutdown(self) {}
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            // The accept loop wakes every `POLL`; a panic there has already been reported.
            let _ = accept.join();
        }
    }
}

/// A `http://127.0.0.1:<port><path>` URL on which nothing listens: connecting is refused.
///
/// The port was free a moment ago; another process could take it meanwhile, which on a
/// test machine is unlikely enough.
///
/// # Panics
/// When no loopback port can be bound.
#[must_use]
pub fn refused_url(path: &str) -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("testkit: cannot bind a loopback port: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("testkit: no local address: {e}"));
    drop(listener);
    format!("http://{addr}{path}")
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stopping() {
        match listener.accept() {
            Ok((stream, _)) => {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let conn_shared = Arc::clone(shared);
                // If no thread can be started, the stream is dropped: the client sees a
                // closed connection, which is what an overloaded server does too.
                let _ = thread::Builder::new()
                    .name("testkit-conn".to_owned())
                    .spawn(move || serve(&stream, &conn_shared));
            }
            Err(_) => thread::sleep(POLL),
        }
    }
}

struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

fn serve(stream: &TcpStream, shared: &Shared) {
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| stream.set_nodelay(true));
    if setup.is_err() {
        return;
    }
    let mut reader = BufReader::new(stream);
    let Ok(head) = read_head(&mut reader) else {
        // Not HTTP, or the client went away: nothing to record or answer.
        return;
    };
    let header = |name: &str| {
        head.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        let mut w = stream;
        if w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
            return;
        }
    }
    let chunked =
        header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(&mut reader)
    } else {
        match header("content-length").map(|v| v.trim().parse::<u64>()) {
            None => Ok(Vec::new()),
            Some(Ok(len)) if len <= MAX_BODY => read_exact(&mut reader, len),
            Some(_) => Err(invalid("bad content-length")),
        }
    };
    let Ok(body) = body else { return };
    let request = shared.record(head, body);
    let reply = shared.handler.handle(&request);
    // Write errors mean the client went away (it may well have, on purpose): nothing to do.
    let _ = write_reply(stream, &reply, shared);
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn read_line(reader: &mut impl BufRead, budget: &mut u64) -> io::Result<String> {
    let mut line = Vec::new();
    let n = reader.take(*budget).read_until(b'\n', &mut line)?;
    *budget = budget.saturating_sub(n as u64);
    if !line.ends_with(b"\n") {
        return Err(invalid("request head too long or truncated"));
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid("request head is not UTF-8"))
}

fn read_head(reader: &mut impl BufRead) -> io::Result<Head> {
    let mut budget = MAX_HEAD;
    let line = read_line(reader, &mut budget)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("bad request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(invalid("not HTTP/1.x"));
    }
    let (method, target) = (method.to_owned(), target.to_owned());
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget)?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| invalid("bad header"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok(Head {
        method,
        target,
        headers,
    })
}

fn read_exact(reader: &mut impl Read, len: u64) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    reader.take(len).read_to_end(&mut body)?;
    if body.len() as u64 == len {
        Ok(body)
    } else {
        Err(invalid("body truncated"))
    }
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut budget = MAX_HEAD;
    loop {
        let line = read_line(reader, &mut budget)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(reader, &mut budget)?.is_empty() {}
            return Ok(body);
        }
        if (body.len() as u64)
            .checked_add(size)
            .is_none_or(|n| n > MAX_BODY)
        {
            return Err(invalid("body too large"));
        }
        body.extend(read_exact(reader, size)?);
        if !read_line(reader, &mut budget)?.is_empty() {
            return Err(invalid("bad chunk end"));
        }
    }
}

fn write_reply(mut stream: &TcpStream, reply: &Reply, shared: &Shared) -> io::Result<()> {
    if !shared.sleep(reply.delay) {
        return Ok(());
    }
    if reply.hang_up {
        return stream.shutdown(Shutdown::Both);
    }
    let total = reply.body.len();
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match reply.framing {
        Framing::ContentLength => head.push_str(&format!("content-length: {total}\r\n")),
        Framing::Chunked => head.push_str("transfer-encoding: chunked\r\n"),
        Framing::Close => {}
    }
    head.push_str("connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;

    let (cut, fault) = match reply.fault {
        Some((after, fault)) => (after.min(total), Some(fault)),
        None => (total, None),
    };
    write_body(stream, &reply.body, 0..cut, reply.framing, shared)?;
    match fault {
        None => {}
        Some(Fault::Close) => {
            stream.flush()?;
            return stream.shutdown(Shutdown::Both);
        }
        Some(Fault::Reset) => {
            stream.flush()?;
            // Give the kernel a moment to send what was written, then close with RST.
            shared.sleep(Duration::from_millis(50));
            return socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
        }
        Some(Fault::Stall(d)) => {
            if !shared.sleep(d) {
                return Ok(());
            }
            write_body(stream, &reply.body, cut..total, reply.framing, shared)?;
        }
    }
    if reply.framing == Framing::Chunked {
        stream.write_all(b"0\r\n\r\n")?;
    }
    stream.flush()?;
    stream.shutdown(Shutdown::Write)
}

fn write_body(
    mut stream: &TcpStream,
    body: &Body,
    range: std::ops::Range<usize>,
    framing: Framing,
    shared: &Shared,
) -> io::Result<()> {
    const PIECE: usize = 16 * 1024;
    let filler;
    let bytes: &[u8] = match body {
        Body::Bytes(b) => b,
        Body::Repeat { byte, .. } => {
            filler = vec![*byte; PIECE];
            &filler
        }
    };
    let mut at = range.start;
    while at < range.end {
        if shared.stopping() {
            return Err(io::Error::other("server shut down"));
        }
        let n = (range.end - at).min(PIECE);
        let piece = match body {
            Body::Bytes(_) => &bytes[at..at + n],
            Body::Repeat { .. } => &bytes[..n],
        };
        if framing == Framing::Chunked {
            stream.write_all(format!("{n:x}\r\n").as_bytes())?;
            stream.write_all(piece)?;
            stream.write_all(b"\r\n")?;
        } else {
            stream.write_all(piece)?;
        }
        at += n;
    }
    Ok(())
}
