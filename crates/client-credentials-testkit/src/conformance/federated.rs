//! Client assertions made elsewhere (workload identity federation): the source is read for
//! every fetch, what it holds is sent as `client_assertion` with `private_key_jwt`, and a
//! source that holds nothing usable sends nothing and names itself in the error.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use client_credentials_core::federated::AssertionProblem;
use client_credentials_core::{AssertionSource, BodyFormat, Config, TokenError};

use super::{Harness, HarnessError, HarnessOptions, value};
use crate::{Handler as _, Request, TestServer, TokenEndpoint};

const JWT_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A compact JWT of the shape a workload gets (not verified by the test server).
fn jwt(n: usize) -> String {
    format!("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ3b3JrbG9hZCJ9{n}.c2lnbmF0dXJl{n}")
}

/// A file in the temporary directory that removes itself.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self(std::env::temp_dir().join(format!(
            "client-credentials-{}-{n}-{name}",
            std::process::id()
        )))
    }

    fn write(&self, contents: &str) {
        std::fs::write(&self.0, contents).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn server() -> (Arc<TokenEndpoint>, TestServer) {
    let endpoint = Arc::new(TokenEndpoint::new());
    let handler = Arc::clone(&endpoint);
    let server = TestServer::start(move |r: &Request| handler.handle(r));
    (endpoint, server)
}

fn client<H: Harness>(server: &TestServer, source: AssertionSource, format: BodyFormat) -> H {
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id("workload")
        .client_assertion(source)
        .body_format(format)
        .build()
        .unwrap();
    H::build(config, &HarnessOptions::new().seed(1))
}

fn sent_assertion(request: &Request) -> (Option<String>, Option<String>, Option<String>) {
    (
        request.param("client_assertion_type"),
        request.param("client_assertion"),
        request.param("client_id"),
    )
}

fn assertion_error(error: &HarnessError) -> &client_credentials_core::AssertionError {
    match error.token_error() {
        Some(TokenError::Assertion(e)) => e,
        other => panic!("expected an assertion error, got {other:?} ({error:?})"),
    }
}

/// The file is read for every fetch: a projected token rotated between two fetches is the
/// one sent the second time, in a form body and in a JSON body, with no secret and no
/// `Authorization` header.
pub fn an_assertion_file_is_read_again_for_every_fetch<H: Harness>() {
    for format in [BodyFormat::Form, BodyFormat::Json] {
        let (_endpoint, server) = server();
        let file = TempFile::new("token");
        file.write(&format!("{}\n", jwt(1)));
        let harness = client::<H>(&server, AssertionSource::file(&file.0), format);
        let first = harness.token().unwrap();
        file.write(&jwt(2));
        harness.force_refresh();
        let _refreshing = harness.token().unwrap();
        assert!(server.wait_for_requests(2, std::time::Duration::from_secs(10)));
        let requests = server.requests();
        let type_ = Some(JWT_TYPE.to_owned());
        let id = Some("workload".to_owned());
        assert_eq!(
            sent_assertion(&requests[0]),
            (type_.clone(), Some(jwt(1)), id.clone())
        );
        assert_eq!(sent_assertion(&requests[1]), (type_, Some(jwt(2)), id));
        for request in &requests {
            assert_eq!(request.is_json(), format == BodyFormat::Json);
            assert_eq!(request.header("authorization"), None);
            assert_eq!(request.param("client_secret"), None);
        }
        assert_eq!(value(&first), "token-1");
    }
}

/// A missing, empty or malformed file is an error that names the path, and nothing at all
/// reaches the token endpoint.
pub fn an_unusable_assertion_file_sends_nothing<H: Harness>() {
    let cases: [(Option<&str>, AssertionProblem); 3] = [
        (None, AssertionProblem::Missing),
        (Some(" \n"), AssertionProblem::Empty),
        (Some("not-a-jwt"), AssertionProblem::Malformed),
    ];
    for (contents, problem) in cases {
        let (_endpoint, server) = server();
        let file = TempFile::new("unusable");
        if let Some(contents) = contents {
            file.write(contents);
        }
        let harness = client::<H>(&server, AssertionSource::file(&file.0), BodyFormat::Form);
        let error = harness.token().unwrap_err();
        let assertion = assertion_error(&error);
        assert_eq!(assertion.problem, problem);
        let path = file.0.display().to_string();
        assert!(error.to_string().contains(&path), "{error}");
        assert!(error.classes_agree());
        assert!(error.token_error().unwrap().is_retryable());
        assert_eq!(server.request_count(), 0, "{problem:?}");
    }
}

/// A function source is called for every fetch, and its failure is the fetch's error; an
/// unset environment variable names itself.
pub fn function_and_environment_sources<H: Harness>() {
    let (_endpoint, server) = server();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let source = AssertionSource::from_fn(move || Ok(jwt(counted.fetch_add(1, Ordering::SeqCst))));
    let harness = client::<H>(&server, source, BodyFormat::Form);
    harness.token().unwrap();
    harness.force_refresh();
    harness.token().unwrap();
    assert!(server.wait_for_requests(2, std::time::Duration::from_secs(10)));
    let sent: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|r| r.param("client_assertion"))
        .collect();
    assert_eq!(sent, [Some(jwt(0)), Some(jwt(1))]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let failing = AssertionSource::from_fn(|| Err("identity agent not running".into()));
    let (_endpoint, server) = self::server();
    let error = client::<H>(&server, failing, BodyFormat::Form)
        .token()
        .unwrap_err();
    assert!(matches!(
        &assertion_error(&error).problem,
        AssertionProblem::Function(m) if m == "identity agent not running"
    ));
    assert_eq!(server.request_count(), 0);

    let unset = AssertionSource::env("CLIENT_CREDENTIALS_CONFORMANCE_UNSET_ASSERTION");
    let error = client::<H>(&server, unset, BodyFormat::Form)
        .token()
        .unwrap_err();
    assert_eq!(assertion_error(&error).problem, AssertionProblem::Missing);
    assert!(
        error
            .to_string()
            .contains("environment variable CLIENT_CREDENTIALS_CONFORMANCE_UNSET_ASSERTION")
    );
    assert_eq!(server.request_count(), 0);
}

/// Revocation and introspection authenticate as a fetch does: each reads the source again
/// and sends its assertion; an unusable source sends neither.
pub fn revocation_and_introspection_read_the_source_too<H: Harness>() {
    let server = TestServer::start(
        crate::Router::new()
            .route("/token", TokenEndpoint::new())
            .route("/revoke", crate::Reply::new(200))
            .route(
                "/introspect",
                crate::Reply::json(200, &serde_json::json!({ "active": true })),
            ),
    );
    let file = TempFile::new("operations");
    file.write(&jwt(1));
    let config = Config::builder()
        .token_url(server.url("/token"))
        .revocation_url(server.url("/revoke"))
        .introspection_url(server.url("/introspect"))
        .client_id("workload")
        .client_assertion(AssertionSource::file(&file.0))
        .build()
        .unwrap();
    let harness = H::build(config, &HarnessOptions::new().seed(1));
    let token = harness.token().unwrap();
    file.write(&jwt(2));
    assert!(harness.introspect(token.access_token()).unwrap().active);
    file.write(&jwt(3));
    harness.revoke(token.access_token()).unwrap();
    let sent: Vec<(String, Option<String>, Option<String>)> = server
        .requests()
        .iter()
        .map(|r| {
            (
                r.path.clone(),
                r.param("client_assertion"),
                r.param("client_assertion_type"),
            )
        })
        .collect();
    let type_ = Some(JWT_TYPE.to_owned());
    assert_eq!(
        sent,
        [
            ("/token".to_owned(), Some(jwt(1)), type_.clone()),
            ("/introspect".to_owned(), Some(jwt(2)), type_.clone()),
            ("/revoke".to_owned(), Some(jwt(3)), type_),
        ]
    );
    file.write("");
    let error = harness.introspect(token.access_token()).unwrap_err();
    assert!(error.to_string().contains("is empty"), "{error}");
    assert_eq!(
        server.request_count(),
        3,
        "nothing sent without an assertion"
    );
}

/// A source that hangs (a stuck mount or identity agent) fails the fetch within the
/// client's timeout, and nothing is sent.
pub fn a_source_that_hangs_fails_within_the_timeout<H: Harness>() {
    let (_endpoint, server) = server();
    let hung = AssertionSource::from_fn(|| {
        std::thread::sleep(std::time::Duration::from_secs(3));
        Ok(jwt(0))
    });
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id("workload")
        .client_assertion(hung)
        .build()
        .unwrap();
    let options = HarnessOptions::new()
        .seed(1)
        .timeout(std::time::Duration::from_millis(300));
    let error = H::build(config, &options).token().unwrap_err();
    assert!(
        matches!(
            &assertion_error(&error).problem,
            AssertionProblem::Function(m) if m == "no assertion within 300 ms"
        ),
        "{error:?}"
    );
    assert_eq!(server.request_count(), 0);
}
