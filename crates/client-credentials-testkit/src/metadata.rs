//! [`Metadata`]: an authorization server metadata document (RFC 8414) for the server it
//! runs on, for discovery tests.

use serde_json::{Map, Value, json};

use crate::{Handler, Reply, Request};

/// Answers a metadata document whose `issuer` is `http://<Host><issuer_path>` (the server's
/// own address, read from the request's `Host` header) and whose `token_endpoint` is
/// `http://<Host>/token`, with any member added or replaced by [`Metadata::member`].
///
/// ```
/// use client_credentials_testkit::{Metadata, Router, TestServer, TokenEndpoint};
/// let server = TestServer::start(
///     Router::new()
///         .route("/.well-known/oauth-authorization-server", Metadata::new(""))
///         .route("/token", TokenEndpoint::new()),
/// );
/// # let _ = server;
/// ```
#[derive(Clone, Debug)]
pub struct Metadata {
    issuer_path: String,
    members: Map<String, Value>,
}

impl Metadata {
    /// A document for the issuer `http://<Host>` followed by `issuer_path` (`""`, `/tenant`).
    #[must_use]
    pub fn new(issuer_path: &str) -> Self {
        Self {
            issuer_path: issuer_path.to_owned(),
            members: Map::new(),
        }
    }

    /// Adds or replaces a member. In a string value, `{base}` stands for `http://<Host>`.
    #[must_use]
    pub fn member(mut self, name: &str, value: Value) -> Self {
        self.members.insert(name.to_owned(), value);
        self
    }
}

impl Handler for Metadata {
    fn handle(&self, request: &Request) -> Reply {
        let base = format!("http://{}", request.header("host").unwrap_or("127.0.0.1"));
        let mut body = json!({
            "issuer": format!("{base}{}", self.issuer_path),
            "token_endpoint": format!("{base}/token"),
        });
        if let Value::Object(map) = &mut body {
            for (name, value) in &self.members {
                let value = match value {
                    Value::String(s) => Value::from(s.replace("{base}", &base)),
                    other => other.clone(),
                };
                map.insert(name.clone(), value);
            }
        }
        Reply::json(200, &body)
    }
}
