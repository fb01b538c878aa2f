//! Mutual TLS (RFC 8705) over real HTTPS on 127.0.0.1, with the fixtures of
//! `tests/interop/certs`: `tls_client_auth` (chain checked against the client CA, subject
//! compared) and `self_signed_tls_client_auth` (thumbprint compared) clients get
//! certificate-bound tokens (`cnf.x5t#S256`), wrong or missing certificates are
//! `invalid_client`, secret clients still work, and the demo resource takes a bound token
//! only over a connection presenting its certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failure report.

use std::time::Duration;

use client_credentials_core::server::{PresentedCertificate, RegisteredClient};
use client_credentials_core::{ClientIdentity, Config};
use client_credentials_server::{EmbeddedServer, StartError, TlsError};
use serde_json::Value;

const CA: &str = include_str!("../../../tests/interop/certs/ca.pem");
const SERVER: &str = include_str!("../../../tests/interop/certs/server.pem");
const SERVER_KEY: &str = include_str!("../../../tests/interop/certs/server.key");
const CLIENT: &str = include_str!("../../../tests/interop/certs/client.pem");
const CLIENT_KEY: &str = include_str!("../../../tests/interop/certs/client.key");
const SELF_SIGNED: &str = include_str!("../../../tests/interop/certs/self-signed.pem");
const SELF_SIGNED_KEY: &str = include_str!("../../../tests/interop/certs/self-signed.key");
const OTHER: &str = include_str!("../../../tests/interop/certs/other.pem");
const OTHER_KEY: &str = include_str!("../../../tests/interop/certs/other.key");

fn thumbprint(pem: &str) -> String {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    PresentedCertificate::from_der(&der).x5t_s256().to_owned()
}

fn server() -> EmbeddedServer {
    EmbeddedServer::builder()
        .tls(SERVER, SERVER_KEY)
        .client_ca(CA)
        .registered_client(
            RegisteredClient::tls_client_auth("ca-issued", "CN=mtls-client").scopes(["read"]),
        )
        .registered_client(
            RegisteredClient::self_signed_tls_client_auth("self-signed", thumbprint(SELF_SIGNED))
                .scopes(["read"]),
        )
        .client("secret-client", "pw", ["read"])
        .client("introspector", "pw", Vec::<String>::new())
        .start()
        .unwrap()
}

fn ca() -> ureq::tls::Certificate<'static> {
    ureq::tls::Certificate::from_pem(CA.as_bytes())
        .unwrap()
        .to_owned()
}

/// A ureq client for `client_id` presenting `cert`, if any (then without a secret), or
/// with the secret `pw`.
fn client(
    server: &EmbeddedServer,
    client_id: &str,
    cert: Option<(&str, &str)>,
) -> client_credentials_ureq::Client {
    let config = Config::builder()
        .token_url(server.token_url())
        .client_id(client_id);
    let config = match cert {
        Some((cert, key)) => {
            config.client_certificate(ClientIdentity::from_pem(cert, key).unwrap())
        }
        None => config.client_secret("pw"),
    };
    client_credentials_ureq::Client::builder(config.build().unwrap())
        .root_certificates([ca()])
        .timeout(Duration::from_secs(10))
        .build()
}

