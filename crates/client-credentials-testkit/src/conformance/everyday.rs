//! The everyday calls that users of other clients expect: restoring a stored token,
//! forgetting every token, per-request headers and timeouts, a static credential, and the
//! error classes.

use std::time::{Duration, Instant, SystemTime};

use client_credentials_core::{StaticCredential, Token, TokenError, TokenParams};

use super::authorized::{config, tokens};
use super::{Harness, HarnessErrorKind, HarnessOptions, Outgoing, value};
use crate::{Reply, Request, Router, TestServer, TokenEndpoint};

/// A token as an earlier run stored it: fetched from `server`, serialised with
/// `storable()`, read back.
fn stored_token<H: Harness>(server: &TestServer) -> Token {
    let earlier = tokens::<H>(server);
    let token = earlier.token().unwrap();
    let json = serde_json::to_string(&token.storable()).unwrap();
    serde_json::from_str(&json).unwrap()
}

/// A restored token is served without a request, until it is due for refresh; an
/// expired one is refused with the reason and fetched anew; a restored token never
/// replaces one that lives longer.
pub fn a_restored_token_is_served_without_a_request<H: Harness>() {
    let server = TestServer::start(TokenEndpoint::new().lifetime(Duration::from_secs(3600)));
    let stored = stored_token::<H>(&server);
    assert_eq!(server.count("/token"), 1);

    let restarted = tokens::<H>(&server);
    assert!(restarted.restore(stored.clone()).unwrap());
    let served = restarted.token().unwrap();
    assert_eq!(value(&served), value(&stored));
    assert_eq!(
        server.count("/token"),
        1,
        "the restored token needed no request"
    );

    // A token that expired while the process was down: refused, and the next call fetches.
    let expired = {
        let body = br#"{"access_token":"old-one","token_type":"Bearer","expires_in":60}"#;
        let issued = SystemTime::now() - Duration::from_secs(3600);
        config(&server.url("/token"))
            .default_request()
            .parse_response(issued, http::StatusCode::OK, &http::HeaderMap::new(), body)
            .unwrap()
    };
    let fresh = tokens::<H>(&server);
    let refused = fresh.restore(expired).unwrap_err();
    assert_eq!(refused.kind(), HarnessErrorKind::Other);
    assert!(
        refused.to_string().contains("usable life is over"),
        "{refused}"
    );
    assert_ne!(value(&fresh.token().unwrap()), "old-one");
    assert_eq!(server.count("/token"), 2);

    // The cache keeps the token that lives longer.
    let shorter = {
        let body = br#"{"access_token":"shorter","token_type":"Bearer","expires_in":600}"#;
        config(&server.url("/token"))
            .default_request()
            .parse_response(
                SystemTime::now(),
                http::StatusCode::OK,
                &http::HeaderMap::new(),
                body,
            )
            .unwrap()
    };
    assert!(!fresh.restore(shorter).unwrap());
    assert_ne!(value(&fresh.token().unwrap()), "shorter");
}

/// `clear()` forgets the token of every request shape: the next calls fetch anew.
pub fn clear_forgets_every_token<H: Harness>() {
    let server = TestServer::start(TokenEndpoint::new());
    let client = tokens::<H>(&server);
    let first = client.token().unwrap();
    let reports = client
        .token_for(&TokenParams::new().scopes(["reports.read"]))
        .unwrap();
    assert_eq!(server.count("/token"), 2);
    assert_eq!(client.clear(), 2);
    assert_eq!(client.cached_shapes(), 0);
    let second = client.token().unwrap();
    assert_ne!(value(&second), value(&first), "a new token after clear()");
    let reports_again = client
        .token_for(&TokenParams::new().scopes(["reports.read"]))
        .unwrap();
    assert_ne!(value(&reports_again), value(&reports));
    assert_eq!(server.count("/token"), 4);
    assert_eq!(client.clear(), 2);
    assert_eq!(client.clear(), 0, "nothing left to forget");
}

