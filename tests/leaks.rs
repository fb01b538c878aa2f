//! No secret leaks: both adapters' success and failure paths (each through the harness of
//! its conformance suite, included below) run under a global `tracing`
//! subscriber at TRACE that also takes the `log` records of ureq, reqwest, hyper and rustls,
//! every error is formatted with `{}` and `{:?}` (and so are the clients, tokens and
//! counters), and neither the client secret (raw, form-encoded or inside the Basic
//! credentials) nor any access token (raw or as a `Bearer` value) may appear anywhere.
//!
//! Every test uses its own secret and token prefix, so that the tests run in parallel
//! against the one process-wide log and each checks only what it could have leaked.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::fmt::Debug;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use client_credentials::{AccessToken, AuthMethod, Config, ConfigBuilder};
use client_credentials_testkit::conformance::{Harness, HarnessOptions, Outgoing};
use client_credentials_testkit::{
    Reply, Request, Router, Script, TestServer, TokenEndpoint, refused_url,
};
use tracing_subscriber::fmt::format::FmtSpan;

/// The target of ureq-proto's TRACE dump of every byte it reads and writes (request head
/// with `Authorization`, response bodies with tokens). Its lines are left out of the checks
/// below and shown to leak by `ureq_proto_dumps_the_wire_at_trace`: a finding, not ours to
/// fix, that users must know about (`ureq_proto=debug` or lower in production).
const WIRE_DUMP: &str = " ureq_proto::util: ";

/// Everything logged by this process, as text.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Sink;

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the global subscriber once: TRACE, every span's fields when it opens and
/// closes, and `log` records (ureq, reqwest, hyper-util, rustls log through `log`).
fn capture() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
            .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
            .with_thread_names(true)
            .with_writer(|| Sink)
            .try_init()
            .expect("no other global subscriber in this test binary");
    });
}

fn log_text() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned()
}

/// What one test must never see, and everything it formatted.
struct Case {
    id: String,
    secret: String,
    /// The prefix of every token the test's servers issue: no token, and no part of one
    /// that long, may show.
    token_prefix: String,
    /// Other values that must not show (tokens that do not start with the prefix).
    extra: Vec<String>,
    formatted: Vec<String>,
}

impl Case {
    /// Unique strings for `name`. Tokens are as long as real ones (oidc-provider's are 43
    /// characters); the secret holds no character that form encoding would change.
    fn new(name: &str) -> Self {
        Self {
            id: format!("leak-client-{name}"),
            secret: format!("SeCrEt{name}Zq9x7Lw2"),
            token_prefix: format!("AcTok{name}Vb8n3Kp5Rt6Yh1Jd4"),
            extra: Vec::new(),
            formatted: Vec::new(),
        }
    }

    fn config(&self, token_url: &str) -> ConfigBuilder {
        Config::builder()
            .token_url(token_url)
            .client_id(&self.id)
            .client_secret(self.secret.as_str())
    }

    fn endpoint(&self) -> TokenEndpoint {
        TokenEndpoint::new()
            .client(&self.id, &self.secret)
            .prefix(&self.token_prefix)
    }

    /// Formats `value` with `{:?}`, and keeps it.
    fn debug(&mut self, value: &impl Debug) {
        self.formatted.push(format!("{value:?}"));
        self.formatted.push(format!("{value:#?}"));
    }

