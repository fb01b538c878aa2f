//! Fault injection through both adapters: a loopback token endpoint that misbehaves on
//! command (bursts of 500/502/503, 429 with `Retry-After` in seconds and as an HTTP date, an
//! HTML page, truncated JSON, a connection reset mid-body, a stalled body, a 10 MB body, a
//! redirect to another host), with the whole lifecycle around each fault:
//!
//! 1. a short-lived token is fetched while the server is healthy;
//! 2. the server turns faulty, and the refresh ahead of expiry hits the fault: every caller
//!    keeps getting the still-valid cached token, at once;
//! 3. once that token's usable life is over, callers get the typed error of the fault;
//! 4. the number of requests the server saw during the fault is within what the policy
//!    allows (see [`policy_bound`]), and every request the client started reached the
//!    server exactly once (no hidden retries);
//! 5. the server heals, and the client recovers with exactly one more request.
//!
//! The conformance suite (`client_credentials_testkit::conformance::faults`) checks each
//! fault on a cold cache; this one checks what happens to a client that already holds a token.
//! The policy is shrunk so that a case takes two to four seconds (five for the stalled body,
//! which runs into the 3 s transport timeout): 2 s tokens, a 0.5 s expiry margin, the
//! refresh at half the usable life, 50 to 200 ms backoffs and a 400 ms cool-down.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use client_credentials::http::{HeaderMap, HeaderValue, StatusCode};
use client_credentials::session::{Action, Cache, Failure, Policy, Session, WallClock};
use client_credentials::{
    Config, ResponseProblem, Token, TokenError, TransportError, TransportErrorKind,
};
use client_credentials_testkit::conformance::{Harness, HarnessError, HarnessOptions};
use client_credentials_testkit::{
    Handler as _, Reply, Request, RetryAfter, TestServer, TokenEndpoint,
};

/// The lifetime of every token issued (`expires_in`).
const LIFETIME: Duration = Duration::from_secs(2);
/// With [`policy`]: usable for 1.5 s after it was requested, refreshed from 0.75 s on.
const USABLE: Duration = Duration::from_millis(1500);
/// The refresh of a token starts this long after it was requested (no jitter).
const REFRESH_AT: Duration = Duration::from_millis(750);
/// Phase 2 ends this long after the first request was sent, before the usable life.
const SERVED_UNTIL: Duration = Duration::from_millis(1200);
/// The transport timeout of both clients. The stalled body runs into it, so a refresh that
/// hits that fault is in flight for this long: a caller that ran or waited for the refresh
/// would take as long.
const TIMEOUT: Duration = Duration::from_secs(3);
/// A call that is served from the cache returns within this: a third of [`TIMEOUT`], yet
/// a hundred times what a cached call takes even on a loaded machine.
const CACHED_CALL: Duration = Duration::from_secs(1);
/// A guard against a client that never recovers once the server is healed: four times the
/// longest wait the fault can impose then (a 2 s `Retry-After`). That recovery takes exactly
/// one request is asserted by counting.
const RECOVERY: Duration = Duration::from_secs(8);
/// The jitter seed of both clients and of the model in [`policy_bound`].
const SEED: u64 = 0x00fa_0175;
const SECRET: &str = "fault-suite-secret";

fn policy() -> Policy {
    let mut policy = Policy::default();
    policy.expiry_margin = Duration::from_millis(500);
    policy.refresh_ratio = 0.5;
    policy.refresh_jitter = 0.0;
    policy.initial_backoff = Duration::from_millis(50);
    policy.max_backoff = Duration::from_millis(200);
    policy.rejection_cooldown = Duration::from_millis(400);
    policy
}

