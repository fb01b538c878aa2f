//! What the cache says about a request shape: counters, the last error, the next refresh.
//! None of these reads creates a cache entry.

use std::time::Instant;

use client_credentials_core::{Counters, TokenError, TokenParams};

use crate::client::Client;
use crate::error::Error;

impl Client {
    /// How many request shapes the cache holds now: at most the policy's `max_keys`, since
    /// idle and least recently used shapes are evicted.
    #[must_use]
    pub fn cached_shapes(&self) -> usize {
        self.shared.lock().len()
    }

    /// The counters of the default request shape: fetches started, succeeded and failed,
    /// cache hits, invalidations… All zero before the first call. Plain numbers, for logs
    /// and metrics; the last error and the next refresh have their own getters.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.shared
            .lock()
            .counters(self.shared.default_request.cache_key())
            .unwrap_or_default()
    }

    /// [`Client::counters`] for these parameters: all zero for a shape the cache does not
    /// hold. Creates no cache entry.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid.
    pub fn counters_for(&self, params: &TokenParams) -> Result<Counters, Error> {
        let request = self.shared.config.request(params)?;
        Ok(self
            .shared
            .lock()
            .counters(request.cache_key())
            .unwrap_or_default())
    }

    /// The most recent failure of the default request shape's fetches, kept after a later
    /// success (for diagnostics: whether a token can be had now is [`Client::token`]'s
    /// answer).
    #[must_use]
    pub fn last_error(&self) -> Option<TokenError> {
        let key = self.shared.default_request.cache_key();
        self.shared.lock().last_error(key).cloned()
    }

    /// [`Client::last_error`] for these parameters: `None` for a shape the cache does not
    /// hold. Creates no cache entry.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid.
    pub fn last_error_for(&self, params: &TokenParams) -> Result<Option<TokenError>, Error> {
        let request = self.shared.config.request(params)?;
        Ok(self.shared.lock().last_error(request.cache_key()).cloned())
    }

    /// When the default request shape's next fetch is due: the refresh ahead of expiry, or
    /// the end of a backoff. `None` when no token is held and nothing is scheduled.
    #[must_use]
    pub fn next_refresh(&self) -> Option<Instant> {
        let key = self.shared.default_request.cache_key();
        self.shared.lock().next_refresh(key)
    }

    /// [`Client::next_refresh`] for these parameters: `None` for a shape the cache does not
    /// hold. Creates no cache entry.
    ///
    /// # Errors
    /// [`Error::Config`] when the parameters are invalid.
    pub fn next_refresh_for(&self, params: &TokenParams) -> Result<Option<Instant>, Error> {
        let request = self.shared.config.request(params)?;
        Ok(self.shared.lock().next_refresh(request.cache_key()))
    }
}
