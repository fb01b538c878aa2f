//! What is particular to ureq: a caller-supplied agent, and attaching a token to a ureq
//! request. The behaviour every client shares is in the conformance suite
//! (`conformance.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::time::Duration;

use client_credentials_core::ErrorCode;
use client_credentials_testkit::conformance::authorized::RejectOnce;
use client_credentials_testkit::{TestServer, TokenEndpoint};
use client_credentials_ureq::{Client, Config, Error};

fn config(server: &TestServer) -> Config {
    Config::builder()
        .token_url(server.url("/token"))
        .client_id("my-service")
        .client_secret("s3cr3t")
        .build()
        .unwrap()
}

#[test]
fn a_caller_supplied_agent_still_gets_error_bodies_and_no_redirects() {
    // An agent with ureq's defaults: statuses as errors, ten redirects.
    let agent = client_credentials_ureq::ureq::Agent::new_with_defaults();
    let server = TestServer::start(TokenEndpoint::new().client("my-service", "another-secret"));
    let client = Client::builder(config(&server))
        .agent(agent)
        .timeout(Duration::from_secs(2))
        .build();
    let error = match client.token().unwrap_err() {
        Error::Token(e) => e,
        other => panic!("expected a token error, got {other:?}"),
    };
    assert_eq!(error.oauth_code(), Some(&ErrorCode::InvalidClient));
}

#[test]
fn authorize_ureq_attaches_the_token() {
    let case = RejectOnce::start();
    let client = Client::builder(case.config()).seed(1).build();
    // A ureq request: send it, get the 401, invalidate, try once more.
    let agent = client_credentials_ureq::ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let (request, token) = client.authorize_ureq(agent.get(case.api())).unwrap();
    assert_eq!(request.call().unwrap().status(), 401);
    assert!(client.invalidate(&token));
    let (request, _) = client.authorize_ureq(agent.get(case.api())).unwrap();
    assert_eq!(request.call().unwrap().status(), 204);
    case.assert_retried_with_a_fresh_token();
}

#[test]
fn the_client_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<Client>();
    assert_send_sync_clone::<Error>();
}

#[test]
fn an_async_assertion_source_is_refused_without_a_request() {
    use client_credentials_core::federated::AssertionProblem;
    use client_credentials_core::{AssertionSource, TokenError};

    let server = TestServer::start(TokenEndpoint::new());
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id("workload")
        .client_assertion(AssertionSource::from_async_fn(|| async {
            Ok("aGQ.cGw.c2ln".to_owned())
        }))
        .build()
        .unwrap();
    let error = Client::new(config).token().unwrap_err();
    let Error::Token(TokenError::Assertion(e)) = &error else {
        panic!("expected an assertion error, got {error:?}")
    };
    assert_eq!(e.problem, AssertionProblem::NeedsAsync);
    // It will never work: the cool-down of a rejection, not a retry loop.
    assert!(!error.is_retryable());
    assert_eq!(
        error.to_string(),
        "token request not sent: assertion function is async and this client cannot await it"
    );
    assert_eq!(server.request_count(), 0);
}

#[test]
fn the_default_agent_presents_the_client_certificate_and_a_supplied_one_is_left_alone() {
    let identity = client_credentials_core::ClientIdentity::from_pem(
        include_str!("../../client-credentials-core/tests/keys/mtls-client.pem"),
        include_str!("../../client-credentials-core/tests/keys/mtls-client.key"),
    )
    .unwrap();
    let config = Config::builder()
        .token_url("https://mtls.as.example.com/token")
        .client_id("my-service")
        .client_certificate(identity.clone())
        .build()
        .unwrap();
    let client = Client::builder(config.clone()).build();
    let tls = client.agent().config().tls_config();
    let cert = tls.client_cert().expect("the identity is on the agent");
    assert_eq!(cert.certs().len(), 1);
    assert_eq!(
        cert.certs()[0].der(),
        identity.certificates_der().next().unwrap()
    );
    assert_eq!(cert.private_key().der(), identity.expose_private_key_der());

    let own = client_credentials_ureq::ureq::Agent::new_with_defaults();
    let client = Client::builder(config).agent(own).build();
    assert!(client.agent().config().tls_config().client_cert().is_none());
}
