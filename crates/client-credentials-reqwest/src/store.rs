//! The hook through which a fleet of processes shares tokens: a store consulted before each
//! fetch (`client-credentials-redis` implements it on Redis).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use client_credentials_core::session::Policy;
use client_credentials_core::{Token, TokenRequest};

/// A store shared by the processes of a fleet, consulted by the one task that is about to
/// fetch a token, so that the fleet fetches once where each process would have fetched on
/// its own. Set it with [`ClientBuilder::shared_store`](crate::ClientBuilder::shared_store).
///
/// The client awaits [`SharedStore::before_fetch`] when its session says to send (no valid
/// token, or the refresh is due), in the task that sends: the calling task for a cold cache
/// (its callers wait anyway), a spawned task for a refresh ahead of expiry (callers keep the
/// still-valid token meanwhile). The future may be dropped at any `.await` (the caller was
/// cancelled); the request then counts as abandoned. The answer decides what happens:
///
/// - [`Lookup::Shared`]: a token another process fetched. If the session takes it
///   ([`StoreQuery::accepts`]), nothing is sent; otherwise the request is sent as usual.
/// - [`Lookup::Fetch`]: send, then hand the token to the permit with
///   [`FetchPermit::publish`]. A permit dropped without a token (the fetch failed, or was
///   cancelled) releases whatever it holds, or lets it expire.
/// - [`Lookup::FetchLocally`]: send, as a client without a store would.
///
/// A store must never make things worse than no store: it answers within a bounded time,
/// never panics, and turns its own failures (unreachable, slow, unreadable data) into
/// [`Lookup::FetchLocally`].
#[async_trait]
pub trait SharedStore: Send + Sync + 'static {
    /// Looks for a token another process fetched for `query`'s request shape, or decides
    /// that this process fetches it. Completes within a bounded time (another process may
    /// be fetching the same token).
    async fn before_fetch(&self, query: &StoreQuery<'_>) -> Lookup;
}

/// What the store is told about the fetch it is consulted on.
pub struct StoreQuery<'a> {
    request: &'a TokenRequest,
    policy: &'a Policy,
    accepts: &'a (dyn Fn(&Token) -> bool + Send + Sync),
}

impl<'a> StoreQuery<'a> {
    /// A query for `request`, under `policy`, whose session takes a token when `accepts`
    /// says so. The client builds it; stores only read it (build one to test a store).
    #[must_use]
    pub fn new(
        request: &'a TokenRequest,
        policy: &'a Policy,
        accepts: &'a (dyn Fn(&Token) -> bool + Send + Sync),
    ) -> Self {
        Self {
            request,
            policy,
            accepts,
        }
    }

    /// The request shape; its [`cache_key`](TokenRequest::cache_key) names the shared entry
    /// (it never holds the secret).
    #[must_use]
    pub fn request(&self) -> &TokenRequest {
        self.request
    }

    /// The session's policy: [`Policy::usable_lifetime`] says how long the fleet's sessions
    /// take a token, so how long a store may keep it.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        self.policy
    }

    /// Whether the session would take `token` now instead of fetching: it is usable, it
    /// expires later than the token held, and it is not a token this client saw rejected
    /// (see [`client_credentials_core::Session::would_adopt`]). A stored token that this
    /// rejects is stale: fetch a new one.
    #[must_use]
    pub fn accepts(&self, token: &Token) -> bool {
        (self.accepts)(token)
    }
}

impl fmt::Debug for StoreQuery<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreQuery")
            .field("request", &self.request)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The answer of [`SharedStore::before_fetch`].
#[non_exhaustive]
pub enum Lookup {
    /// A token another process fetched for this request shape.
    Shared(Arc<Token>),
    /// This process fetches; the permit shares the result (and holds, for example, a lock
    /// that keeps the other processes waiting for it).
    Fetch(Box<dyn FetchPermit>),
    /// Fetch as a client without a store would: the store is unavailable, or waiting for
    /// another process took too long.
    FetchLocally,
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Shared(token) => f.debug_tuple("Shared").field(token).finish(),
            Self::Fetch(_) => f.write_str("Fetch(..)"),
            Self::FetchLocally => f.write_str("FetchLocally"),
        }
    }
}

/// The right, and the duty, to share the token this process is fetching. Dropping it
/// without [`FetchPermit::publish`] (the fetch failed, or was cancelled) releases what it
/// holds, or lets it expire.
#[async_trait]
pub trait FetchPermit: Send {
    /// The fetch produced `token`: store it for the fleet, then release. Awaited after the
    /// local callers were handed the token; bounded in time, never fails (a store error is
    /// the store's to log).
    async fn publish(self: Box<Self>, token: &Token);
}
