//! Support for the adapter benchmarks (of `client-credentials-ureq` and
//! `client-credentials-reqwest`): a loopback token endpoint in a child process, and latency
//! percentiles.
//!
//! The token endpoint runs in a child process (the bench binary itself, started with
//! `CC_BENCH_SERVER` set), so that its threads and allocations are not the client's: a
//! counting allocator in the bench sees only the client, and a thousand server threads do not
//! share the client's process. It speaks HTTP/1.1 with keep-alive (a connection serves any
//! number of requests, as real token endpoints do), answers every `POST` with a typical
//! token response after an optional delay, and answers `GET /count` with the number of
//! token requests so far.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

const ENV: &str = "CC_BENCH_SERVER";

/// The client id the benches use (the endpoint does not check it).
pub const CLIENT_ID: &str = "bench-client";
/// The client secret the benches use (the endpoint does not check it).
pub const CLIENT_SECRET: &str = "bench-secret";

/// A 754-character RS256 JWT, the size real authorization servers issue.
pub const ACCESS_TOKEN: &str = concat!(
    "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6IjFlOWdkazcifQ.",
    "eyJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS5jb20vIiwic3ViIjoiczZCaGRSa3F0M0BjbGllbnRzIiwiYXVkI",
    "joiaHR0cHM6Ly9hcGkuZXhhbXBsZS5jb20vIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDAsInNjb3",
    "BlIjoib3JkZXJzLnJlYWQgb3JkZXJzLndyaXRlIiwiY2xpZW50X2lkIjoiczZCaGRSa3F0MyIsImp0aSI6IjlmMWM",
    "wZDVlLTJiOGEtNGM0Ny1hMGY3LTNkNmU4YjJhMWM1NSIsImd0eSI6ImNsaWVudC1jcmVkZW50aWFscyJ9.",
    "bjQLnP-zepicpUTmu3gKLHiQHT-zNzh2hRGjBhevoB1L9RIvNEVUxTveLruM0rfj0WAK1jHDhaXXzOI8d4VFmtvB",
    "tMkA_-SNV1tdpcY4BAEl9l2w_j4kSUt26phkV9mGCE_tCLl4r019GWp0RqhrWACeY2thHbFiEbZamq3_KcXlLZxQ",
    "jFAjRzRNjAetkcvWBor8df9ikvBioJyjgcieced7mprp4wsNvbb1EKJk753ngVAde2uSronrBZxat0PbZ1humPrS",
    "faC5lovAOaHvNMk5ubjlI6i--J1HhgjF7PbKNYdY9tJ-bPRScpN5d6dI_Yg5HbZ5ztp9x78fAF7oeQ",
);

/// The body of every token response: `expires_in` is the server's configured lifetime.
pub fn token_body(lifetime: Duration) -> String {
    format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","token_type":"Bearer","expires_in":{}}}"#,
        lifetime.as_secs()
    )
}

/// If this process was started as the token endpoint, serve until the parent goes away and
/// exit; otherwise return at once. Call it first thing in `main`.
pub fn serve_if_child() {
    let Ok(spec) = std::env::var(ENV) else {
        return;
    };
    let mut parts = spec.split(',').map(|p| p.parse::<u64>().unwrap_or(0));
    let delay = Duration::from_millis(parts.next().unwrap_or(0));
    let lifetime = Duration::from_secs(parts.next().unwrap_or(3600));
    let listener = listen().unwrap_or_else(|e| panic!("bench server: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("bench server: {e}"));
    // The parent reads the address from the first line; it closes our stdin when it is done.
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{addr}");
    let _ = out.flush();
    drop(out);
    thread::spawn(|| {
        let _ = io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let count = Arc::new(Counts::default());
    let body: Arc<[u8]> = Arc::from(token_body(lifetime).into_bytes());
    for stream in listener.incoming().flatten() {
        count.connections.fetch_add(1, Ordering::SeqCst);
        let count = Arc::clone(&count);
        let body = Arc::clone(&body);
        let _ = thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                let _ = serve(&stream, &count, &body, delay);
            });
    }
}

/// A listener on 127.0.0.1 with a backlog deep enough for a thousand simultaneous connects
/// (the standard library's is 128, and a full backlog makes a client retry after a second).
fn listen() -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// What the endpoint counts.
#[derive(Default)]
struct Counts {
    requests: AtomicUsize,
    connections: AtomicUsize,
}

/// Serves one keep-alive connection until the client closes it.
fn serve(stream: &TcpStream, count: &Counts, body: &[u8], delay: Duration) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream);
    let mut writer = stream;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let query = if line.starts_with("GET /count") {
            Some(&count.requests)
        } else if line.starts_with("GET /connections") {
            Some(&count.connections)
        } else {
            None
        };
        let mut length = 0usize;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        io::copy(&mut (&mut reader).take(length as u64), &mut io::sink())?;
        if let Some(counter) = query {
            let n = counter.load(Ordering::SeqCst).to_string();
            write!(
                writer,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{n}",
                n.len()
            )?;
            continue;
        }
        count.requests.fetch_add(1, Ordering::SeqCst);
        if !delay.is_zero() {
            thread::sleep(delay);
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
             pragma: no-cache\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let mut response = Vec::with_capacity(head.len() + body.len());
        response.extend_from_slice(head.as_bytes());
        response.extend_from_slice(body);
        writer.write_all(&response)?;
    }
}