fn status(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> u16 {
    match result {
        Ok(response) => response.status().as_u16(),
        Err(ureq::Error::StatusCode(code)) => code,
        Err(e) => panic!("transport error: {e}"),
    }
}

fn introspect(server: &EmbeddedServer, token: &str) -> Value {
    let introspector = client(server, "introspector", None);
    let mut response = introspector
        .agent()
        .post(server.introspection_url())
        .content_type("application/x-www-form-urlencoded")
        .send(format!(
            "client_id=introspector&client_secret=pw&token={token}"
        ))
        .unwrap();
    assert_eq!(response.status(), 200);
    serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap()
}

fn resource(client: &client_credentials_ureq::Client, server: &EmbeddedServer, token: &str) -> u16 {
    status(
        client
            .agent()
            .get(server.resource_url())
            .header("authorization", format!("Bearer {token}"))
            .call(),
    )
}

#[test]
fn urls_are_https_and_metadata_lists_mtls() {
    let server = server();
    assert_eq!(
        server.issuer(),
        format!("https://127.0.0.1:{}", server.port())
    );
    assert!(server.token_url().starts_with("https://127.0.0.1:"));
    let anonymous = client(&server, "introspector", None);
    let mut response = anonymous.agent().get(server.metadata_url()).call().unwrap();
    let metadata: Value =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    let methods = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(methods.contains(&Value::from("tls_client_auth")));
    assert!(methods.contains(&Value::from("self_signed_tls_client_auth")));
    assert_eq!(metadata["tls_client_certificate_bound_access_tokens"], true);
    assert_eq!(
        metadata["mtls_endpoint_aliases"]["token_endpoint"],
        server.token_url()
    );
}

#[test]
fn tls_client_auth_gets_a_certificate_bound_token() {
    let server = server();
    let identity = ClientIdentity::from_pem(CLIENT, CLIENT_KEY).unwrap();
    let client = client(&server, "ca-issued", Some((CLIENT, CLIENT_KEY)));
    let token = client.token().unwrap();
    assert_eq!(token.token_type(), "Bearer");
    let token = token.access_token().expose_secret().to_owned();
    let introspection = introspect(&server, &token);
    assert_eq!(introspection["active"], true);
    assert_eq!(introspection["client_id"], "ca-issued");
    assert_eq!(introspection["token_type"], "Bearer");
    assert_eq!(introspection["cnf"]["x5t#S256"], identity.x5t_s256());

    // The bound token over its certificate, over another one, and over none.
    assert_eq!(resource(&client, &server, &token), 200);
    let other = self::client(&server, "ca-issued", Some((OTHER, OTHER_KEY)));
    assert_eq!(resource(&other, &server, &token), 401);
    let none = self::client(&server, "introspector", None);
    assert_eq!(resource(&none, &server, &token), 401);

    // Introspection and revocation authenticate the client by its certificate too.
    let asked = |c: &client_credentials_ureq::Client, url: String| {
        status(
            c.agent()
                .post(url)
                .content_type("application/x-www-form-urlencoded")
                .send(format!("client_id=ca-issued&token={token}")),
        )
    };
    assert_eq!(asked(&other, server.introspection_url()), 401);
    assert_eq!(asked(&client, server.introspection_url()), 200);
    assert_eq!(asked(&other, server.revocation_url()), 401);
    assert_eq!(introspect(&server, &token)["active"], true);
    assert_eq!(asked(&client, server.revocation_url()), 200);
    assert_eq!(introspect(&server, &token)["active"], false);
}

#[test]
fn self_signed_tls_client_auth_gets_a_certificate_bound_token() {
    let server = EmbeddedServer::builder()
        .tls(SERVER, SERVER_KEY)
        .registered_client(
            RegisteredClient::self_signed_tls_client_auth("self-signed", thumbprint(SELF_SIGNED))
                .scopes(["read"]),
        )
        .client("introspector", "pw", Vec::<String>::new())
        .jwt_access_tokens()
        .jwt_algorithm(client_credentials_server::JwtAlgorithm::EdDsa)
        .start()
        .unwrap();
    let identity = ClientIdentity::from_pem(SELF_SIGNED, SELF_SIGNED_KEY).unwrap();
    let client = client(&server, "self-signed", Some((SELF_SIGNED, SELF_SIGNED_KEY)));
    let token = client
        .token()
        .unwrap()
        .access_token()
        .expose_secret()
        .to_owned();
    assert_eq!(
        introspect(&server, &token)["cnf"]["x5t#S256"],
        identity.x5t_s256()
    );
    // The JWT carries the confirmation too.
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["cnf"]["x5t#S256"], identity.x5t_s256());
    assert_eq!(resource(&client, &server, &token), 200);
}

