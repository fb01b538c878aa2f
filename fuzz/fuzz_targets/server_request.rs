//! Feeds arbitrary token requests (method, headers, body) to the server half: parse,
//! authenticate against a registered client, render the answer, and extract bearer tokens.
//! It must never panic, and no answer may show the registered client's secret.
#![no_main]

use std::sync::OnceLock;

use client_credentials_core::server::{
    RegisteredClient, TokenEndpoint, bearer_token, opaque_token,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-registered-secret";

fn endpoint() -> &'static (TokenEndpoint, RegisteredClient) {
    static ENDPOINT: OnceLock<(TokenEndpoint, RegisteredClient)> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        let endpoint = TokenEndpoint::builder()
            .scope("read", "Read")
            .scope("write", "Write")
            .accept_json(true)
            .max_body(4096)
            .build()
            .expect("valid endpoint");
        let client = RegisteredClient::new("client", SECRET).scopes(["read"]);
        (endpoint, client)
    })
}

const METHODS: &[Method] = &[Method::POST, Method::GET, Method::PUT];
const CONTENT_TYPES: &[&str] = &[
    "application/x-www-form-urlencoded",
    "application/json",
    "application/x-www-form-urlencoded; charset=utf-8",
    "text/plain",
    "",
];

fuzz_target!(|data: &[u8]| {
    // Layout: [method, content type, header length, header bytes..., body...].
    let [m, ct, hlen, rest @ ..] = data else { return };
    let method = &METHODS[usize::from(*m) % METHODS.len()];
    let mut headers = HeaderMap::new();
    let ct = CONTENT_TYPES[usize::from(*ct) % CONTENT_TYPES.len()];
    if !ct.is_empty() {
        headers.insert("content-type", HeaderValue::from_static(ct));
    }
    let split = usize::from(*hlen).min(rest.len());
    let (header_bytes, body) = rest.split_at(split);
    // Header lines "name: value\n" (Authorization with Basic or Bearer credentials…).
    for line in header_bytes.split(|b| *b == b'\n') {
        if let Some(pos) = line.iter().position(|b| *b == b':') {
            let (name, value) = line.split_at(pos);
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(&value[1..])) {
                headers.append(n, v);
            }
        }
    }
    let (endpoint, client) = endpoint();
    let response = match endpoint.parse_parts(method, &headers, body) {
        Err(refused) => refused.to_response(),
        Ok(incoming) => {
            let found = (incoming.client_id() == "client").then_some(client);
            match endpoint.authorize(&incoming, found) {
                Ok(grant) => grant.respond(&opaque_token(&[1; 32])),
                Err(refused) => refused.to_response(),
            }
        }
    };
    let rendered = format!("{response:?}");
    assert!(!rendered.contains(SECRET), "the registered secret leaked into a response");
    assert!(!String::from_utf8_lossy(response.body()).contains(SECRET));
    if let Err(e) = bearer_token(&headers) {
        let _ = e.challenge().to_response();
    }
});