fn config(token_url: &str) -> Config {
    Config::builder()
        .token_url(token_url)
        .client_id("fault-suite")
        .client_secret(SECRET)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// The two adapters behind one blocking interface: the harnesses of their conformance
// suites (the async one runs a multi-threaded runtime, so the refresh runs in a spawned
// task while the test thread sleeps between calls).

#[path = "../crates/client-credentials-ureq/tests/harness/mod.rs"]
mod ureq_harness;

#[path = "../crates/client-credentials-reqwest/tests/harness/mod.rs"]
mod reqwest_harness;

fn client<H: Harness>(config: Config) -> H {
    H::build(
        config,
        &HarnessOptions::new()
            .policy(policy())
            .seed(SEED)
            .timeout(TIMEOUT),
    )
}

/// A token, or the typed error of the fault (never a configuration error).
fn token<H: Harness>(client: &H) -> Result<Arc<Token>, TokenError> {
    client.token().map_err(HarnessError::into_token_error)
}

// ---------------------------------------------------------------------------------------
// The faults.

/// What a fault amounts to as an input of the core's session, for [`policy_bound`].
enum Input {
    Response(u16, &'static [(&'static str, &'static str)], &'static [u8]),
    Transport(TransportErrorKind),
    TooLarge,
}

struct Fault {
    /// The misbehaving server's reply to its `n`-th faulty request.
    reply: Box<dyn Fn(usize) -> Reply + Send + Sync>,
    /// The same answer as the session sees it. Where the real answer varies (a `Retry-After`
    /// date), the input that allows the most requests.
    input: Input,
    /// Whether a caller's error is the typed error of this fault.
    expected: fn(&TokenError) -> bool,
    /// The wait the policy guarantees after each such failure, whatever the jitter: the
    /// cool-down, or the `Retry-After`. `None` for retryable failures (full jitter).
    min_spacing: Option<Duration>,
    /// A server on another host that must receive nothing (the redirect's target).
    other_host: Option<TestServer>,
}

fn retryable_server_error(e: &TokenError) -> bool {
    matches!(e, TokenError::Server { status, .. } if status.is_server_error()) && e.is_retryable()
}

fn server_error_burst() -> Fault {
    Fault {
        reply: Box::new(|n| match n % 3 {
            0 => Reply::new(500),
            1 => Reply::html(502, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
            _ => Reply::text(503, "text/plain", "upstream connect error"),
        }),
        input: Input::Response(503, &[], b""),
        expected: retryable_server_error,
        min_spacing: None,
        other_host: None,
    }
}

fn rate_limited(e: &TokenError) -> bool {
    matches!(e, TokenError::RateLimited { status, .. } if status.as_u16() == 429)
        && e.is_retryable()
}

fn rate_limited_seconds() -> Fault {
    Fault {
        reply: Box::new(|_| Reply::rate_limited(RetryAfter::Seconds(1))),
        input: Input::Response(429, &[("retry-after", "1")], b""),
        expected: |e| rate_limited(e) && e.retry_after() == Some(Duration::from_secs(1)),
        min_spacing: Some(Duration::from_secs(1)),
        other_host: None,
    }
}

fn rate_limited_http_date() -> Fault {
    Fault {
        // Two seconds from now, in whole seconds: a wait between one and two seconds.
        reply: Box::new(|_| {
            Reply::rate_limited(RetryAfter::Date(SystemTime::now() + Duration::from_secs(2)))
        }),
        input: Input::Response(429, &[("retry-after", "1")], b""),
        expected: |e| {
            rate_limited(e)
                && e.retry_after()
                    .is_some_and(|d| d > Duration::ZERO && d <= Duration::from_secs(2))
        },
        min_spacing: Some(Duration::from_secs(1)),
        other_host: None,
    }
}

/// An unusable 200, which asking again will not fix: the cool-down applies.
fn unusable_success(e: &TokenError) -> bool {
    matches!(e, TokenError::InvalidResponse { status, excerpt: None, .. } if status.as_u16() == 200)
        && !e.is_retryable()
}

fn html_page() -> Fault {
    Fault {
        // A captive portal or an SSO proxy answering in place of the token endpoint.
        reply: Box::new(|_| {
            Reply::html(
                200,
                "<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please sign in</body></html>",
            )
        }),
        input: Input::Response(200, &[("content-type", "text/html")], b"<html></html>"),
        expected: unusable_success,
        min_spacing: Some(policy().rejection_cooldown),
        other_host: None,
    }
}

fn truncated_json() -> Fault {
    Fault {
        // Well framed (the Content-Length matches), but the JSON stops halfway.
        reply: Box::new(|_| {
            Reply::text(
                200,
                "application/json",
                r#"{"access_token":"fault-token-x","token_type":"Bea"#,
            )
        }),
        input: Input::Response(200, &[("content-type", "application/json")], b"{\"access"),
        expected: |e| {
            unusable_success(e)
                && matches!(
                    e,
                    TokenError::InvalidResponse {
                        problem: ResponseProblem::Unparseable,
                        ..
                    }
                )
        },
        min_spacing: Some(policy().rejection_cooldown),
        other_host: None,
    }
}

fn transport(kind: TransportErrorKind) -> impl Fn(&TokenError) -> bool {
    move |e| matches!(e, TokenError::Transport(t) if t.kind() == kind) && e.is_retryable()
}

fn reset_mid_body() -> Fault {
    Fault {
        reply: Box::new(|n| {
            Reply::token(&format!("never-delivered-{n}"), Some(LIFETIME)).reset_after(12)
        }),
        input: Input::Transport(TransportErrorKind::Io),
        expected: |e| transport(TransportErrorKind::Io)(e),
        min_spacing: None,
        other_host: None,
    }
}

fn stalled_body() -> Fault {
    Fault {
        // Headers and a few bytes, then nothing for far longer than the client's timeout.
        reply: Box::new(|n| {
            Reply::token(&format!("never-delivered-{n}"), Some(LIFETIME))
                .stall_after(12, Duration::from_secs(30))
        }),
        input: Input::Transport(TransportErrorKind::Timeout),
        expected: |e| transport(TransportErrorKind::Timeout)(e),
        min_spacing: None,
        other_host: None,
    }
}

fn ten_megabytes() -> Fault {
    Fault {
        reply: Box::new(|_| Reply::large(10 * 1024 * 1024)),
        input: Input::TooLarge,
        expected: |e| {
            matches!(e, TokenError::TooLarge { limit, .. } if *limit == 1024 * 1024)
                && !e.is_retryable()
        },
        min_spacing: Some(policy().rejection_cooldown),
        other_host: None,
    }
}

fn redirect_to_another_host() -> Fault {
    let other = TestServer::start(TokenEndpoint::new().prefix("stolen-"));
    let location = other.url("/token");
    Fault {
        reply: Box::new(move |n| {
            let status = [307, 308, 302, 301, 303][n % 5];
            Reply::redirect(status, &location)
        }),
        input: Input::Response(307, &[("location", "https://elsewhere.example/token")], b""),
        expected: |e| {
            matches!(
                e,
                TokenError::InvalidResponse {
                    problem: ResponseProblem::UnexpectedStatus,
                    ..
                }
            ) && !e.is_retryable()
        },
        min_spacing: Some(policy().rejection_cooldown),
        other_host: Some(other),
    }
}

// ---------------------------------------------------------------------------------------
// The policy's bound.

/// The most requests that the session allows during a fault that lasts `window` from its
/// first request: the same policy and seed, run in virtual time by the fastest possible
/// driver, one that polls at every deadline and gets every answer instantly. A real client
/// answers later and polls later, so it can only send fewer; if it sent more, it did not
/// wait where the session said to.
fn policy_bound(config: &Config, input: &Input, window: Duration) -> usize {
    let start = Instant::now();
    let clock = WallClock::new(start, SystemTime::now());
    // Seeded as the client's cache seeds the session of this request shape, so that the
    // model draws the same jitter as the client.
    let request = config.default_request();
    let seed = Cache::session_seed(SEED, request.cache_key());
    let session = &mut Session::new(request, policy(), clock, seed);
    let Action::Send { id, .. } = session.poll(start) else {
        panic!("a fresh session sends");
    };
    let mut json = HeaderMap::new();
    json.insert("content-type", HeaderValue::from_static("application/json"));
    let body = format!(
        r#"{{"access_token":"model-token","token_type":"Bearer","expires_in":{}}}"#,
        LIFETIME.as_secs()
    );
    let _ = session.handle_response(start, id, StatusCode::OK, &json, body.as_bytes());

    let mut first = None;
    let mut faults = 0;
    for _ in 0..100_000 {
        let Some(now) = session.poll_timeout() else {
            break;
        };
        if let Action::Send { id, .. } = session.poll(now) {
            let first = *first.get_or_insert(now);
            if now - first > window {
                return faults;
            }
            faults += 1;
            match input {
                Input::Response(status, headers, body) => {
                    let mut map = HeaderMap::new();
                    for (name, value) in *headers {
                        map.insert(*name, HeaderValue::from_static(value));
                    }
                    let status = StatusCode::from_u16(*status).unwrap();
                    let _ = session.handle_response(now, id, status, &map, body);
                }
                Input::Transport(kind) => {
                    let error = TransportError::from_kind(*kind);
                    let _ = session.handle_failure(now, id, Failure::Transport(error));
                }
                Input::TooLarge => {
                    let error = TokenError::TooLarge {
                        status: Some(StatusCode::OK),
                        limit: config.max_body(),
                    };
                    let _ = session.handle_failure(now, id, Failure::Error(error));
                }
            }
        }
    }
    panic!("the model never left the fault window");
}

// ---------------------------------------------------------------------------------------
// The scenario.

struct Shown<'a>(&'a TokenError);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", self.0, self.0)
    }
}

