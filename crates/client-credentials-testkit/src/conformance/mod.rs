//! One conformance suite for every transport: the behaviour tests of the token cache,
//! written once against a small blocking [`Harness`], and run by each adapter's tests with
//! one line:
//!
//! ```text
//! mod harness;
//! client_credentials_testkit::conformance_suite!(harness::UreqHarness);
//! ```
//!
//! (and `conformance_suite!(@logs …)` in a binary of its own, see [`conformance_suite!`](crate::conformance_suite)).
//! The macro expands to one `#[test]` per suite function. A harness wraps one client of
//! one adapter: it builds it from a [`Config`] and [`HarnessOptions`], and maps each call
//! onto the adapter's API (an async adapter blocks on a runtime it owns). Every call into an
//! adapter's API lives in its harness, so that the suite does not change when an adapter's
//! API does.
//!
//! The suite's modules, by theme: [`fetch`] (one fetch: what is sent, how each answer comes
//! back), [`faults`] (injected faults on a cold cache), [`concurrency`] (many callers, one
//! cache), [`revocation`] (RFC 7009 and RFC 7662), [`discovery`] (RFC 8414 metadata and
//! its OpenID Connect fallback), [`logs`] (what is traced),
//! [`authorized`] (requests sent with a token, and the 401 retry) and [`everyday`] (stored
//! tokens, `clear()`, per-request headers and timeouts, static credentials, error classes).
// The suite is test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use client_credentials_core::session::{Counters, Policy};
use client_credentials_core::{
    AccessToken, Config, ConfigError, Introspection, StaticCredential, Token, TokenError,
    TokenParams,
};
use client_credentials_core::{DiscoveryError, ServerMetadata};

pub mod authorized;
pub mod concurrency;
pub mod discovery;
pub mod dpop;
pub mod everyday;
pub mod faults;
pub mod federated;
pub mod fetch;
pub mod logs;
pub mod proxy;
pub mod revocation;

/// One client of one adapter, behind a blocking interface.
///
/// Implementations are test code in each adapter's `tests/` directory. They call the
/// adapter's API and nothing else: no OAuth decision, no retry, no waiting of their own
/// (the one exception is a stand-in for an adapter method that does not exist yet).
pub trait Harness: Clone + fmt::Debug + Send + Sync + 'static {
    /// How many callers [`Harness::concurrent_tokens`] is asked to start at once in the
    /// stampede tests: what the adapter's natural concurrency affords on a small machine
    /// (threads for a blocking client, tasks for an async one).
    const CALLERS: usize;

    /// A client for `config`, built with `options`. `Debug` of the harness is `Debug` of
    /// the client.
    fn build(config: Config, options: &HarnessOptions) -> Self;

    /// A token for the configured request.
    ///
    /// # Errors
    /// The adapter's error.
    fn token(&self) -> Result<Arc<Token>, HarnessError>;

    /// A token for `params`.
    ///
    /// # Errors
    /// The adapter's error.
    fn token_for(&self, params: &TokenParams) -> Result<Arc<Token>, HarnessError>;

    /// Starts `callers` callers of [`Harness::token`] at once, with the adapter's own
    /// concurrency (threads or tasks, released together), and returns their answers.
    fn concurrent_tokens(&self, callers: usize) -> Vec<Result<Arc<Token>, HarnessError>>;

    /// Drops the cached token if it is `rejected`; whether one was dropped.
    fn invalidate(&self, rejected: &AccessToken) -> bool;

    /// Makes the next call start fetching a new token, without waiting for it.
    fn force_refresh(&self);

    /// [`Harness::force_refresh`] for `params`.
    ///
    /// # Errors
    /// The adapter's error (invalid parameters).
    fn force_refresh_for(&self, params: &TokenParams) -> Result<(), HarnessError>;

    /// The counters of the configured request's cache entry.
    fn counters(&self) -> Counters;

    /// The counters of the cache entry for `params`.
    ///
    /// # Errors
    /// The adapter's error (invalid parameters).
    fn counters_for(&self, params: &TokenParams) -> Result<Counters, HarnessError>;

    /// The last error of the configured request's fetches, if any.
    fn last_error(&self) -> Option<TokenError>;

    /// When the configured request's token is due for refresh, if one is scheduled.
    fn next_refresh(&self) -> Option<Instant>;
    /// `Client::cached_shapes`: how many request shapes the cache holds.
    fn cached_shapes(&self) -> usize;

    /// Sets `Authorization: Bearer …` on `request`; returns the access token sent.
    ///
    /// # Errors
    /// The adapter's error (no token could be had).
    fn authorize(&self, request: &mut http::Request<()>) -> Result<AccessToken, HarnessError>;

    /// Sends `request` with a token; on a 401, retries once with a fresh token if the
    /// request can be replayed (the adapter's `send_authorized`).
    ///
    /// # Errors
    /// [`HarnessErrorKind::Token`] when no token could be had (nothing was sent),
    /// [`HarnessErrorKind::Request`] when the request failed.
    fn send_authorized(&self, request: Outgoing) -> Result<Answer, HarnessError>;

    /// Revokes `token` (RFC 7009) and drops it from the cache.
    ///
    /// # Errors
    /// The adapter's error.
    fn revoke(&self, token: &AccessToken) -> Result<(), HarnessError>;

    /// Introspects `token` (RFC 7662).
    ///
    /// # Errors
    /// The adapter's error.
    fn introspect(&self, token: &AccessToken) -> Result<Introspection, HarnessError>;

    /// The adapter's `discover(issuer)`: the metadata of `issuer`, with the adapter's
    /// default transport.
    ///
    /// # Errors
    /// The adapter's error, with the [`DiscoveryError`] it carries
    /// ([`HarnessError::with_discovery`]).
    fn discover(issuer: &str) -> Result<ServerMetadata, HarnessError>;

    /// Restores a stored token for the configured request (`Client::restore`): whether the
    /// cache serves it from now on.
    ///
    /// # Errors
    /// The adapter's error (the token is not taken).
    fn restore(&self, token: Token) -> Result<bool, HarnessError>;

    /// Forgets every cached token (`Client::clear`); how many request shapes were dropped.
    fn clear(&self) -> usize;

    /// Sends `request` with a static credential instead of the client's tokens (the
    /// adapter's `Credentials::Static`), on the harness's transport.
    ///
    /// # Errors
    /// [`HarnessErrorKind::Request`] when the request failed.
    fn send_static(
        &self,
        credential: &StaticCredential,
        request: Outgoing,
    ) -> Result<Answer, HarnessError>;
}

