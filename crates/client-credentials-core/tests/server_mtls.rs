//! RFC 8705 client authentication, decided by the sans-IO endpoint from what the TLS
//! terminator attached: a trusted subject for `tls_client_auth`, a thumbprint for
//! `self_signed_tls_client_auth`, and the thumbprint in the grant for a bound token.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failure report.

use client_credentials_core::server::{
    ClientAuthMethod, EndpointError, Grant, PresentedCertificate, RegisteredClient, Rejection,
    TokenEndpoint,
};
use http::Request;

fn endpoint(methods: &[ClientAuthMethod]) -> TokenEndpoint {
    TokenEndpoint::builder()
        .scope("read", "Read")
        .auth_methods(methods.iter().copied())
        .build()
        .unwrap()
}

fn all() -> TokenEndpoint {
    let methods: Vec<_> = ClientAuthMethod::ALL
        .into_iter()
        .chain(ClientAuthMethod::TLS)
        .collect();
    endpoint(&methods)
}

fn clients() -> Vec<RegisteredClient> {
    vec![
        RegisteredClient::tls_client_auth("ca", "CN=svc").scopes(["read"]),
        RegisteredClient::self_signed_tls_client_auth("self", "thumb").scopes(["read"]),
        RegisteredClient::new("secret", "pw").scopes(["read"]),
    ]
}

fn decide(
    endpoint: &TokenEndpoint,
    body: &str,
    certificate: Option<PresentedCertificate>,
) -> Result<Grant, EndpointError> {
    let request = Request::post("/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.as_bytes().to_vec())
        .unwrap();
    let incoming = endpoint
        .parse(&request)?
        .with_client_certificate(certificate);
    let clients = clients();
    let client = clients
        .iter()
        .find(|c| c.client_id() == incoming.client_id());
    endpoint.authorize(&incoming, client)
}

/// The reason of an `invalid_client` refusal: 401 when the endpoint accepts Basic (it owes
/// a challenge), 400 otherwise, as for every `invalid_client`.
fn reason(result: Result<Grant, EndpointError>) -> Rejection {
    let refused = result.unwrap_err();
    assert_eq!(refused.code().as_str(), "invalid_client");
    assert!([400, 401].contains(&refused.status().as_u16()));
    refused.reason().clone()
}

const CA: &str = "grant_type=client_credentials&client_id=ca";
const SELF: &str = "grant_type=client_credentials&client_id=self";

#[test]
fn tls_client_auth_needs_a_trusted_certificate_with_the_subject() {
    let endpoint = all();
    let trusted = PresentedCertificate::from_x5t_s256("t1").trusted_subject("CN=svc");
    let grant = decide(&endpoint, CA, Some(trusted)).unwrap();
    assert_eq!(decide(&endpoint, CA, None).unwrap_err().status(), 401);
    assert_eq!(grant.auth_method(), ClientAuthMethod::TlsClientAuth);
    assert_eq!(grant.x5t_s256(), Some("t1"));
    assert_eq!(grant.token_type(), "Bearer");

    let untrusted = PresentedCertificate::from_x5t_s256("t1");
    assert_eq!(
        reason(decide(&endpoint, CA, Some(untrusted))),
        Rejection::CertificateMismatch
    );
    let other = PresentedCertificate::from_x5t_s256("t1").trusted_subject("CN=other");
    assert_eq!(
        reason(decide(&endpoint, CA, Some(other))),
        Rejection::CertificateMismatch
    );
    assert_eq!(
        reason(decide(&endpoint, CA, None)),
        Rejection::NoClientCertificate
    );
}

#[test]
fn self_signed_tls_client_auth_compares_the_thumbprint() {
    let endpoint = all();
    let grant = decide(
        &endpoint,
        SELF,
        Some(PresentedCertificate::from_x5t_s256("thumb")),
    )
    .unwrap();
    assert_eq!(
        grant.auth_method(),
        ClientAuthMethod::SelfSignedTlsClientAuth
    );
    assert_eq!(grant.x5t_s256(), Some("thumb"));
    let wrong = PresentedCertificate::from_x5t_s256("other").trusted_subject("CN=svc");
    assert_eq!(
        reason(decide(&endpoint, SELF, Some(wrong))),
        Rejection::CertificateMismatch
    );
}

#[test]
fn a_secret_client_is_not_authenticated_by_a_certificate_but_gets_it_bound() {
    let endpoint = all();
    let cert = PresentedCertificate::from_x5t_s256("t1").trusted_subject("CN=svc");
    let id_only = "grant_type=client_credentials&client_id=secret";
    assert_eq!(
        reason(decide(&endpoint, id_only, Some(cert.clone()))),
        Rejection::CertificateMismatch
    );
    let with_secret = "grant_type=client_credentials&client_id=secret&client_secret=pw";
    let grant = decide(&endpoint, with_secret, Some(cert)).unwrap();
    assert_eq!(grant.auth_method(), ClientAuthMethod::ClientSecretPost);
    assert_eq!(grant.x5t_s256(), Some("t1"));
    assert_eq!(
        decide(&endpoint, with_secret, None).unwrap().x5t_s256(),
        None
    );
}

#[test]
fn without_the_tls_methods_an_id_alone_is_no_authentication() {
    let endpoint = TokenEndpoint::builder()
        .scope("read", "Read")
        .build()
        .unwrap();
    let cert = PresentedCertificate::from_x5t_s256("t1").trusted_subject("CN=svc");
    assert_eq!(
        reason(decide(&endpoint, CA, Some(cert))),
        Rejection::NoClientAuthentication
    );
    // Only self-signed accepted: the CA-issued client cannot authenticate.
    let only_self = endpoint_self();
    let cert = PresentedCertificate::from_x5t_s256("t1").trusted_subject("CN=svc");
    assert_eq!(
        reason(decide(&only_self, CA, Some(cert))),
        Rejection::CertificateMismatch
    );
}

fn endpoint_self() -> TokenEndpoint {
    endpoint(&[ClientAuthMethod::SelfSignedTlsClientAuth])
}

#[test]
fn names_and_debug() {
    assert_eq!(
        ClientAuthMethod::from_name("self_signed_tls_client_auth"),
        Some(ClientAuthMethod::SelfSignedTlsClientAuth)
    );
    assert!(ClientAuthMethod::TlsClientAuth.is_tls());
    assert!(!ClientAuthMethod::TlsClientAuth.is_assertion());
    assert!(!ClientAuthMethod::ALL.iter().any(|m| m.is_tls()));
    let client = RegisteredClient::tls_client_auth("ca", "CN=svc");
    assert!(format!("{client:?}").contains("CN=svc"));
}