/// The token endpoint, running in a child process.
pub struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts the endpoint: every token request is answered after `delay`, with tokens that
    /// live `lifetime`.
    pub fn start(delay: Duration, lifetime: Duration) -> Self {
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current exe: {e}"));
        let mut child = Command::new(exe)
            .env(ENV, format!("{},{}", delay.as_millis(), lifetime.as_secs()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("bench server: {e}"));
        let stdout = child
            .stdout
            .take()
            .unwrap_or_else(|| panic!("bench server: no stdout"));
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .unwrap_or_else(|e| panic!("bench server: {e}"));
        let addr = first
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("bench server address {first:?}: {e}"));
        Self { child, addr }
    }

    /// The token endpoint's URL.
    pub fn token_url(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// Token requests received so far.
    pub fn count(&self) -> usize {
        self.ask("/count")
    }

    /// Connections accepted so far (each `count` or `connections` call is one more).
    pub fn connections(&self) -> usize {
        self.ask("/connections")
    }

    fn ask(&self, path: &str) -> usize {
        let ask = || -> io::Result<usize> {
            let mut tcp = TcpStream::connect(self.addr)?;
            write!(tcp, "GET {path} HTTP/1.1\r\nhost: bench\r\n\r\n")?;
            let mut reader = BufReader::new(tcp);
            let mut line = String::new();
            let mut length = 0;
            loop {
                line.clear();
                reader.read_line(&mut line)?;
                let header = line.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some(v) = header.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut n = vec![0; length];
            reader.read_exact(&mut n)?;
            String::from_utf8_lossy(&n)
                .parse()
                .map_err(|_| io::Error::other("bad count"))
        };
        ask().unwrap_or_else(|e| panic!("bench server {path}: {e}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Closing its stdin ends the child; wait so that no zombie is left.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// p50, p99 and max of a set of latencies, plus how many reached `threshold`.
pub struct Latencies {
    /// How many samples.
    pub calls: usize,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The slowest.
    pub max: Duration,
    /// How many took `threshold` or more.
    pub at_least: usize,
}

impl Latencies {
    /// The statistics of `samples`, counting those of `threshold` or more.
    pub fn of(mut samples: Vec<Duration>, threshold: Duration) -> Self {
        samples.sort_unstable();
        let n = samples.len();
        let at = |q: usize| samples.get((n * q / 100).min(n.saturating_sub(1))).copied();
        Self {
            calls: n,
            p50: at(50).unwrap_or_default(),
            p99: at(99).unwrap_or_default(),
            max: samples.last().copied().unwrap_or_default(),
            at_least: samples.iter().filter(|d| **d >= threshold).count(),
        }
    }
}

/// A duration for a table: µs below a millisecond, ms otherwise.
pub fn show(d: Duration) -> String {
    show_secs(d.as_secs_f64())
}

/// [`show`] for a time in seconds, without rounding it to a whole nanosecond first (a
/// median time per call is a fraction of one).
fn show_secs(secs: f64) -> String {
    if secs < 1e-3 {
        if secs < 1e-6 {
            format!("{:.1} ns", secs * 1e9)
        } else {
            format!("{:.2} µs", secs * 1e6)
        }
    } else {
        format!("{:.2} ms", secs * 1e3)
    }
}

/// Runs the operations in turn, `batch` calls of each per round, for `rounds` rounds, and
/// prints each one's median time per call and its median ratio to the first one's. A ratio
/// taken round by round is what survives a machine whose load drifts (a shared 2-core
/// machine): both sides of each ratio ran within milliseconds of each other.
///
/// Each operation is given a number of calls and returns how long they took.
#[allow(
    clippy::print_stdout,
    reason = "a benchmark reports its interleaved rounds"
)]
pub fn interleaved(
    title: &str,
    rounds: usize,
    batch: u64,
    ops: &[(&str, &dyn Fn(u64) -> Duration)],
) -> Vec<Vec<f64>> {
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); ops.len()];
    for (_, op) in ops {
        op(batch); // warm
    }
    for _ in 0..rounds {
        for (i, (_, op)) in ops.iter().enumerate() {
            times[i].push(op(batch).as_secs_f64() / batch as f64);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let quartiles = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 4], v[v.len() / 2], v[v.len() * 3 / 4])
    };
    println!("{title}: interleaved, {rounds} rounds of {batch} calls each");
    for (i, (name, _)) in ops.iter().enumerate() {
        let t = median(&mut times[i].clone());
        let mut ratios: Vec<f64> = times[i].iter().zip(&times[0]).map(|(a, b)| a / b).collect();
        let (q1, q2, q3) = quartiles(&mut ratios);
        println!(
            "  {name}: median {} per call; {q2:.3}× the first (quartiles {q1:.3}–{q3:.3})",
            show_secs(t)
        );
    }
    times
}

