//! The hook through which a fleet of processes shares tokens: a store consulted before each
//! fetch (`client-credentials-redis` implements it on Redis).

use std::time::Duration;

use async_trait::async_trait;
pub use client_credentials_core::StoreQuery;
use client_credentials_core::Token;

/// A store shared by the processes of a fleet, consulted by the one task that is about to
/// fetch a token, so that the fleet fetches once where each process would have fetched on
/// its own. Set it with [`ClientBuilder::shared_store`](crate::ClientBuilder::shared_store).
///
/// The client awaits [`SharedStore::before_fetch`] when its cache says to send (no valid
/// token, or the refresh is due), in the task that sends. The future may be dropped at any
/// `.await` (the caller was cancelled); the request then counts as abandoned. The answer
/// decides what happens (the core's cache decides, the client only carries it out):
///
/// - [`Lookup::Shared`]: a token another process fetched. If the cache takes it
///   ([`StoreQuery::accepts`] says whether it would), nothing is sent; otherwise the request
///   is sent as usual.
/// - [`Lookup::Fetch`]: send, then hand the token to the permit with
///   [`FetchPermit::publish`], with the time to keep it that the core computed. A permit
///   dropped without a token (the fetch failed, or was cancelled) releases whatever it
///   holds, or lets it expire.
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
    async fn before_fetch(&self, query: &StoreQuery) -> Lookup;
}

/// The answer of [`SharedStore::before_fetch`].
pub type Lookup = client_credentials_core::Lookup<Box<dyn FetchPermit>>;

/// The right, and the duty, to share the token this process is fetching. Dropping it
/// without [`FetchPermit::publish`] (the fetch failed, or was cancelled) releases what it
/// holds, or lets it expire.
#[async_trait]
pub trait FetchPermit: Send {
    /// The fetch produced `token`: store it for the fleet for `ttl`
    /// ([`Policy::store_ttl`](client_credentials_core::Policy::store_ttl)), then release.
    /// Awaited after the local callers were handed the token; bounded in time, never fails
    /// (a store error is the store's to log).
    async fn publish(self: Box<Self>, token: &Token, ttl: Duration);
}