/// What an adapter's error says about itself through its predicates (`is_invalid_client()`
/// …), for the suite to compare with the core's classification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Classes {
    /// `is_invalid_client()`.
    pub invalid_client: bool,
    /// `is_invalid_scope()`.
    pub invalid_scope: bool,
    /// `is_rate_limited()`.
    pub rate_limited: bool,
    /// `is_timeout()`.
    pub timeout: bool,
    /// `is_retryable()`.
    pub retryable: bool,
}

/// The [`Classes`] of an adapter's error, read through its predicates: one expression for
/// every harness.
#[macro_export]
macro_rules! classes_of {
    ($error:expr) => {
        $crate::conformance::Classes {
            invalid_client: $error.is_invalid_client(),
            invalid_scope: $error.is_invalid_scope(),
            rate_limited: $error.is_rate_limited(),
            timeout: $error.is_timeout(),
            retryable: $error.is_retryable(),
        }
    };
}

impl Classes {
    /// The core's classification of `error` (all `false` without one).
    #[must_use]
    pub fn of(error: Option<&TokenError>) -> Self {
        error.map_or_else(Self::default, |e| Self {
            invalid_client: e.is_invalid_client(),
            invalid_scope: e.is_invalid_scope(),
            rate_limited: e.is_rate_limited(),
            timeout: e.is_timeout(),
            retryable: e.is_retryable(),
        })
    }
}

/// What the tests set through the adapters' builders. `None` leaves the adapter's default.
#[derive(Clone, Debug, Default)]
pub struct HarnessOptions {
    /// The timing policy.
    pub policy: Option<Policy>,
    /// The jitter seed.
    pub seed: Option<u64>,
    /// The transport timeout of each request.
    pub timeout: Option<Duration>,
    /// Whether an async client refreshes in a background task (blocking clients ignore it).
    pub background_refresh: Option<bool>,
    /// Run everything the client does on the calling thread (an async harness uses a
    /// current-thread runtime), so that a thread-local `tracing` subscriber sees it all.
    pub single_threaded: bool,
}

impl HarnessOptions {
    /// The adapter's defaults.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`HarnessOptions::policy`].
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Sets [`HarnessOptions::seed`].
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets [`HarnessOptions::timeout`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets [`HarnessOptions::background_refresh`].
    #[must_use]
    pub fn background_refresh(mut self, enabled: bool) -> Self {
        self.background_refresh = Some(enabled);
        self
    }

    /// Sets [`HarnessOptions::single_threaded`].
    #[must_use]
    pub fn single_threaded(mut self) -> Self {
        self.single_threaded = true;
        self
    }
}

/// What kind of failure a [`HarnessError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HarnessErrorKind {
    /// No token could be had (or revocation, introspection failed): a core [`TokenError`].
    Token,
    /// The configuration or the request parameters are invalid: a core [`ConfigError`].
    Config,
    /// An authorized request could not be sent (the resource server's transport).
    Request,
    /// Anything else the adapter reports.
    Other,
}