/// The median of the round-by-round ratios `a[i] / b[i]`.
#[must_use]
pub fn median_ratio(a: &[f64], b: &[f64]) -> f64 {
    let mut ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
    ratios.sort_by(f64::total_cmp);
    ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The processor this runs on, as the kernel names it (`model name` in `/proc/cpuinfo`),
/// and how many threads it offers this process.
#[must_use]
pub fn processor() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown processor".to_owned());
    let threads = thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!("{model}, {threads} threads available")
}

/// Runs `op(iters)` on each of `threads` threads released together; the wall time divided
/// by the threads, i.e. the time per call of the group (so `one / this` is the throughput
/// ratio to one thread). Each thread first makes one untimed call, so that what a thread
/// sets up on its first call (its runtime, its shard) is not timed, as it is not on the
/// thread that measures one thread.
pub fn on_threads(threads: usize, iters: u64, op: &(dyn Fn(u64) -> Duration + Sync)) -> Duration {
    let barrier = std::sync::Barrier::new(threads);
    let wall = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let _ = op(1);
                    barrier.wait();
                    let start = std::time::Instant::now();
                    let _ = op(iters);
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .max()
            .unwrap_or_default()
    });
    wall / u32::try_from(threads).unwrap_or(1)
}

/// `op` called `n` times, timed.
pub fn repeat(op: impl Fn() + Sync) -> impl Fn(u64) -> Duration + Sync {
    move |n| {
        let start = std::time::Instant::now();
        for _ in 0..n {
            op();
        }
        start.elapsed()
    }
}

/// The hit benchmarks' floors and tables, the same for every adapter.
pub mod hit {
    use std::hint::black_box;
    use std::sync::{Arc, Mutex, PoisonError};
    use std::time::{Duration, Instant};

    use arc_swap::ArcSwap;
    use client_credentials_core::Token;

    use super::{interleaved, median_ratio, on_threads, processor, repeat};

    /// A named timed operation: given a number of calls, it makes them and returns how long
    /// they took. `Sync`, so that two threads can run it at once.
    pub type Op<'a> = (&'a str, &'a (dyn Fn(u64) -> Duration + Sync));

    /// Two threads must get at least this throughput ratio on the control workload, or the
    /// second core was not free and the two-thread figures are not reported.
    pub const CONTROL_MIN: f64 = 1.8;

    /// The primitives a hit is measured against, holding the same token as the client.
    pub struct Floors {
        swap: ArcSwap<Token>,
        mutex: Mutex<Option<Arc<Token>>>,
    }

    impl Floors {
        /// Floors that hold `token`.
        #[must_use]
        pub fn new(token: Arc<Token>) -> Self {
            Self {
                swap: ArcSwap::new(Arc::clone(&token)),
                mutex: Mutex::new(Some(token)),
            }
        }

        /// `ArcSwap::load_full`: an owned `Arc<Token>` from one atomic slot (the floor of
        /// the owned hit).
        pub fn load_full(&self) {
            black_box(self.swap.load_full());
        }

        /// An `ArcSwap` guard load, reading the token through it (the floor of the
        /// borrowed hit).
        pub fn guard(&self) {
            black_box(self.swap.load().access_token().expose_secret().len());
        }

        /// A `Mutex<Option<Arc<Token>>>`: lock, clone, unlock.
        pub fn mutex(&self) {
            black_box(
                self.mutex
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            );
        }
    }

    /// `Instant::now()`, which the hit path does not call.
    pub fn instant_now() {
        black_box(Instant::now());
    }

