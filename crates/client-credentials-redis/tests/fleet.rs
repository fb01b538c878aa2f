//! A fleet of real processes sharing tokens through a real Redis, counted at a token
//! endpoint: one token request per refresh period for the whole fleet (threads and tasks),
//! tokens still served when Redis is killed (each process then fetching on its own) and
//! sharing again once it is back, and a lock holder killed mid-fetch taken over after the
//! lock's life.
//!
//! The fleet's members are this test binary run again with `CC_REDIS_FLEET_MEMBER` set:
//! the `fleet_member` test then runs one member and prints its report; without the
//! variable it does nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
#![allow(
    clippy::print_stdout,
    reason = "a fleet member reports to the test on stdout"
)]
#![allow(
    clippy::print_stderr,
    reason = "the counts, for whoever runs with --nocapture"
)]

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use client_credentials_redis::RedisStore;
use client_credentials_testkit::{Reply, Script, TestServer, TokenEndpoint};
use client_credentials_ureq::{Config, Policy, TokenParams};
use serde::{Deserialize, Serialize};
use support::RedisServer;

const MEMBER: &str = "CC_REDIS_FLEET_MEMBER";
const REPORT: &str = "FLEET-REPORT ";

/// Token lifetime at the endpoint, and the members' expiry margin: a usable life of 2.5 s,
/// a refresh between 72 % and 80 % of it (1.8 s to 2 s after each fetch).
const LIFETIME: Duration = Duration::from_secs(3);
const MARGIN: Duration = Duration::from_millis(500);
const SHORTEST_PERIOD: Duration = Duration::from_millis(1800);

/// The fleet tests measure time: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Spec {
    asynchronous: bool,
    token_url: String,
    redis_url: String,
    threads: usize,
    run_ms: u64,
    scope: Option<String>,
    lock_ttl_ms: u64,
    max_wait_ms: u64,
    /// The store's Redis response timeout.
    response_timeout_ms: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Report {
    ok: u64,
    errors: Vec<String>,
    tokens: BTreeSet<String>,
    /// The longest first call of any thread or task.
    first_ms: u64,
    /// Tokens this member fetched itself, and requests a shared token answered.
    fetched: u64,
    shared: u64,
}

fn config(token_url: &str) -> Config {
    Config::builder()
        .token_url(token_url)
        .client_id("fleet")
        .client_secret("s3cr3t")
        .build()
        .unwrap()
}

fn store(spec: &Spec) -> RedisStore {
    RedisStore::builder(&spec.redis_url)
        .lock_ttl(Duration::from_millis(spec.lock_ttl_ms))
        .max_wait(Duration::from_millis(spec.max_wait_ms))
        .retry_after_failure(Duration::from_millis(500))
        .response_timeout(Duration::from_millis(spec.response_timeout_ms))
        .build()
        .unwrap()
}

fn policy() -> Policy {
    let mut policy = Policy::default();
    policy.expiry_margin = MARGIN;
    policy
}

/// What the threads or tasks of one member saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    first_ms: AtomicU64,
    errors: Mutex<Vec<String>>,
    tokens: Mutex<BTreeSet<String>>,
}

impl Tally {
    fn record(&self, result: Result<String, String>, first: Option<Duration>) {
        match result {
            Ok(token) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.tokens
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(token);
            }
            Err(e) => self
                .errors
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(e),
        }
        if let Some(first) = first {
            let ms = u64::try_from(first.as_millis()).unwrap();
            self.first_ms.fetch_max(ms, Ordering::Relaxed);
        }
    }

    fn report(self, fetched: u64, shared: u64) -> Report {
        Report {
            ok: self.ok.into_inner(),
            errors: self.errors.into_inner().unwrap(),
            tokens: self.tokens.into_inner().unwrap(),
            first_ms: self.first_ms.into_inner(),
            fetched,
            shared,
        }
    }
}