/// An adapter's error, with the typed core error when there is one and the original error
/// for formatting (its `Display`, `Debug` and sources, which the leak tests inspect).
/// Boxed, so that results stay small.
#[derive(Debug)]
pub struct HarnessError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: HarnessErrorKind,
    token: Option<TokenError>,
    config: Option<ConfigError>,
    classes: Option<Classes>,
    discovery: Option<DiscoveryError>,
    error: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl HarnessError {
    /// Wraps an adapter's `error`, with the core errors it carries.
    pub fn new(
        kind: HarnessErrorKind,
        token: Option<TokenError>,
        config: Option<ConfigError>,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self(Box::new(Inner {
            kind,
            token,
            config,
            classes: None,
            discovery: None,
            error: Box::new(error),
        }))
    }

    /// With what the adapter's predicates say about its error.
    #[must_use]
    pub fn with_classes(mut self, classes: Classes) -> Self {
        self.0.classes = Some(classes);
        self
    }

    /// With the discovery error the adapter's error carries.
    #[must_use]
    pub fn with_discovery(mut self, error: DiscoveryError) -> Self {
        self.0.discovery = Some(error);
        self
    }

    /// The core's discovery error, if this is one.
    #[must_use]
    pub fn discovery_error(&self) -> Option<&DiscoveryError> {
        self.0.discovery.as_ref()
    }

    /// Whether the adapter's predicates ([`HarnessError::with_classes`]) say what the
    /// core's say about the token error it carries.
    ///
    /// # Panics
    /// When the harness did not report the adapter's predicates.
    #[must_use]
    pub fn classes_agree(&self) -> bool {
        let reported = self.0.classes.expect("the harness reports the predicates");
        reported == Classes::of(self.0.token.as_ref())
    }

    /// What kind of failure this is.
    #[must_use]
    pub fn kind(&self) -> HarnessErrorKind {
        self.0.kind
    }

    /// The core's token error, if this is one.
    #[must_use]
    pub fn token_error(&self) -> Option<&TokenError> {
        self.0.token.as_ref()
    }

    /// The core's token error.
    ///
    /// # Panics
    /// When this is another kind of error: the test expected a token error.
    #[must_use]
    pub fn into_token_error(self) -> TokenError {
        match self.0.token {
            Some(e) => e,
            None => panic!("expected a token error, got {:?}", self.0.error),
        }
    }

    /// The core's configuration error, if this is one.
    #[must_use]
    pub fn config_error(&self) -> Option<&ConfigError> {
        self.0.config.as_ref()
    }

    /// Whether the adapter says that asking again may work.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.0.token.as_ref().is_some_and(TokenError::is_retryable)
    }

    /// The adapter's own error, to format.
    #[must_use]
    pub fn error(&self) -> &(dyn std::error::Error + 'static) {
        &*self.0.error
    }
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.error, f)
    }
}

impl std::error::Error for HarnessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.error.source()
    }
}

/// A request to a resource server, for [`Harness::send_authorized`].
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// `GET`, `PUT`, `POST`…
    pub method: http::Method,
    /// Where it goes.
    pub url: String,
    /// Its body, if any.
    pub body: Option<Vec<u8>>,
    /// Whether the transport may send the body twice. A request that is not replayable is
    /// sent with a streaming body (where the transport has one) and never retried.
    pub replayable: bool,
}

impl Outgoing {
    /// A replayable request without a body.
    #[must_use]
    pub fn new(method: http::Method, url: &str) -> Self {
        Self {
            method,
            url: url.to_owned(),
            body: None,
            replayable: true,
        }
    }

    /// A `GET` without a body.
    #[must_use]
    pub fn get(url: &str) -> Self {
        Self::new(http::Method::GET, url)
    }

    /// With this body.
    #[must_use]
    pub fn body(mut self, body: &str) -> Self {
        self.body = Some(body.as_bytes().to_vec());
        self
    }

    /// Sent once, as a stream the transport cannot replay.
    #[must_use]
    pub fn streaming(mut self) -> Self {
        self.replayable = false;
        self
    }
}

