//! No secret of the server half shows in `Debug`, `Display` or a rendered error, and no input
//! makes the parser panic.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is a failure report.

use client_credentials_core::server::{
    RegisteredClient, TokenEndpoint, bearer_token, opaque_token,
};
use client_credentials_core::{AccessToken, ErrorCode};
use http::{HeaderValue, Method, Request};
use proptest::prelude::*;

const SECRET: &str = "super-secret-value-0123";
const TOKEN: &str = "issued-token-value-4567";

fn everything_rendered() -> Vec<String> {
    let endpoint = TokenEndpoint::builder()
        .scope("read", "Read")
        .build()
        .unwrap();
    let client = RegisteredClient::new("app", SECRET).scopes(["read"]);
    let mut out = vec![format!("{endpoint:?}"), format!("{client:?}")];
    let bodies = [
        format!("grant_type=client_credentials&client_id=app&client_secret={SECRET}"),
        format!("grant_type=client_credentials&client_id=app&client_secret={SECRET}&scope=nope"),
        format!("grant_type=password&client_id=app&client_secret={SECRET}"),
        format!(
            "grant_type=client_credentials&client_id=app&client_secret={SECRET}&client_secret={SECRET}"
        ),
        format!("grant_type=client_credentials&client_id=other&client_secret={SECRET}"),
        format!("grant_type=client_credentials&client_id=app&client_secret={SECRET}x"),
        format!("grant_type=client_credentials&client_secret={SECRET}"),
    ];
    for body in bodies {
        for auth in [None, Some("Basic YXBwOmFwcA==")] {
            let mut b =
                Request::post("/token").header("content-type", "application/x-www-form-urlencoded");
            if let Some(a) = auth {
                b = b.header("authorization", a);
            }
            let req = b.body(body.clone().into_bytes()).unwrap();
            match endpoint.parse(&req) {
                Ok(incoming) => {
                    out.push(format!("{incoming:?}"));
                    out.push(format!("{:?}", incoming.credentials()));
                    out.push(format!("{:?}", incoming.client_request()));
                    match endpoint.authorize(&incoming, Some(&client)) {
                        Ok(grant) => {
                            out.push(format!("{grant:?}"));
                            let response = grant.respond(&AccessToken::new(TOKEN));
                            out.push(format!("{response:?}"));
                        }
                        Err(e) => out.push(render(&e)),
                    }
                }
                Err(e) => out.push(render(&e)),
            }
        }
    }
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
    );
    out.push(format!("{:?}", bearer_token(&headers)));
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {TOKEN} x")).unwrap(),
    );
    out.push(format!("{:?}", bearer_token(&headers)));
    out.push(format!("{:?}", opaque_token(&[1; 32])));
    out
}

fn render(e: &client_credentials_core::server::EndpointError) -> String {
    format!(
        "{e} {e:?} {} {:?}",
        String::from_utf8_lossy(&e.to_response().into_body()),
        e.to_response().headers()
    )
}

#[test]
fn no_secret_in_any_rendering() {
    for text in everything_rendered() {
        assert!(!text.contains(SECRET), "secret leaked: {text}");
        assert!(!text.contains(TOKEN), "token leaked: {text}");
        assert!(
            !text.contains(opaque_token(&[1; 32]).expose_secret()),
            "{text}"
        );
    }
    // The rendered success body does carry the token, by design: it is the answer.
    let endpoint = TokenEndpoint::builder().build().unwrap();
    let req = Request::post("/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            format!("grant_type=client_credentials&client_id=app&client_secret={SECRET}")
                .into_bytes(),
        )
        .unwrap();
    let client = RegisteredClient::new("app", SECRET);
    let grant = endpoint
        .authorize(&endpoint.parse(&req).unwrap(), Some(&client))
        .unwrap();
    assert!(
        String::from_utf8_lossy(grant.respond(&AccessToken::new(TOKEN)).body()).contains(TOKEN)
    );
    assert_eq!(ErrorCode::InvalidClient.as_str(), "invalid_client");
}

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        Just(None),
        Just(Some("application/x-www-form-urlencoded")),
        Just(Some("application/json")),
        Just(Some("application/JSON; charset=utf-8")),
        Just(Some("text/plain")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// Arbitrary bodies and Authorization headers never panic, and every refusal renders.
    #[test]
    fn parser_never_panics(
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            "[a-z_=&%+0-9A-F{}\\[\\]\":,]{0,200}".prop_map(String::into_bytes),
        ],
        ct in content_type(),
        auth in proptest::option::of(proptest::collection::vec(32u8..127, 0..80)),
        post in any::<bool>(),
    ) {
        let endpoint = TokenEndpoint::builder().scope("read", "r").max_body(256).build().unwrap();
        let mut b = Request::builder().method(if post { Method::POST } else { Method::PUT }).uri("/token");
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        if let Some(a) = &auth {
            b = b.header("authorization", HeaderValue::from_bytes(a).unwrap());
        }
        let req = b.body(body).unwrap();
        let client = RegisteredClient::new("app", "pw").scopes(["read"]);
        match endpoint.parse(&req) {
            Ok(incoming) => {
                let _ = endpoint.authorize(&incoming, Some(&client)).map(|g| g.respond(&opaque_token(&[0; 32])));
            }
            Err(e) => {
                let response = e.to_response();
                prop_assert!(response.status().is_client_error());
                prop_assert!(serde_json::from_slice::<serde_json::Value>(response.body()).is_ok());
            }
        }
        let _ = bearer_token(req.headers());
    }
}