    /// The control workload: arithmetic on thread-local state, nothing shared, so two
    /// threads on two free cores get twice the throughput of one.
    pub fn control(n: u64) -> Duration {
        let start = Instant::now();
        let mut x = black_box(0x9E37_79B9_7F4A_7C15_u64);
        for _ in 0..n {
            x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        black_box(x);
        start.elapsed()
    }

    /// The two-thread throughput ratio of the control workload (median of `rounds`).
    #[must_use]
    pub fn control_ratio(rounds: usize, batch: u64) -> f64 {
        let mut ratios: Vec<f64> = (0..rounds)
            .map(|_| {
                let one = control(batch).as_secs_f64();
                let two = on_threads(2, batch, &control).as_secs_f64();
                one / two
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios[ratios.len() / 2]
    }

    /// Prints the hit table of `title`: the processor; each op's median time per call on one
    /// thread, interleaved round by round with the floors (`floors` first, then `ours`), and
    /// each of `ours` as a ratio to the floor it names; then the control row, and only if it
    /// passes, each op's two-thread throughput ratio. `rounds` rounds of `batch` calls.
    #[allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]
    pub fn table(title: &str, rounds: usize, batch: u64, floors: &Floors, ours: &[(Op<'_>, &str)]) {
        println!("{title}: on {}", processor());
        let load_full = repeat(|| floors.load_full());
        let guard = repeat(|| floors.guard());
        let now = repeat(instant_now);
        let mutex = repeat(|| floors.mutex());
        let floor_ops: [Op<'_>; 4] = [
            ("floor: ArcSwap::load_full", &load_full),
            ("floor: ArcSwap guard load", &guard),
            ("floor: Instant::now()", &now),
            ("floor: Mutex<Option<Arc<Token>>>", &mutex),
        ];
        let all: Vec<(&str, &dyn Fn(u64) -> Duration)> = floor_ops
            .iter()
            .chain(ours.iter().map(|(op, _)| op))
            .map(|(name, op)| (*name, *op as &dyn Fn(u64) -> Duration))
            .collect();
        let times = interleaved(title, rounds, batch, &all);
        for (i, ((name, _), floor)) in ours.iter().enumerate() {
            let Some(f) = floor_ops.iter().position(|(n, _)| n.ends_with(floor)) else {
                continue;
            };
            println!(
                "  {name}: {:.2}× {} (median of the round-by-round ratios)",
                median_ratio(&times[floor_ops.len() + i], &times[f]),
                floor_ops[f].0
            );
        }
        let before = control_ratio(rounds.min(9), batch * 20);
        // Round by round across the operations, as for one thread, so that a slow spell of
        // the machine falls on all of them alike rather than on whichever ran then; a round
        // counts only when the control run right before it found the second core free.
        let two_rounds = rounds.min(9);
        let all_ops: Vec<Op<'_>> = floor_ops
            .iter()
            .chain(ours.iter().map(|(op, _)| op))
            .copied()
            .collect();
        let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); all_ops.len()];
        for _ in 0..two_rounds {
            for (i, (_, op)) in all_ops.iter().enumerate() {
                let free = control_ratio(1, batch * 5) >= CONTROL_MIN;
                let one = op(batch).as_secs_f64();
                let ratio = one / on_threads(2, batch, *op).as_secs_f64();
                if free {
                    ratios[i].push(ratio);
                }
            }
        }
        let two: Vec<(&str, Option<f64>, usize)> = all_ops
            .iter()
            .zip(&mut ratios)
            .map(|((name, _), ratios)| {
                ratios.sort_by(f64::total_cmp);
                let kept = ratios.len();
                let median = (kept * 2 > two_rounds).then(|| ratios[kept / 2]);
                (*name, median, kept)
            })
            .collect();
        let after = control_ratio(rounds.min(9), batch * 20);
        let control = before.min(after);
        println!(
            "{title}: control (no shared state) on 2 threads: {control:.2}× one thread's throughput \
             (before {before:.2}×, after {after:.2}×; needs ≥ {CONTROL_MIN}×)"
        );
        if control < CONTROL_MIN {
            println!("{title}: the second core was not free; no two-thread figures reported");
            return;
        }
        for (name, ratio, kept) in two {
            match ratio {
                Some(ratio) => println!(
                    "  {name}: 2 threads get {ratio:.2}× one thread's throughput \
                     ({kept} of {two_rounds} rounds had the control passing)"
                ),
                None => println!(
                    "  {name}: no figure: the control passed in only {kept} of {two_rounds} rounds"
                ),
            }
        }
    }
}

/// The policy of a fetch benchmark that invalidates every token it gets, so that each call
/// fetches: the early-rejection throttle off (it would back off after three such
/// rejections in a row).
#[must_use]
pub fn policy_fetching_every_call() -> client_credentials_core::Policy {
    let mut policy = client_credentials_core::Policy::default();
    policy.early_rejection_window = Duration::ZERO;
    policy
}

/// Whether the bench binary was started by `cargo bench -- --test` or `--list`, where a
/// stampede bench (minutes of scripted load, not a criterion bench) only checks that it
/// starts.
#[must_use]
pub fn listing_only() -> bool {
    std::env::args().any(|a| a == "--test" || a == "--list")
}

/// Prints the heading and the column titles of a stampede table.
#[allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]
pub fn stampede_table(title: &str) {
    println!("## {title}\n");
    println!(
        "| scenario | token requests | calls | p50 | p99 | max | calls ≥ 10 ms | polls that waited on the endpoint |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
}

/// Prints one row of a stampede table. `waited`: the client's
/// [`polls_without_token`](client_credentials_core::Counters::polls_without_token) over the
/// scenario (callers that waited on the token endpoint, whatever their latency; `None` for
/// a cache that does not count them). A call of 10 ms or more that did not wait there was
/// descheduled: 1 000 threads share two cores.
#[allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]
pub fn stampede_row(name: &str, requests: usize, l: &Latencies, waited: Option<u64>) {
    println!(
        "| {name} | {requests} | {} | {} | {} | {} | {} | {} |",
        l.calls,
        show(l.p50),
        show(l.p99),
        show(l.max),
        l.at_least,
        waited.map_or_else(|| "not counted".to_owned(), |n| n.to_string())
    );
}

/// Prints the heap table: bytes held by our client when new and with one token, against the
/// bare HTTP client. Each closure is run twice; the first run pays for what a process sets
/// up once (timer wheels, tracing call sites, TLS roots) and is not counted.
#[allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]
pub fn heap_table<A: std::fmt::Display, B: std::fmt::Display>(
    (ours_name, mut ours): (&str, impl FnMut() -> (A, A)),
    (bare_name, mut bare): (&str, impl FnMut() -> (B, B)),
) {
    let _ = (ours(), bare());
    println!("| client | new | with one token (and its pooled connection) |");
    println!("| --- | ---: | ---: |");
    let (empty, full) = ours();
    println!("| ours: `{ours_name}` | {empty} B | {full} B |");
    let (empty, full) = bare();
    println!("| bare `{bare_name}` (for scale) | {empty} B | {full} B |");
}

/// The stampede benchmarks' scenario, the same for every adapter: how many callers, how
/// slow the token endpoint answers, the short token lifetime that makes the run cross
/// several expiries, and how long and how fast the callers ask.
pub mod stampede {
    use std::time::Duration;

    /// How many callers' polls waited on the token endpoint so far
    /// ([`polls_without_token`](client_credentials_core::Counters::polls_without_token)), for
    /// a cache that counts them.
    pub type Waited = Option<Box<dyn Fn() -> u64>>;

    /// What `waited` counted since `before` (its reading when the scenario started).
    #[must_use]
    pub fn waited_since(waited: &Waited, before: Option<u64>) -> Option<u64> {
        Some(waited.as_ref()?() - before?)
    }

    /// Callers started together on a cold cache.
    pub const CALLERS: usize = 1_000;
    /// How long the token endpoint takes to answer.
    pub const SERVER_DELAY: Duration = Duration::from_millis(50);
    /// The lifetime of the tokens of the steady phase, so that it crosses several expiries.
    pub const SHORT_LIFETIME: Duration = Duration::from_secs(2);
    /// How long the steady phase lasts.
    pub const STEADY_FOR: Duration = Duration::from_millis(4_500);
    /// The pause of each caller between two calls in the steady phase.
    pub const PAUSE: Duration = Duration::from_millis(20);
}

/// The `main` of an adapter's criterion benchmark that uses [`Server`]: one criterion group
/// with the settings every adapter bench shares (0.5 s warm-up, 3 s measurement, 50
/// samples), and the child-process server hook. The calling crate depends on `criterion`.
#[macro_export]
macro_rules! bench_main {
    ($($target:path),+ $(,)?) => {
        ::criterion::criterion_group! {
            name = benches;
            config = ::criterion::Criterion::default()
                .warm_up_time(::std::time::Duration::from_millis(500))
                .measurement_time(::std::time::Duration::from_secs(3))
                .sample_size(50)
                .nresamples(20_000);
            targets = $($target),+
        }

        fn main() {
            $crate::bench::serve_if_child();
            benches();
            ::criterion::Criterion::default()
                .configure_from_args()
                .final_summary();
        }
    };
}