/// One member of the fleet, when this binary runs as one; nothing otherwise.
#[test]
fn fleet_member() {
    let Ok(spec) = std::env::var(MEMBER) else {
        return;
    };
    let spec: Spec = serde_json::from_str(&spec).unwrap();
    let report = if spec.asynchronous {
        run_async(&spec)
    } else {
        run_blocking(&spec)
    };
    println!("\n{REPORT}{}", serde_json::to_string(&report).unwrap());
}

fn params(spec: &Spec) -> TokenParams {
    spec.scope.as_ref().map_or_else(TokenParams::new, |s| {
        TokenParams::new().scopes([s.as_str()])
    })
}

fn run_blocking(spec: &Spec) -> Report {
    let client = client_credentials_ureq::Client::builder(config(&spec.token_url))
        .policy(policy())
        .shared_store(store(spec))
        .build();
    let params = params(spec);
    let tally = Tally::default();
    let run = Duration::from_millis(spec.run_ms);
    let started = Instant::now();
    thread::scope(|s| {
        for _ in 0..spec.threads {
            s.spawn(|| {
                let mut first = true;
                loop {
                    let call = Instant::now();
                    let result = client
                        .token_for(&params)
                        .map(|t| t.access_token().expose_secret().to_owned())
                        .map_err(|e| e.to_string());
                    tally.record(result, first.then(|| call.elapsed()));
                    first = false;
                    if started.elapsed() >= run {
                        break;
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            });
        }
    });
    let counters = client.counters_for(&params).unwrap();
    tally.report(counters.fetches_succeeded, counters.fetches_shared)
}

fn run_async(spec: &Spec) -> Report {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = client_credentials_reqwest::Client::builder(config(&spec.token_url))
            .policy(policy())
            .shared_store(store(spec))
            .build()
            .unwrap();
        let params = Arc::new(params(spec));
        let tally = Arc::new(Tally::default());
        let run = Duration::from_millis(spec.run_ms);
        let started = Instant::now();
        let tasks: Vec<_> = (0..spec.threads)
            .map(|_| {
                let (client, params, tally) =
                    (client.clone(), Arc::clone(&params), Arc::clone(&tally));
                tokio::spawn(async move {
                    let mut first = true;
                    loop {
                        let call = Instant::now();
                        let result = client
                            .token_for(&params)
                            .await
                            .map(|t| t.access_token().expose_secret().to_owned())
                            .map_err(|e| e.to_string());
                        tally.record(result, first.then(|| call.elapsed()));
                        first = false;
                        if started.elapsed() >= run {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let counters = client.counters_for(&params).unwrap();
        Arc::into_inner(tally)
            .unwrap()
            .report(counters.fetches_succeeded, counters.fetches_shared)
    })
}

/// A member running in its own process.
struct Member {
    child: Child,
    stdout: Option<JoinHandle<Option<Report>>>,
}

impl Member {
    fn spawn(spec: &Spec) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "fleet_member",
                "--exact",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(MEMBER, serde_json::to_string(spec).unwrap())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = thread::spawn(move || {
            // Read to the end: a closed pipe would fail the member's last lines.
            let lines: Vec<String> = BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect();
            // libtest may have printed the test's name on the same line.
            lines.iter().find_map(|line| {
                line.split_once(REPORT)
                    .map(|(_, json)| serde_json::from_str(json).unwrap())
            })
        });
        Self {
            child,
            stdout: Some(reader),
        }
    }

    fn report(mut self) -> Report {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "fleet member failed: {status}");
        self.stdout
            .take()
            .unwrap()
            .join()
            .unwrap()
            .expect("the member printed no report")
    }

    /// SIGKILL.
    fn kill(mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spec(server: &TestServer, redis: &RedisServer, asynchronous: bool, run: Duration) -> Spec {
    Spec {
        asynchronous,
        token_url: server.url("/token"),
        redis_url: redis.url(),
        threads: 50,
        run_ms: u64::try_from(run.as_millis()).unwrap(),
        scope: None,
        lock_ttl_ms: 2000,
        max_wait_ms: 2000,
        response_timeout_ms: 500,
    }
}

/// The most token requests one client makes in `elapsed` with these tokens: one at the
/// start and one per shortest refresh period (the fleet's bound), with one of slack for
/// the start-up of the processes.
fn one_client_bound(elapsed: Duration) -> usize {
    let periods = elapsed.as_secs_f64() / SHORTEST_PERIOD.as_secs_f64();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a small positive count"
    )]
    let periods = periods.ceil() as usize;
    periods + 2
}

fn fleet_fetches_once_per_period(asynchronous: bool) {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let redis = RedisServer::start();
    let server = TestServer::start(TokenEndpoint::new().lifetime(LIFETIME));
    let run = Duration::from_secs(8);
    // A Redis answer slower than the default 500 ms counts as Redis failing, and the member
    // then fetches on its own, as it should; on a loaded machine that can happen with Redis
    // up. This test counts sharing, so only a Redis that is down may make it fail.
    let spec = Spec {
        response_timeout_ms: 5000,
        ..spec(&server, &redis, asynchronous, run)
    };
    let started = Instant::now();
    let members: Vec<Member> = (0..4).map(|_| Member::spawn(&spec)).collect();
    let reports: Vec<Report> = members.into_iter().map(Member::report).collect();
    let elapsed = started.elapsed();
    let requests = server.count("/token");

    for r in &reports {
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert!(r.ok > 100, "{r:?}");
    }
    let fetched: u64 = reports.iter().map(|r| r.fetched).sum();
    let shared: u64 = reports.iter().map(|r| r.shared).sum();
    let calls: u64 = reports.iter().map(|r| r.ok).sum();
    eprintln!(
        "fleet ({}): {calls} tokens served, {requests} token requests in {elapsed:.1?} \
         (bound {}), {fetched} fetched, {shared} taken from Redis",
        if asynchronous { "tasks" } else { "threads" },
        one_client_bound(elapsed)
    );
    assert_eq!(usize::try_from(fetched).unwrap(), requests, "{reports:?}");
    // Several refresh periods, one request each for the whole fleet (a fleet without the
    // store would make four times as many). However late the refreshes come, a token is
    // never served past its usable life, so the calls of one member, served over its run
    // less its first call (and one last 100 ms), need that span over the usable life
    // tokens, plus one.
    let first = Duration::from_millis(reports.iter().map(|r| r.first_ms).max().unwrap());
    let span = run.saturating_sub(first + Duration::from_millis(100));
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a small positive count"
    )]
    let at_least = 1 + (span.as_secs_f64() / (LIFETIME - MARGIN).as_secs_f64()).floor() as usize;
    assert!(
        requests >= at_least,
        "{requests} requests in {elapsed:?}, at least {at_least} needed"
    );
    assert!(
        requests <= one_client_bound(elapsed),
        "{requests} requests in {elapsed:?}, {reports:?}"
    );
    assert!(shared >= 2 * fetched, "fetched {fetched}, shared {shared}");
    // Every member used the fleet's tokens.
    let issued: BTreeSet<String> = reports.iter().flat_map(|r| r.tokens.clone()).collect();
    assert!(issued.len() <= requests);
    for r in &reports {
        assert!(r.tokens.len() * 2 >= issued.len(), "{r:?}");
    }
}

#[test]
#[ignore = "needs redis-server: run cargo xtask test"]
fn four_processes_of_fifty_threads_fetch_once_per_refresh_period() {
    fleet_fetches_once_per_period(false);
}

#[test]
#[ignore = "needs redis-server: run cargo xtask test"]
fn four_processes_of_fifty_tasks_fetch_once_per_refresh_period() {
    fleet_fetches_once_per_period(true);
}

#[test]
#[ignore = "needs redis-server: run cargo xtask test"]
fn redis_killed_mid_run_then_restarted() {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let mut redis = RedisServer::start();
    let server = TestServer::start(TokenEndpoint::new().lifetime(LIFETIME));
    let spec = spec(&server, &redis, false, Duration::from_secs(12));
    let started = Instant::now();
    let members: Vec<Member> = (0..4).map(|_| Member::spawn(&spec)).collect();
    let at = |secs: u64| {
        let due = started + Duration::from_secs(secs);
        thread::sleep(due.saturating_duration_since(Instant::now()));
    };

    at(3);
    let sharing = server.count("/token");
    redis.kill();
    at(6);
    let killed = server.count("/token");
    redis.restart();
    at(8);
    let recovering = server.count("/token");
    let reports: Vec<Report> = members.into_iter().map(Member::report).collect();
    let end = server.count("/token");
    let last_window = started.elapsed().saturating_sub(Duration::from_secs(8));

    eprintln!(
        "redis killed at 3 s, restarted at 6 s: requests {sharing} at 3 s, {killed} at 6 s, \
         {recovering} at 8 s, {end} at the end ({last_window:.1?} later)"
    );
    // Tokens were served throughout, without an error.
    for r in &reports {
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert!(r.fetched >= 1, "every member fetched on its own: {r:?}");
    }
    // Sharing before the kill: a request per period for the fleet.
    assert!(sharing <= 3, "{sharing} requests in the first 3 s");
    // Redis gone: each process fetches for itself, a request per period each.
    assert!(
        killed - sharing >= 4,
        "{} requests while Redis was down ({sharing} → {killed})",
        killed - sharing
    );
    // Redis back: the fleet shares again.
    assert!(
        end - recovering < one_client_bound(last_window),
        "{} requests in the last {last_window:?} ({recovering} → {end}), {reports:?}",
        end - recovering
    );
    let fetched: u64 = reports.iter().map(|r| r.fetched).sum();
    assert_eq!(usize::try_from(fetched).unwrap(), end);
}

#[test]
#[ignore = "needs redis-server: run cargo xtask test"]
fn a_killed_lock_holder_is_taken_over_after_the_lock_ttl() {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let redis = RedisServer::start();
    // The first request stalls: its sender holds the lock when it is killed.
    let server = TestServer::start(
        Script::new()
            .once(Reply::token("never-delivered", Some(LIFETIME)).delay(Duration::from_secs(30)))
            .then(TokenEndpoint::new()),
    );
    let spec = Spec {
        threads: 1,
        run_ms: 0,
        lock_ttl_ms: 1500,
        max_wait_ms: 20_000,
        ..spec(&server, &redis, false, Duration::ZERO)
    };
    let request = config(&spec.token_url).default_request();
    let store = RedisStore::new(&redis.url()).unwrap();
    let lock_key = store.lock_key(&request);
    let exists = |key: &str| -> bool {
        redis::cmd("EXISTS")
            .arg(key)
            .query(&mut redis.connection())
            .unwrap()
    };

    let holder = Member::spawn(&spec);
    assert!(server.wait_for_requests(1, Duration::from_secs(10)));
    assert!(exists(&lock_key), "the holder took the lock");
    let waiter = Member::spawn(&spec);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(server.count("/token"), 1, "the waiter waits for the holder");
    let killed_at = Instant::now();
    holder.kill();

    let report = waiter.report();
    eprintln!(
        "lock holder killed: the waiter had its token {:.1?} after the kill ({} ms in all)",
        killed_at.elapsed(),
        report.first_ms
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.ok, 1);
    // It took the lock over when it expired (well before its own 20 s wait ran out),
    // fetched, and shared the token.
    assert!(killed_at.elapsed() < Duration::from_secs(10));
    assert_eq!((report.fetched, report.shared), (1, 0));
    assert_eq!(server.count("/token"), 2);
    let token = report.tokens.first().unwrap().clone();
    assert_eq!(token, "token-1");
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(store.token_key(&request))
        .query(&mut redis.connection())
        .unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(stored["access_token"], token);
    assert!(!exists(&lock_key), "released by its new owner");
}