fn scenario<H: Harness>(kind: &str, fault: Fault) {
    let Fault {
        reply,
        input,
        expected,
        min_spacing,
        other_host,
    } = fault;
    let issuer = Arc::new(
        TokenEndpoint::new()
            .lifetime(LIFETIME)
            .prefix("fault-token-"),
    );
    let healed = Arc::new(AtomicBool::new(false));
    let faults_served = Arc::new(AtomicUsize::new(0));
    let server = {
        let (issuer, healed, faults_served) = (
            Arc::clone(&issuer),
            Arc::clone(&healed),
            Arc::clone(&faults_served),
        );
        TestServer::start(move |request: &Request| {
            if request.index == 0 || healed.load(Ordering::SeqCst) {
                issuer.handle(request)
            } else {
                reply(faults_served.fetch_add(1, Ordering::SeqCst))
            }
        })
    };
    let config = config(&server.url("/token"));
    let client: H = client(config.clone());

    // 1. A short-lived token, from a healthy server.
    let started = Instant::now();
    let first = token(&client).expect("the first token");
    let received = Instant::now();
    assert_eq!(first.access_token().expose_secret(), "fault-token-1");
    assert_eq!(server.request_count(), 1);

    // 2. From now on the server misbehaves. The refresh ahead of expiry (from 0.75 s on)
    //    hits the fault; callers keep getting the cached token, without waiting.
    //    The token was requested after `started`, so its usable life cannot end before
    //    `started + USABLE`: a call that returns before that must be served. A call on a
    //    loaded machine may return later; it then ends phase 2, with the token (its
    //    usable life was not over when the session looked) or with the fault's error.
    let mut cached_calls = 0;
    while started.elapsed() < SERVED_UNTIL {
        let call = Instant::now();
        let result = token(&client);
        let returned = Instant::now();
        match result {
            Ok(token) => {
                assert_eq!(token.access_token(), first.access_token(), "{kind}");
                assert!(
                    returned - call < CACHED_CALL,
                    "{kind}: a caller waited {:?} for a failing refresh",
                    returned - call
                );
                cached_calls += 1;
            }
            Err(e) if returned >= started + USABLE => {
                assert!(expected(&e), "{kind}: unexpected {}", Shown(&e));
                break;
            }
            Err(e) => panic!(
                "{kind}: the still-valid token must be served while the refresh fails, \
                 got {}",
                Shown(&e)
            ),
        }
        sleep(Duration::from_millis(20));
    }
    assert!(cached_calls > 10, "{kind}: {cached_calls}");
    assert!(
        server.wait_for_requests(2, Duration::from_secs(2)),
        "{kind}: the refresh never reached the server"
    );

    // 3. The token's usable life is over: callers get the typed error of the fault.
    let expired = received + USABLE + Duration::from_millis(50);
    sleep(expired.saturating_duration_since(Instant::now()));
    let error = token(&client).expect_err("no valid token is left and the server still fails");
    assert!(expected(&error), "{kind}: unexpected {}", Shown(&error));

    // 4. Heal the server, and count what the fault cost.
    healed.store(true, Ordering::SeqCst);
    let healed_at = Instant::now();
    let faults = faults_served.load(Ordering::SeqCst);
    // Every faulty request was sent before `healed_at`, and none before the refresh of the
    // first token, which was requested after `started`. The window from `started +
    // REFRESH_AT` covers them all whatever the scheduling delays (the server's read times
    // would not: a late read of the first fault shortens the window).
    let window = healed_at.saturating_duration_since(started + REFRESH_AT);
    let bound = policy_bound(&config, &input, window);
    assert!(faults >= 1, "{kind}");
    assert!(
        faults <= bound,
        "{kind}: {faults} requests during a {window:?} fault; the policy allows {bound}"
    );
    if let Some(spacing) = min_spacing {
        let most = 1 + usize::try_from(window.as_millis() / spacing.as_millis()).unwrap();
        assert!(
            faults <= most,
            "{kind}: {faults} requests in {window:?}, at most one per {spacing:?} allowed"
        );
    }

    // 5. The client recovers with one request, once the wait the fault imposed is over.
    let recovered = loop {
        match token(&client) {
            Ok(token) => break token,
            Err(e) => {
                assert!(expected(&e), "{kind}: while recovering, {}", Shown(&e));
                assert!(
                    healed_at.elapsed() < RECOVERY,
                    "{kind}: no recovery within {RECOVERY:?} of the server healing"
                );
                sleep(Duration::from_millis(10));
            }
        }
    };
    assert_eq!(
        recovered.access_token().expose_secret(),
        "fault-token-2",
        "{kind}"
    );
    for _ in 0..5 {
        assert_eq!(
            token(&client).unwrap().access_token(),
            recovered.access_token()
        );
    }
    // A request that was already in flight when the server healed may still have been
    // answered with the fault: count again now that nothing is in flight.
    let faults = faults_served.load(Ordering::SeqCst);
    assert_eq!(issuer.issued(), 2, "{kind}: one request after healing");
    assert_eq!(server.request_count(), 2 + faults, "{kind}");
    let counters = client.counters();
    assert_eq!(
        counters.fetches_started,
        u64::try_from(server.request_count()).unwrap(),
        "{kind}: every request the session started reached the server once, and \
         nothing else was sent"
    );
    assert_eq!(counters.fetches_succeeded, 2, "{kind}");
    if let Some(other) = other_host {
        assert!(
            !other.wait_for_requests(1, Duration::from_millis(50)),
            "{kind}"
        );
        assert_eq!(
            other.connections(),
            0,
            "{kind}: the redirect's target was contacted"
        );
    }
}

macro_rules! faults {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn ureq() {
                    super::scenario::<super::ureq_harness::UreqHarness>("ureq", super::$name());
                }

                #[test]
                fn reqwest() {
                    super::scenario::<super::reqwest_harness::ReqwestHarness>(
                        "reqwest",
                        super::$name(),
                    );
                }
            }
        )*
    };
}

faults!(
    server_error_burst,
    rate_limited_seconds,
    rate_limited_http_date,
    html_page,
    truncated_json,
    reset_mid_body,
    stalled_body,
    ten_megabytes,
    redirect_to_another_host,
);