/// A resource server's answer, read by the harness.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// `Debug` of the transport's values for the request that was answered (the retry, if
    /// there was one) and for its response, for the leak tests.
    pub debug: String,
}

impl Answer {
    /// The first value of header `name` (lower case).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The value of a token.
pub(crate) fn value(token: &Token) -> &str {
    token.access_token().expose_secret()
}

/// One `#[test]` per suite function, for the harness type given.
///
/// ```text
/// client_credentials_testkit::conformance_suite!(harness::ReqwestHarness);
/// ```
///
/// The log tests install a thread-local `tracing` subscriber, which misses records when
/// another thread of the same process registers the same callsites meanwhile (the callsite
/// interest cache of `tracing-core` races with it). They run in a test binary of their own,
/// where every test installs its subscriber first:
///
/// ```text
/// client_credentials_testkit::conformance_suite!(@logs harness::ReqwestHarness);
/// ```
#[macro_export]
macro_rules! conformance_suite {
    (@logs $harness:ty) => {
        /// The harness every test of the suite runs against.
        type ConformanceHarness = $harness;
        $crate::conformance_suite!(@modules
            logs {
                fetches_are_traced_without_secrets,
            }
        );
    };
    ($harness:ty) => {
        /// The harness every test of the suite runs against.
        type ConformanceHarness = $harness;
        $crate::conformance_suite!(@modules
            fetch {
                every_auth_method_and_body_format,
                basic_credentials_are_form_encoded_first,
                audience_resources_and_extra_parameters_are_sent,
                invalid_client_is_a_typed_rejection_not_a_transport_error,
                invalid_scope_is_a_typed_rejection,
                server_errors_are_retryable_server_errors,
                html_error_pages,
                empty_and_truncated_bodies,
                per_request_parameters_are_validated_before_sending,
                nothing_secret_in_debug_or_display,
            }
            faults {
                retry_after_seconds_is_honoured,
                retry_after_http_date_is_honoured,
                server_errors_back_off,
                a_stalled_server_times_out,
                connection_refused,
                broken_connections_are_transport_errors,
                redirects_are_not_followed_and_the_target_gets_nothing,
                oversized_bodies_are_refused,
                a_rejection_cools_down_without_requests,
            }
            concurrency {
                many_callers_on_a_cold_cache_make_one_request,
                one_failure_is_shared_by_every_waiter,
                across_expiry_under_load_no_caller_waits_while_a_valid_token_exists,
                callers_never_wait_for_a_refresh_in_flight,
                different_request_shapes_never_share_a_token,
                invalidate_drops_only_the_rejected_token,
                force_refresh_fetches_a_new_token_without_making_callers_wait,
                authorize_attaches_the_token,
                a_failed_refresh_keeps_serving_the_valid_token_until_its_usable_life_ends,
                the_cache_stays_bounded_and_a_used_shape_is_never_evicted,
                reads_never_create_a_cache_entry,
            }
            federated {
                an_assertion_file_is_read_again_for_every_fetch,
                an_unusable_assertion_file_sends_nothing,
                function_and_environment_sources,
                revocation_and_introspection_read_the_source_too,
                a_source_that_hangs_fails_within_the_timeout,
            }
            discovery {
                discovery_reads_the_metadata_and_the_config_fetches_a_token,
                a_missing_rfc8414_document_falls_back_to_openid_configuration,
                discovery_failures_are_typed,
            }
            revocation {
                revoke_sends_the_token_and_drops_it_from_the_cache,
                a_failed_revocation_still_drops_the_token,
                revocation_error_shapes,
                a_stalled_revocation_endpoint_times_out,
                introspection_answers,
                introspection_error_shapes,
                without_endpoints_nothing_is_sent,
                errors_name_their_endpoint,
            }
            authorized {
                send_authorized_retries_once,
                send_authorized_sends_nothing_without_a_token,
            }
            dpop {
                a_resource_nonce_challenge_is_retried_once_with_the_same_token,
                a_nonce_challenge_is_retried_at_most_once,
            }
            everyday {
                a_restored_token_is_served_without_a_request,
                clear_forgets_every_token,
                per_request_headers_and_timeouts,
                a_static_credential_is_sent_as_it_is,
                error_predicates_classify_the_answers,
            }
        );
    };
    (@modules $($module:ident { $($(#[$attr:meta])* $test:ident),* $(,)? })*) => {
        $(
            mod $module {
                $(
                    #[test]
                    $(#[$attr])*
                    fn $test() {
                        $crate::conformance::$module::$test::<super::ConformanceHarness>();
                    }
                )*
            }
        )*
    };
}
