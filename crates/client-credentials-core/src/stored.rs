//! Tokens read back from storage (a shared store, a cache file, a token handed over by the
//! application): one rule for whether one is taken, and one for how long to keep it.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::config::{Config, MissingLifetime};
use crate::response::MAX_LIFETIME;
use crate::session::Policy;
use crate::token::Token;

/// How long a token without an expiry is kept in a store before it is read from the token
/// endpoint again ([`Policy::store_ttl`]). Such tokens live until a resource server rejects
/// them; an hour bounds how long a fleet keeps serving one that nobody rejected yet.
pub const NO_EXPIRY_STORE_TTL: Duration = Duration::from_secs(3600);

/// Why a stored token is not taken ([`Config::check_stored`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoredTokenProblem {
    /// Its `token_type` is not one this configuration accepts.
    TokenType,
    /// It has no expiry, and the configuration does not keep such tokens
    /// ([`MissingLifetime::NeverExpires`]).
    NoExpiry,
    /// Its lifetime is beyond what the parser ever takes ([`MAX_LIFETIME`]).
    LifetimeTooLong,
    /// Its usable life ([`Policy::usable_lifetime`]) is over at the time given.
    Expired,
}

impl fmt::Display for StoredTokenProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TokenType => "its token type is not accepted",
            Self::NoExpiry => "it has no expiry and tokens without one are not kept",
            Self::LifetimeTooLong => "its lifetime is beyond the accepted maximum",
            Self::Expired => "its usable life is over",
        })
    }
}

impl std::error::Error for StoredTokenProblem {}

impl Config {
    /// Whether a token read back from storage would be taken at `now` (wall-clock time), by
    /// the one rule that the session, the shared stores and the command-line cache all
    /// apply: a token type this configuration accepts; an expiry, unless it keeps tokens
    /// without one ([`MissingLifetime::NeverExpires`]); a lifetime within [`MAX_LIFETIME`];
    /// and a usable life ([`Policy::usable_lifetime`], counted from its `issued_at`) that is
    /// not over.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use client_credentials::{Config, Policy, StoredTokenProblem};
    /// use client_credentials::http::{HeaderMap, StatusCode};
    ///
    /// let config = Config::builder()
    ///     .token_url("https://as.example.com/token")
    ///     .client_id("c")
    ///     .client_secret("s")
    ///     .build()?;
    /// let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// let body = br#"{"access_token":"abc","token_type":"Bearer","expires_in":60}"#;
    /// let stored = config
    ///     .default_request()
    ///     .parse_response(issued, StatusCode::OK, &HeaderMap::new(), body)?;
    /// let policy = Policy::default(); // 10 s margin: usable for 50 s
    /// assert_eq!(config.check_stored(&policy, issued + Duration::from_secs(49), &stored), Ok(()));
    /// assert_eq!(
    ///     config.check_stored(&policy, issued + Duration::from_secs(50), &stored),
    ///     Err(StoredTokenProblem::Expired),
    /// );
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The first [`StoredTokenProblem`] found.
    pub fn check_stored(
        &self,
        policy: &Policy,
        now: SystemTime,
        token: &Token,
    ) -> Result<(), StoredTokenProblem> {
        if !self.accepts_token_type(token.token_type()) {
            return Err(StoredTokenProblem::TokenType);
        }
        let Some(lifetime) = token.lifetime() else {
            return match self.missing_lifetime() {
                MissingLifetime::NeverExpires => Ok(()),
                _ => Err(StoredTokenProblem::NoExpiry),
            };
        };
        if lifetime > MAX_LIFETIME {
            return Err(StoredTokenProblem::LifetimeTooLong);
        }
        let usable_until = token
            .issued_at()
            .checked_add(policy.usable_lifetime(lifetime));
        match usable_until {
            Some(until) if now < until => Ok(()),
            _ => Err(StoredTokenProblem::Expired),
        }
    }
}

impl Policy {
    /// How long from `now` to keep `token` in a store shared by sessions with this policy:
    /// until they stop taking it ([`Policy::usable_lifetime`]), and at least a tenth of its
    /// lifetime (at most 10 s) before it expires, so that the entry always disappears first.
    /// A token without an expiry is kept for [`NO_EXPIRY_STORE_TTL`]. `None`: not worth
    /// storing (under a millisecond left).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// # use client_credentials_core::{Config, Policy};
    /// # use client_credentials_core::http::{HeaderMap, StatusCode};
    /// # let config = Config::builder().token_url("https://as.example.com/t").client_id("c").client_secret("s").build()?;
    /// # let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// # let body = br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#;
    /// # let token = config.default_request().parse_response(issued, StatusCode::OK, &HeaderMap::new(), body)?;
    /// // A one-hour token, issued just now, with the default 10 s margin:
    /// assert_eq!(Policy::default().store_ttl(&token, issued), Some(Duration::from_secs(3590)));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn store_ttl(&self, token: &Token, now: SystemTime) -> Option<Duration> {
        let Some(lifetime) = token.lifetime() else {
            return Some(NO_EXPIRY_STORE_TTL);
        };
        let gap = (lifetime / 10).min(Duration::from_secs(10));
        let kept = self
            .usable_lifetime(lifetime)
            .min(lifetime.saturating_sub(gap));
        let end = token.issued_at().checked_add(kept)?;
        let ttl = end.duration_since(now).ok()?;
        (ttl >= Duration::from_millis(1)).then_some(ttl)
    }
}