/// Headers of a request shape reach the token endpoint; reserved ones are refused before
/// anything is sent; a shape's timeout bounds its token request.
pub fn per_request_headers_and_timeouts<H: Harness>() {
    let server = TestServer::start(TokenEndpoint::new());
    let client = tokens::<H>(&server);
    let tenant = TokenParams::new().header("X-Tenant", "acme");
    let acme = client.token_for(&tenant).unwrap();
    let request = server.last_request().unwrap();
    assert_eq!(request.header("x-tenant"), Some("acme"));
    assert!(
        request.basic_auth().is_some(),
        "the credentials are untouched"
    );
    let other = client
        .token_for(&TokenParams::new().header("X-Tenant", "globex"))
        .unwrap();
    assert_ne!(value(&acme), value(&other), "a header is part of the shape");

    for reserved in ["Authorization", "content-type", "Cookie", "DPoP", "Host"] {
        let error = client
            .token_for(&TokenParams::new().header(reserved, "x"))
            .unwrap_err();
        assert_eq!(error.kind(), HarnessErrorKind::Config, "{reserved}");
    }
    assert_eq!(server.count("/token"), 2, "refused shapes send nothing");

    let stalled = TestServer::start(Router::new().route("/token", |_: &Request| {
        Reply::token("late", None).delay(Duration::from_secs(5))
    }));
    let slow = H::build(
        config(&stalled.url("/token")),
        &HarnessOptions::new().timeout(Duration::from_secs(10)),
    );
    let started = Instant::now();
    let error = slow
        .token_for(&TokenParams::new().timeout(Duration::from_millis(300)))
        .unwrap_err()
        .into_token_error();
    assert!(error.is_timeout(), "{error:?}");
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "the call's 300 ms bound the request, not the client's 10 s: {waited:?}"
    );
}

/// A static credential authorizes requests with its header, with no token endpoint, and a
/// 401 is returned as it is, never retried.
pub fn a_static_credential_is_sent_as_it_is<H: Harness>() {
    let api = TestServer::start(Router::new().route("/api", |r: &Request| {
        match (r.header("x-api-key"), r.header("authorization")) {
            (Some("k-93f1c2"), None) => Reply::text(200, "text/plain", "key ok"),
            (None, Some("Bearer long-lived")) => Reply::text(200, "text/plain", "bearer ok"),
            _ => Reply::new(401).header("www-authenticate", r#"Bearer error="invalid_token""#),
        }
    }));
    let unused = TestServer::start(TokenEndpoint::new());
    let harness = tokens::<H>(&unused);
    let key = StaticCredential::api_key("X-Api-Key", "k-93f1c2").unwrap();
    let answer = harness
        .send_static(&key, Outgoing::get(&api.url("/api")))
        .unwrap();
    assert_eq!((answer.status, answer.text().as_str()), (200, "key ok"));
    assert!(!answer.debug.contains("k-93f1c2"), "{}", answer.debug);
    let bearer = StaticCredential::bearer("long-lived").unwrap();
    let answer = harness
        .send_static(&bearer, Outgoing::get(&api.url("/api")))
        .unwrap();
    assert_eq!(answer.text(), "bearer ok");
    let wrong = StaticCredential::bearer("revoked").unwrap();
    let answer = harness
        .send_static(&wrong, Outgoing::get(&api.url("/api")).body("once"))
        .unwrap();
    assert_eq!(
        answer.status, 401,
        "a static credential's 401 is the caller's"
    );
    assert_eq!(api.count("/api"), 3, "never retried");
    assert_eq!(unused.count("/token"), 0, "no token endpoint involved");
}

/// The adapters' error predicates name the class of each answer of the token endpoint.
pub fn error_predicates_classify_the_answers<H: Harness>() {
    type Class = fn(&TokenError) -> bool;
    let cases: [(Reply, Class); 3] = [
        (Reply::oauth_error(401, "invalid_client", None), |e| {
            e.is_invalid_client()
        }),
        (Reply::oauth_error(400, "invalid_scope", None), |e| {
            e.is_invalid_scope()
        }),
        (Reply::rate_limited(crate::RetryAfter::Seconds(30)), |e| {
            e.is_rate_limited() && e.retry_after() == Some(Duration::from_secs(30))
        }),
    ];
    for (reply, class) in cases {
        let status = reply.status();
        let server =
            TestServer::start(Router::new().route("/token", move |_: &Request| reply.clone()));
        let error = tokens::<H>(&server).token().unwrap_err();
        assert!(
            error.token_error().is_some_and(class),
            "HTTP {status}: {error:?}"
        );
        assert!(
            error.classes_agree(),
            "the adapter's predicates agree with the core's: {error:?}"
        );
    }
}