    /// Formats an error with `{}` (and its sources) and `{:?}`, and keeps it.
    fn error(&mut self, error: &(dyn std::error::Error + 'static)) {
        self.formatted.push(format!("{error}"));
        self.formatted.push(format!("{error:?}"));
        self.formatted.push(format!("{error:#?}"));
        let mut source = error.source();
        while let Some(e) = source {
            self.formatted.push(format!("{e} / {e:?}"));
            source = e.source();
        }
    }

    fn forbidden(&self) -> Vec<String> {
        let basic = STANDARD.encode(format!("{}:{}", self.id, self.secret));
        let mut forbidden = vec![
            self.secret.clone(),
            basic,
            self.token_prefix.clone(),
            // A part of a token long enough to be worth something.
            self.token_prefix[..12].to_owned(),
        ];
        forbidden.extend(self.extra.iter().cloned());
        forbidden
    }

    /// Asserts that nothing forbidden was logged or formatted.
    fn assert_clean(&self) {
        let log = log_text();
        for needle in self.forbidden() {
            for (i, line) in log.lines().enumerate() {
                if line.contains(WIRE_DUMP) {
                    // A known leak in ureq-proto, shown by `ureq_proto_dumps_the_wire_at_trace`.
                    continue;
                }
                assert!(
                    !line.contains(&needle),
                    "{needle:?} was logged, line {i}:\n{line}"
                );
            }
            for text in &self.formatted {
                assert!(!text.contains(&needle), "{needle:?} was formatted:\n{text}");
            }
        }
        assert!(
            !self.formatted.is_empty(),
            "the case formatted nothing, so it checked nothing"
        );
    }
}

#[path = "../crates/client-credentials-ureq/tests/harness/mod.rs"]
mod ureq_harness;

#[path = "../crates/client-credentials-reqwest/tests/harness/mod.rs"]
mod reqwest_harness;

use reqwest_harness::ReqwestHarness;
use ureq_harness::UreqHarness;

/// Runs `test` against each adapter, through its harness.
macro_rules! for_each_adapter {
    ($test:ident ( $($arg:expr),* )) => {
        $test::<UreqHarness>($($arg),*);
        $test::<ReqwestHarness>($($arg),*);
    };
}

fn client<H: Harness>(config: Config) -> H {
    H::build(config, &HarnessOptions::new())
}

/// Success with each client authentication method, through both adapters, and the token
/// used on a resource server.
#[test]
fn successful_fetches() {
    capture();
    let mut case = Case::new("ok");
    let server = TestServer::start(
        Router::new()
            .route("/token", case.endpoint())
            .route("/orders", Reply::text(200, "application/json", "[]")),
    );
    for method in [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretBasicRaw,
        AuthMethod::client_secret_post(),
    ] {
        let config = case
            .config(&server.url("/token"))
            .auth_method(method)
            .build()
            .unwrap();
        case.debug(&config);
        for_each_adapter!(fetch_and_use(&mut case, &server, &config));
    }
    // Every fetch really carried the credentials, and every resource request a token.
    let requests = server.requests();
    assert!(requests.iter().any(|r| r.contains(&case.secret)));
    assert!(requests.iter().filter(|r| r.path == "/orders").all(|r| {
        r.header("authorization")
            .is_some_and(|v| v.contains(&case.token_prefix))
    }));
    assert_eq!(server.count("/orders"), 6);
    case.assert_clean();
}

fn fetch_and_use<H: Harness>(case: &mut Case, server: &TestServer, config: &Config) {
    let client: H = client(config.clone());
    let token = client.token().unwrap();
    case.debug(&token);
    case.debug(&client);
    case.debug(&client.counters());
    let answer = client
        .send_authorized(Outgoing::get(&server.url("/orders")))
        .unwrap();
    assert_eq!(answer.status, 200);
    case.debug(&answer);
    case.formatted.push(answer.debug);
    case.debug(&client.counters());
}

/// A refusal whose description and `WWW-Authenticate` echo the secret the client sent.
#[test]
fn invalid_client_echoing_the_secret() {
    capture();
    let mut case = Case::new("refused");
    let echo = format!(
        "client {} authenticated with {} which is wrong",
        case.id, case.secret
    );
    let challenge = format!(
        r#"Basic realm="token", error_description="{}""#,
        case.secret
    );
    let server = TestServer::start(
        Reply::oauth_error(401, "invalid_client", Some(&echo))
            .header("www-authenticate", &challenge),
    );
    for method in [
        AuthMethod::ClientSecretBasic,
        AuthMethod::client_secret_post(),
    ] {
        let config = case
            .config(&server.url("/token"))
            .auth_method(method)
            .build()
            .unwrap();
        for_each_adapter!(refused(&mut case, &config));
    }
    assert!(server.requests().iter().all(|r| r.contains(&case.secret)));
    case.assert_clean();
}

fn refused<H: Harness>(case: &mut Case, config: &Config) {
    let client: H = client(config.clone());
    let error = client.token().unwrap_err();
    case.error(error.error());
    case.debug(&client.counters());
}

/// A 5xx HTML page that echoes the secret and the Basic credentials back.
#[test]
fn server_error_page_echoing_the_credentials() {
    capture();
    let mut case = Case::new("html");
    let basic = STANDARD.encode(format!("{}:{}", case.id, case.secret));
    let page = format!(
        "<html><body><h1>500</h1><pre>client_secret={}\nAuthorization: Basic {basic}</pre></body></html>",
        case.secret
    );
    let server = TestServer::start(Reply::html(500, &page));
    let config = case.config(&server.url("/token")).build().unwrap();
    for_each_adapter!(failed_fetch(&mut case, &config, HarnessOptions::new()));
    case.assert_clean();
}

fn failed_fetch<H: Harness>(case: &mut Case, config: &Config, options: HarnessOptions) {
    let error = H::build(config.clone(), &options).token().unwrap_err();
    case.error(error.error());
}

/// A token endpoint that answers with an error quoting the token it issued before: to a
/// refresh in the background, then to a caller, through each adapter.
#[test]
fn token_endpoint_quoting_the_token() {
    capture();
    let mut case = Case::new("echo");
    for_each_adapter!(quoting_the_token(&mut case));
    case.assert_clean();
}

fn quoting_the_token<H: Harness>(case: &mut Case) {
    let quote = format!(
        "token {}1 is already active for this client",
        case.token_prefix
    );
    let server = TestServer::start(
        Script::new()
            .once(case.endpoint())
            .times(2, Reply::oauth_error(400, "invalid_request", Some(&quote)))
            .then(case.endpoint()),
    );
    let config = case.config(&server.url("/token")).build().unwrap();

    // A token, then a forced refresh that fails while the token is still served.
    let client: H = client(config.clone());
    let token = client.token().unwrap();
    client.force_refresh();
    assert_eq!(client.token().unwrap().access_token(), token.access_token());
    // The refresh runs on its own: wait for its verdict before looking.
    let deadline = Instant::now() + Duration::from_secs(5);
    while client.counters().fetches_failed == 0 {
        assert!(Instant::now() < deadline, "the refresh never failed");
        std::thread::sleep(Duration::from_millis(10));
    }
    let error = client.last_error().unwrap();
    assert!(error.to_string().contains("already active"), "{error}");
    case.error(&error);
    case.debug(&client.counters());
    case.debug(&client);

    // The script's second refusal goes to a caller (of a new client, with no token).
    let client: H = self::client(config);
    let error = client.token().unwrap_err();
    assert!(error.to_string().contains("already active"), "{error}");
    case.error(error.error());
    case.debug(&client.counters());
}

/// The 401 retry of `send_authorized` with a resource server that quotes the rejected
/// token.
#[test]
fn send_authorized_retry_after_a_401_quoting_the_token() {
    capture();
    let mut case = Case::new("retry");
    for_each_adapter!(retry_after_a_quoting_401(&mut case));
    case.assert_clean();
}

fn retry_after_a_quoting_401<H: Harness>(case: &mut Case) {
    // The client's first token is rejected.
    let rejected = format!("{}1", case.token_prefix);
    let server = TestServer::start(Router::new().route("/token", case.endpoint()).route(
        "/orders",
        move |request: &Request| {
            let bearer = request.header("authorization").unwrap_or_default();
            if bearer.ends_with(rejected.as_str()) {
                Reply::oauth_error(
                    401,
                    "invalid_token",
                    Some(&format!("{bearer} has been revoked")),
                )
                .header(
                    "www-authenticate",
                    &format!(r#"Bearer error="invalid_token", error_description="{bearer}""#),
                )
            } else {
                Reply::text(200, "application/json", "[]")
            }
        },
    ));
    let config = case.config(&server.url("/token")).build().unwrap();
    let client: H = client(config);
    // The 401 quotes the token in its body and `WWW-Authenticate`: that response is not
    // shown to the caller; only what is logged of it is checked.
    let answer = client
        .send_authorized(Outgoing::get(&server.url("/orders")))
        .unwrap();
    assert_eq!(answer.status, 200, "retried with a fresh token");
    case.debug(&answer);
    case.formatted.push(answer.debug);
    case.debug(&client.counters());
    case.debug(&client);
    assert_eq!(server.count("/token"), 2);
    assert_eq!(server.count("/orders"), 2);
}

/// Signed client assertions: a server that echoes the assertion it got, in its error
/// description and its `WWW-Authenticate`, to `private_key_jwt` and `client_secret_jwt`
/// clients, then one that issues a token. Neither the assertions, nor the private key, nor
/// the HMAC secret may show anywhere.
#[test]
fn signed_assertions_echoed_by_the_server() {
    capture();
    let mut case = Case::new("jwt");
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/client-credentials-core/tests/keys/ec-p256.pem"
    ))
    .unwrap();
    // The key's base64 body, a line at a time: no part of it may show.
    case.extra.extend(
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .map(|l| l[..l.len().min(24)].to_owned()),
    );
    let hs_secret = format!("{}-long-enough-for-hs256-0123456789", case.secret);
    let echo = |request: &Request| {
        let body = request.body_text();
        let assertion = form_urlencoded::parse(body.as_bytes())
            .find(|(n, _)| n == "client_assertion")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        Reply::oauth_error(
            401,
            "invalid_client",
            Some(&format!("bad assertion {assertion}")),
        )
        .header(
            "www-authenticate",
            &format!(r#"Bearer error="invalid_client", error_description="{assertion}""#),
        )
    };
    let refusing = TestServer::start(echo);
    // The testkit's endpoint verifies no assertion: the client is public there.
    let issuing = TestServer::start(
        TokenEndpoint::new()
            .public_client(&case.id)
            .prefix(&case.token_prefix),
    );
    let key = client_credentials::AssertionKey::from_pem(&pem)
        .unwrap()
        .with_key_id("k");
    case.debug(&key);
    let configs = [
        Config::builder()
            .token_url(refusing.url("/token"))
            .client_id(&case.id)
            .private_key(key.clone())
            .build()
            .unwrap(),
        Config::builder()
            .token_url(refusing.url("/token"))
            .client_id(&case.id)
            .client_secret(hs_secret.as_str())
            .auth_method(AuthMethod::ClientSecretJwt)
            .build()
            .unwrap(),
    ];
    for config in &configs {
        case.debug(config);
        case.debug(&config.default_request());
        for_each_adapter!(refused(&mut case, config));
    }
    let issuing_config = Config::builder()
        .token_url(issuing.url("/token"))
        .client_id(&case.id)
        .private_key(key)
        .build()
        .unwrap();
    for_each_adapter!(fetch(&mut case, &issuing_config));
    // Every assertion that went out is forbidden from here on.
    for request in refusing.requests().iter().chain(issuing.requests().iter()) {
        let body = request.body_text();
        let assertion = form_urlencoded::parse(body.as_bytes())
            .find(|(n, _)| n == "client_assertion")
            .map(|(_, v)| v.into_owned())
            .expect("every request carried an assertion");
        // The signature, and the signed part (its claims are no secret, but the whole is
        // a credential until it expires).
        let (signed, signature) = assertion.rsplit_once('.').unwrap();
        case.extra.push(signature.to_owned());
        case.extra.push(signed.to_owned());
    }
    case.extra.push(hs_secret);
    assert_eq!(refusing.request_count(), 4);
    case.assert_clean();
}

/// Federated assertions: a workload token in a file, echoed back by a refusing server in
/// its description and `WWW-Authenticate`, then used for a token; and a function source
/// whose assertion is refused the same way. The assertion, read and formatted
/// ([`client_credentials::ClientAssertion`]), must not show anywhere.
#[test]
fn federated_assertions_echoed_by_the_server() {
    capture();
    let mut case = Case::new("federated");
    let assertion = format!(
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ{}In0.WoRkLoAdSiGnAtUrE{}",
        case.id.replace('-', ""),
        "Qx7Zp2Lm9Vb4Nc8"
    );
    let echo = |request: &Request| {
        let sent = request.param("client_assertion").unwrap_or_default();
        Reply::oauth_error(
            401,
            "invalid_client",
            Some(&format!("bad assertion {sent}")),
        )
        .header(
            "www-authenticate",
            &format!(r#"Bearer error="invalid_client", error_description="{sent}""#),
        )
    };
    let refusing = TestServer::start(echo);
    let issuing = TestServer::start(
        TokenEndpoint::new()
            .public_client(&case.id)
            .prefix(&case.token_prefix),
    );
    let path = std::env::temp_dir().join(format!("cc-leak-{}.jwt", std::process::id()));
    std::fs::write(&path, format!("{assertion}\n")).unwrap();
    let file = client_credentials::AssertionSource::file(&path);
    let read = file
        .accept(client_credentials::federated::Read::File(Ok(assertion
            .clone()
            .into_bytes())))
        .unwrap();
    case.debug(&read);
    case.debug(&file);
    let from_fn = {
        let assertion = assertion.clone();
        client_credentials::AssertionSource::from_fn(move || Ok(assertion.clone()))
    };
    for source in [file.clone(), from_fn] {
        let config = Config::builder()
            .token_url(refusing.url("/token"))
            .client_id(&case.id)
            .client_assertion(source)
            .build()
            .unwrap();
        case.debug(&config);
        case.debug(&config.default_request());
        for_each_adapter!(refused(&mut case, &config));
    }
    let issuing_config = Config::builder()
        .token_url(issuing.url("/token"))
        .client_id(&case.id)
        .client_assertion(file)
        .build()
        .unwrap();
    for_each_adapter!(fetch(&mut case, &issuing_config));
    let _ = std::fs::remove_file(&path);
    for request in refusing.requests().iter().chain(issuing.requests().iter()) {
        assert_eq!(request.param("client_assertion"), Some(assertion.clone()));
    }
    let (signed, signature) = assertion.rsplit_once('.').unwrap();
    case.extra.push(signature.to_owned());
    case.extra.push(signed.to_owned());
    assert_eq!(refusing.request_count(), 4);
    case.assert_clean();
}

/// DPoP: a server that echoes the proof it got (its description and `WWW-Authenticate`),
/// then one that issues a DPoP token. Neither the proofs nor the DPoP key may show.
#[test]
fn dpop_proofs_echoed_by_the_server() {
    capture();
    let mut case = Case::new("dpop");
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/client-credentials-core/tests/keys/ed25519.pem"
    ))
    .unwrap();
    // The key's base64 body, a line at a time, by its end: an Ed25519 PEM is one line
    // whose start is the same for every key, and whose end is the private key.
    case.extra.extend(
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .map(|l| l[l.len().saturating_sub(24)..].to_owned()),
    );
    let echo = |request: &Request| {
        let proof = request.header("dpop").unwrap_or_default().to_owned();
        Reply::oauth_error(
            400,
            "invalid_dpop_proof",
            Some(&format!("bad proof {proof}")),
        )
        .header(
            "www-authenticate",
            &format!(r#"DPoP error="invalid_dpop_proof", error_description="{proof}""#),
        )
    };
    let refusing = TestServer::start(echo);
    let issuing = TestServer::start(
        TokenEndpoint::new()
            .client(&case.id, &case.secret)
            .prefix(&case.token_prefix),
    );
    let key = client_credentials::dpop::DpopKey::new(
        client_credentials::AssertionKey::from_pem(&pem).unwrap(),
    );
    case.debug(&key);
    let (id, secret) = (case.id.clone(), case.secret.clone());
    let config_for = |url: String| {
        Config::builder()
            .token_url(url)
            .client_id(&id)
            .client_secret(secret.as_str())
            .dpop(key.clone())
            .build()
            .unwrap()
    };
    let refused_config = config_for(refusing.url("/token"));
    case.debug(&refused_config);
    for_each_adapter!(refused(&mut case, &refused_config));
    let issuing_config = config_for(issuing.url("/token"));
    for_each_adapter!(fetch(&mut case, &issuing_config));
    // Resource requests with a DPoP token: a nonce challenge that quotes the proof, and
    // the retry with a fresh one.
    let bound = TestServer::start(
        Router::new()
            .route(
                "/token",
                TokenEndpoint::new()
                    .client(&case.id, &case.secret)
                    .prefix(&case.token_prefix)
                    .extra("token_type", "DPoP".into()),
            )
            .route("/orders", |request: &Request| {
                let proof = request.header("dpop").unwrap_or_default();
                let claims = client_credentials_testkit::conformance::dpop::proof_claims(request);
                if claims.is_some_and(|c| c["nonce"] == "n-1") {
                    return Reply::text(200, "application/json", "[]");
                }
                Reply::new(401)
                    .header(
                        "www-authenticate",
                        &format!(r#"DPoP error="use_dpop_nonce", error_description="{proof}""#),
                    )
                    .header("dpop-nonce", "n-1")
            }),
    );
    let bound_config = config_for(bound.url("/token"));
    for_each_adapter!(fetch_and_use(&mut case, &bound, &bound_config));
    assert_eq!(bound.count("/orders"), 4, "one nonce retry per adapter");
    let all = [refusing.requests(), issuing.requests(), bound.requests()].concat();
    for request in &all {
        let proof = request
            .header("dpop")
            .expect("every request carried a proof");
        let (signed, signature) = proof.rsplit_once('.').unwrap();
        case.extra.push(signature.to_owned());
        case.extra.push(signed.to_owned());
    }
    case.assert_clean();
}

/// The tower layer on a hyper-util client: a fetch, a 401 that quotes the token (retried),
/// a refusal that echoes the secret; the layer, its service, its answers and its errors are
/// formatted.
#[test]
fn tower_layer_retry_and_refusal() {
    use client_credentials::tower::AuthLayer;
    use http_body_util::{BodyExt as _, Full};
    use tower::{Service as _, ServiceBuilder, ServiceExt as _};

    capture();
    let mut case = Case::new("tower");
    let rejected = format!("{}1", case.token_prefix);
    let server = TestServer::start(Router::new().route("/token", case.endpoint()).route(
        "/orders",
        move |request: &Request| {
            let bearer = request.header("authorization").unwrap_or_default();
            if bearer.ends_with(rejected.as_str()) {
                Reply::oauth_error(401, "invalid_token", Some(&format!("{bearer} revoked"))).header(
                    "www-authenticate",
                    &format!(r#"Bearer error="invalid_token", error_description="{bearer}""#),
                )
            } else {
                Reply::text(200, "application/json", "[]")
            }
        },
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let hyper =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<bytes::Bytes>>();
        let config = case.config(&server.url("/token")).build().unwrap();
        let tokens = client_credentials::reqwest::Client::new(config).unwrap();
        let layer = AuthLayer::new(tokens);
        case.debug(&layer);
        let mut service = ServiceBuilder::new().layer(layer).service(hyper.clone());
        let request = http::Request::get(server.url("/orders"))
            .body(Full::default())
            .unwrap();
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status(), 200, "retried with a fresh token");
        case.debug(&response);
        case.debug(&service);
        let _ = response.into_body().collect().await.unwrap();

        // A refusal whose description echoes the secret.
        let refusing = TestServer::start(Reply::oauth_error(
            401,
            "invalid_client",
            Some(&format!("bad secret {}", case.secret)),
        ));
        let config = case.config(&refusing.url("/token")).build().unwrap();
        let tokens = client_credentials::reqwest::Client::new(config).unwrap();
        let mut service = ServiceBuilder::new()
            .layer(AuthLayer::new(tokens))
            .service(hyper);
        let request = http::Request::get(server.url("/orders"))
            .body(Full::default())
            .unwrap();
        let error = service
            .ready()
            .await
            .unwrap()
            .call(request)
            .await
            .unwrap_err();
        case.error(&*error);
    });
    assert_eq!(server.count("/token"), 2);
    assert_eq!(server.count("/orders"), 2);
    case.assert_clean();
}

/// Transport failures: nothing listening, a reset in the middle of a token response (whose
/// first bytes hold the start of the token), a stalled body.
#[test]
fn transport_failures() {
    capture();
    let mut case = Case::new("wire");
    let token = format!("{}1", case.token_prefix);
    let reply = Reply::token(&token, Some(Duration::from_secs(60)));
    // The body starts `{"access_token":"AcTok…`: each fault comes 40 bytes in.
    let servers = [
        TestServer::start(reply.clone().reset_after(40)),
        TestServer::start(reply.clone().close_after(40)),
        TestServer::start(reply.stall_after(40, Duration::from_secs(10))),
    ];
    let mut urls = vec![refused_url("/token")];
    urls.extend(servers.iter().map(|s| s.url("/token")));
    let options = HarnessOptions::new().timeout(Duration::from_millis(300));
    for url in urls {
        let config = case.config(&url).build().unwrap();
        for_each_adapter!(failed_fetch(&mut case, &config, options.clone()));
    }
    case.assert_clean();
}

/// Revocation and introspection: success, and endpoints whose errors quote the token.
#[test]
fn revocation_and_introspection() {
    capture();
    let mut case = Case::new("revoke");
    let quote = |what: &'static str| {
        move |request: &Request| {
            let token = request.param("token").unwrap_or_default();
            Reply::oauth_error(
                400,
                "invalid_request",
                Some(&format!("cannot {what} {token}: unknown")),
            )
        }
    };
    let good = TestServer::start(
        Router::new()
            .route("/token", case.endpoint())
            .route("/revoke", Reply::new(200))
            .route(
                "/introspect",
                Reply::json(
                    200,
                    &serde_json::json!({ "active": true, "client_id": case.id }),
                ),
            ),
    );
    let bad = TestServer::start(
        Router::new()
            .route("/token", case.endpoint())
            .route("/revoke", quote("revoke"))
            .route("/introspect", quote("introspect")),
    );
    for server in [&good, &bad] {
        let config = case
            .config(&server.url("/token"))
            .revocation_url(server.url("/revoke"))
            .introspection_url(server.url("/introspect"))
            .build()
            .unwrap();
        for_each_adapter!(introspect_and_revoke(&mut case, &config));
    }
    assert_eq!(bad.count("/revoke"), 2);
    assert!(
        bad.requests()
            .iter()
            .filter(|r| r.path == "/revoke")
            .all(|r| r.contains(&case.token_prefix))
    );
    case.assert_clean();
}

fn introspect_and_revoke<H: Harness>(case: &mut Case, config: &Config) {
    let client: H = client(config.clone());
    let token = client.token().unwrap();
    match client.introspect(token.access_token()) {
        Ok(info) => case.debug(&info),
        Err(e) => case.error(e.error()),
    }
    if let Err(e) = client.revoke(token.access_token()) {
        case.error(e.error());
    }
    case.debug(&AccessToken::new(token.access_token().expose_secret()));
}

/// The capture is real: the HTTP stacks' own `log` records reach it, so a leak there would
/// be seen.
#[test]
fn third_party_logs_are_captured() {
    capture();
    let mut case = Case::new("probe");
    let server = TestServer::start(case.endpoint());
    let config = case.config(&server.url("/token")).build().unwrap();
    for_each_adapter!(fetch(&mut case, &config));
    let log = log_text();
    for target in ["ureq", "reqwest", "hyper_util", "client_credentials"] {
        assert!(
            log.lines().any(|l| l.contains(&format!(" {target}"))),
            "nothing logged by {target}"
        );
    }
    assert!(log.contains("TRACE"), "TRACE records are captured");
    case.assert_clean();
}

fn fetch<H: Harness>(case: &mut Case, config: &Config) {
    let token = client::<H>(config.clone()).token().unwrap();
    case.debug(&token);
}

/// Revocation and introspection endpoints that quote tokens too short for the parser's
/// heuristics (it redacts runs of 24 or more token-like characters, except UUIDs): RFC
/// 6749's and RFC 7009's example tokens, and a UUID. The adapters redact the token they
/// asked about from the error.
#[test]
fn revocation_errors_quoting_short_tokens() {
    capture();
    let mut case = Case::new("short");
    let short = [
        "2YotnFZFEjr1zCsicMWpAA",
        "45ghiukldjahdnhzdauz",
        "3f2b8c1e-9d4a-4e7b-8c2d-1a2b3c4d5e6f",
    ];
    for token in short {
        let quote = |request: &Request| {
            let token = request.param("token").unwrap_or_default();
            Reply::oauth_error(
                400,
                "invalid_request",
                Some(&format!("unknown token {token}")),
            )
            .header(
                "www-authenticate",
                &format!(r#"Basic error_description="{token}""#),
            )
        };
        let server = TestServer::start(
            Router::new()
                .route("/token", Reply::token(token, Some(Duration::from_secs(60))))
                .route("/revoke", quote)
                .route(
                    "/introspect",
                    Reply::html(
                        502,
                        &format!("<html><p>upstream failed for {token}</p></html>"),
                    ),
                ),
        );
        let config = case
            .config(&server.url("/token"))
            .revocation_url(server.url("/revoke"))
            .introspection_url(server.url("/introspect"))
            .build()
            .unwrap();
        for_each_adapter!(both_refused(&mut case, &config));
        assert!(
            server
                .requests()
                .iter()
                .filter(|r| r.path != "/token")
                .all(|r| r.contains(token))
        );
    }
    case.extra.extend(short.map(str::to_owned));
    case.assert_clean();
}

fn both_refused<H: Harness>(case: &mut Case, config: &Config) {
    let client: H = client(config.clone());
    let issued = client.token().unwrap();
    case.error(
        client
            .introspect(issued.access_token())
            .unwrap_err()
            .error(),
    );
    case.error(client.revoke(issued.access_token()).unwrap_err().error());
}

/// A finding, kept as a test so that it is seen: ureq-proto logs every byte ureq sends and
/// receives at TRACE (target `ureq_proto::util`, 16 bytes a line, hex and ASCII), so the
/// Basic credentials of a token request and the access token of its response can be read
/// back from its log. ureq's own DEBUG lines redact sensitive headers; this dump does not,
/// and has no switch. With ureq, keep `ureq_proto` below TRACE in production. If this test
/// fails, ureq-proto stopped dumping: remove [`WIRE_DUMP`] from the checks above.
#[test]
fn ureq_proto_dumps_the_wire_at_trace() {
    capture();
    let case = Case::new("dump");
    let server = TestServer::start(case.endpoint());
    let config = case.config(&server.url("/token")).build().unwrap();
    client::<UreqHarness>(config).token().unwrap();
    let thread = std::thread::current().name().unwrap().to_owned();
    let wire: String = log_text()
        .lines()
        .filter(|l| l.contains(WIRE_DUMP) && l.contains(&format!(" {thread} ")))
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    let basic = STANDARD.encode(format!("{}:{}", case.id, case.secret));
    assert!(
        wire.contains(&basic),
        "the Basic credentials are in the dump: {wire}"
    );
    assert!(
        wire.contains(&format!("{}1", case.token_prefix)),
        "so is the token"
    );
}

/// A client certificate's private key (mutual TLS): never in the identity's `Debug`, the
/// configuration's, the clients', their logs, or the errors of a bad key file, through a
/// refusal of the client by the token endpoint.
#[test]
fn client_certificate_keys_never_show() {
    capture();
    let mut case = Case::new("mtls");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/certs/");
    let cert = std::fs::read_to_string(format!("{dir}client.pem")).unwrap();
    let key = std::fs::read_to_string(format!("{dir}client.key")).unwrap();
    // The key's base64 body, a line at a time (lines of 16 characters or more).
    case.extra.extend(
        key.lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 16)
            .map(str::to_owned),
    );
    let identity = client_credentials::ClientIdentity::from_pem(&cert, &key).unwrap();
    case.debug(&identity);
    // A key that is cut short: the error says what is wrong, not what it saw.
    let mut broken = key.lines().collect::<Vec<_>>();
    broken.remove(broken.len() - 2);
    let error = client_credentials::ClientIdentity::from_pem(&cert, broken.join("\n")).unwrap_err();
    case.debug(&error);
    case.formatted.push(error.to_string());
    let server = TestServer::start(Reply::oauth_error(
        401,
        "invalid_client",
        Some("no certificate was presented"),
    ));
    let config = Config::builder()
        .token_url(server.url("/token"))
        .client_id(&case.id)
        .client_certificate(identity)
        .build()
        .unwrap();
    case.debug(&config);
    for_each_adapter!(refused(&mut case, &config));
    case.assert_clean();
}
