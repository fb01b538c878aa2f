//! The endpoint described in OpenAPI 3.1 terms, as `serde_json::Value`s to merge into a
//! document.

use serde_json::{Map, Value, json};

use crate::server::ClientAuthMethod;
use crate::server::endpoint::TokenEndpoint;

impl TokenEndpoint {
    /// An OpenAPI security scheme (`components.securitySchemes.<name>`) of type `oauth2` with
    /// a `clientCredentials` flow whose `tokenUrl` is the endpoint's path (resolved against
    /// the document's server) and whose scopes are the registered scopes.
    ///
    /// ```
    /// use client_credentials::server::TokenEndpoint;
    /// let endpoint = TokenEndpoint::builder().scope("read", "Read things").build()?;
    /// let scheme = endpoint.openapi_security_scheme();
    /// assert_eq!(scheme["flows"]["clientCredentials"]["tokenUrl"], "/token");
    /// assert_eq!(scheme["flows"]["clientCredentials"]["scopes"]["read"], "Read things");
    /// # Ok::<_, client_credentials_core::server::EndpointConfigError>(())
    /// ```
    #[must_use]
    pub fn openapi_security_scheme(&self) -> Value {
        self.openapi_security_scheme_at(self.token_path())
    }

    /// [`TokenEndpoint::openapi_security_scheme`] with an absolute `tokenUrl`.
    #[must_use]
    pub fn openapi_security_scheme_at(&self, token_url: &str) -> Value {
        let scopes: Map<String, Value> = self
            .scopes()
            .iter()
            .map(|s| (s.name().to_owned(), Value::from(s.description())))
            .collect();
        json!({
            "type": "oauth2",
            "description": "OAuth 2.0 client credentials grant (RFC 6749 §4.4).",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": token_url,
                    "scopes": scopes,
                }
            }
        })
    }

    /// An OpenAPI path item for the endpoint (`paths.<token path>`): `POST` with form (and,
    /// when accepted, JSON) request bodies, the 200 token response and the 400/401 error
    /// responses, with their `Cache-Control`, `Pragma` and `WWW-Authenticate` headers.
    ///
    /// ```
    /// use client_credentials::server::TokenEndpoint;
    /// let endpoint = TokenEndpoint::builder().build()?;
    /// let item = endpoint.openapi_path_item();
    /// assert!(item["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object());
    /// assert!(item["post"]["responses"]["401"]["headers"]["WWW-Authenticate"].is_object());
    /// # Ok::<_, client_credentials_core::server::EndpointConfigError>(())
    /// ```
    #[must_use]
    pub fn openapi_path_item(&self) -> Value {
        let scope_names: Vec<&str> = self.scopes().iter().map(|s| s.name()).collect();
        let post_auth = self.accepts(ClientAuthMethod::ClientSecretPost);
        let mut properties = json!({
            "grant_type": { "type": "string", "enum": ["client_credentials"] },
            "scope": {
                "type": "string",
                "description": format!(
                    "Space-delimited scopes. Registered: {}.",
                    if scope_names.is_empty() { "none".to_owned() } else { scope_names.join(", ") }
                ),
            },
            "audience": { "type": "string" },
            "resource": {
                "description": "Resource indicators (RFC 8707); may repeat.",
                "oneOf": [
                    { "type": "string", "format": "uri" },
                    { "type": "array", "items": { "type": "string", "format": "uri" } }
                ]
            },
        });
        if let Some(p) = properties.as_object_mut().filter(|_| post_auth) {
            p.insert(
                "client_id".to_owned(),
                json!({ "type": "string", "description": "client_secret_post only" }),
            );
            p.insert(
                    "client_secret".to_owned(),
                    json!({ "type": "string", "format": "password", "description": "client_secret_post only" }),
                );
        }
        let schema = json!({
            "type": "object",
            "required": ["grant_type"],
            "properties": properties,
        });
        let mut content = Map::new();
        content.insert(
            "application/x-www-form-urlencoded".to_owned(),
            json!({ "schema": schema }),
        );
        if self.accepts_json() {
            content.insert("application/json".to_owned(), json!({ "schema": schema }));
        }
        let no_store = json!({
            "Cache-Control": { "schema": { "type": "string", "const": "no-store" } },
            "Pragma": { "schema": { "type": "string", "const": "no-cache" } },
        });
        let error = json!({
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "string",
                    "enum": [
                        "invalid_request", "invalid_client", "invalid_grant",
                        "unauthorized_client", "unsupported_grant_type", "invalid_scope",
                        "invalid_target"
                    ]
                },
                "error_description": { "type": "string" },
                "error_uri": { "type": "string", "format": "uri" },
            }
        });
        let mut unauthorized_headers = no_store.clone();
        if let Some(h) = unauthorized_headers.as_object_mut() {
            h.insert(
                "WWW-Authenticate".to_owned(),
                json!({ "schema": { "type": "string" }, "description": "Basic challenge" }),
            );
        }
        let methods: Vec<&str> = self.auth_methods().iter().map(|m| m.name()).collect();
        json!({
            "post": {
                "summary": "Issue an access token (client credentials grant)",
                "description": format!(
                    "RFC 6749 §4.4. Client authentication: {}.",
                    methods.join(", ")
                ),
                "operationId": "issueToken",
                "tags": ["oauth2"],
                "security": if self.accepts(ClientAuthMethod::ClientSecretBasic) {
                    json!([{ "clientSecretBasic": [] }, {}])
                } else {
                    json!([{}])
                },
                "requestBody": { "required": true, "content": content },
                "responses": {
                    "200": {
                        "description": "Token issued (RFC 6749 §5.1)",
                        "headers": no_store,
                        "content": { "application/json": { "schema": {
                            "type": "object",
                            "required": ["access_token", "token_type"],
                            "properties": {
                                "access_token": { "type": "string" },
                                "token_type": { "type": "string", "example": self.token_type() },
                                "expires_in": { "type": "integer", "minimum": 0 },
                                "scope": { "type": "string" },
                            }
                        } } }
                    },
                    "400": {
                        "description": "Refused (RFC 6749 §5.2)",
                        "headers": no_store,
                        "content": { "application/json": { "schema": error } }
                    },
                    "401": {
                        "description": "Client authentication failed (invalid_client)",
                        "headers": unauthorized_headers,
                        "content": { "application/json": { "schema": error } }
                    },
                }
            }
        })
    }

    /// An OpenAPI `http`/`basic` security scheme for the endpoint's own client
    /// authentication, to register as `components.securitySchemes.clientSecretBasic` (the
    /// name [`TokenEndpoint::openapi_path_item`] refers to).
    #[must_use]
    pub fn openapi_client_auth_scheme(&self) -> Value {
        json!({
            "type": "http",
            "scheme": "basic",
            "description": "client_secret_basic: client id and secret, each form-urlencoded, then base64 (RFC 6749 §2.3.1).",
        })
    }
}