#[test]
fn wrong_or_missing_certificates_are_invalid_client() {
    let server = server();
    // Right subject, wrong issuer.
    let other = client(&server, "ca-issued", Some((OTHER, OTHER_KEY)));
    let refused = other.token().unwrap_err();
    assert!(refused.is_invalid_client(), "{refused:?}");
    // A CA-issued certificate is not the self-signed client's.
    let wrong = client(&server, "self-signed", Some((CLIENT, CLIENT_KEY)));
    assert!(wrong.token().unwrap_err().is_invalid_client());
    // No certificate at all: the body has only the client id.
    let agent = client(&server, "introspector", None);
    let response = agent
        .agent()
        .post(server.token_url())
        .content_type("application/x-www-form-urlencoded")
        .send("grant_type=client_credentials&client_id=ca-issued");
    match response {
        Ok(mut r) => {
            assert_eq!(r.status(), 401);
            let body: Value =
                serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
            assert_eq!(body["error"], "invalid_client");
        }
        Err(ureq::Error::StatusCode(code)) => assert_eq!(code, 401),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn secret_clients_still_work_over_tls() {
    let server = server();
    let client = client(&server, "secret-client", None);
    let token = client
        .token()
        .unwrap()
        .access_token()
        .expose_secret()
        .to_owned();
    let introspection = introspect(&server, &token);
    assert_eq!(introspection["active"], true);
    assert!(introspection.get("cnf").is_none());
    assert_eq!(resource(&client, &server, &token), 200);
}

#[test]
fn bad_pem_is_a_typed_start_error() {
    let no_cert = EmbeddedServer::builder().tls("nothing", SERVER_KEY).start();
    assert!(matches!(
        no_cert,
        Err(StartError::Tls(TlsError::NoCertificate))
    ));
    let no_key = EmbeddedServer::builder().tls(SERVER, "nothing").start();
    assert!(matches!(
        no_key,
        Err(StartError::Tls(TlsError::NoPrivateKey))
    ));
    let mismatch = EmbeddedServer::builder().tls(SERVER, CLIENT_KEY).start();
    let error = mismatch.unwrap_err();
    assert!(
        matches!(error, StartError::Tls(TlsError::Refused(_))),
        "{error:?}"
    );
    assert!(!format!("{error:?}{error}").contains("PRIVATE KEY"));
    let bad_ca = EmbeddedServer::builder()
        .tls(SERVER, SERVER_KEY)
        .client_ca("nothing")
        .start();
    assert!(matches!(bad_ca, Err(StartError::Tls(TlsError::ClientCa))));
    let builder = EmbeddedServer::builder().tls(SERVER, SERVER_KEY);
    assert!(!format!("{builder:?}").contains("PRIVATE KEY"));
}

#[tokio::test(flavor = "multi_thread")]
async fn reqwest_gets_a_certificate_bound_token() {
    use client_credentials_reqwest::reqwest;
    let server = server();
    let identity = ClientIdentity::from_pem(CLIENT, CLIENT_KEY).unwrap();
    let config = Config::builder()
        .token_url(server.token_url())
        .client_id("ca-issued")
        .client_certificate(identity.clone())
        .build()
        .unwrap();
    let root = reqwest::Certificate::from_pem(CA.as_bytes()).unwrap();
    let client = client_credentials_reqwest::Client::builder(config)
        .timeout(Duration::from_secs(10))
        .http_client_builder(reqwest::Client::builder().tls_certs_only([root]))
        .build()
        .unwrap();
    let token = client.token().await.unwrap();
    let token = token.access_token().expose_secret().to_owned();
    let introspection = tokio::task::spawn_blocking({
        let token = token.clone();
        let server_url = (server.introspection_url(), server.token_url());
        move || {
            let introspector = client_credentials_ureq::Client::builder(
                Config::builder()
                    .token_url(server_url.1)
                    .client_id("introspector")
                    .client_secret("pw")
                    .build()
                    .unwrap(),
            )
            .root_certificates([ca()])
            .build();
            let mut response = introspector
                .agent()
                .post(server_url.0)
                .content_type("application/x-www-form-urlencoded")
                .send(format!(
                    "client_id=introspector&client_secret=pw&token={token}"
                ))
                .unwrap();
            serde_json::from_str::<Value>(&response.body_mut().read_to_string().unwrap()).unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(introspection["cnf"]["x5t#S256"], identity.x5t_s256());
    let answer = client
        .http_client()
        .get(server.resource_url())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

#[test]
fn stops_promptly_with_a_silent_connection_open() {
    let server = server();
    // Connected, but never starts the TLS handshake.
    let silent = std::net::TcpStream::connect(server.addr()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let started = std::time::Instant::now();
    drop(server);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}
