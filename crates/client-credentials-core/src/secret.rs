//! Secret newtypes: [`ClientSecret`] and [`AccessToken`].
//!
//! Both print `[redacted]` under `Debug`, implement neither `Display` nor `Serialize`, hand out
//! their value only through an explicit `expose_secret()`, and zero their memory when the
//! last clone is dropped. A clone shares the value (one reference count, no copy of the
//! secret), so that the copies of a token that a [`TokenSlot`](crate::TokenSlot) keeps per
//! core cost neither a copy of the secret nor a zeroization each.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(Arc<Zeroizing<String>>);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(Arc::new(Zeroizing::new(value.into())))
            }

            /// The secret value. Every call site is a place where the secret leaves its
            /// wrapper: keep them few and never log what they return.
            #[must_use]
            pub fn expose_secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl PartialEq for $name {
            /// Compares in time that depends only on the lengths, not on where the values
            /// differ.
            fn eq(&self, other: &Self) -> bool {
                constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
            }
        }

        impl Eq for $name {}

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::new(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::new(value)
            }
        }
    };
}

secret_type! {
    /// The client secret used to authenticate to the token endpoint.
    ///
    /// ```
    /// use client_credentials::ClientSecret;
    /// let secret = ClientSecret::new("s3cr3t");
    /// assert_eq!(format!("{secret:?}"), "ClientSecret([redacted])");
    /// assert_eq!(secret.expose_secret(), "s3cr3t");
    /// ```
    ClientSecret
}

secret_type! {
    /// An access token issued by the authorization server.
    ///
    /// ```
    /// use client_credentials::AccessToken;
    /// let token = AccessToken::new("eyJ...");
    /// assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
    /// ```
    AccessToken
}

/// Compares two byte strings in time that depends on their lengths only.
///
/// Useful to check a presented client secret or token against a stored one.
///
/// ```
/// use client_credentials::constant_time_eq;
/// assert!(constant_time_eq(b"abc", b"abc"));
/// assert!(!constant_time_eq(b"abc", b"abd"));
/// assert!(!constant_time_eq(b"abc", b"abcd"));
/// ```
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // `black_box` keeps the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_shares_the_secret_instead_of_copying_it() {
        let token = AccessToken::new("tok-123");
        let clone = token.clone();
        assert_eq!(clone, token);
        assert!(std::ptr::eq(
            token.expose_secret().as_ptr(),
            clone.expose_secret().as_ptr()
        ));
    }

    #[test]
    fn debug_is_redacted() {
        let s = ClientSecret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s:#?}").contains("hunter2"));
        let t = AccessToken::new("tok-123");
        assert!(!format!("{t:?}").contains("tok-123"));
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(ClientSecret::new("a"), ClientSecret::new("a"));
        assert_ne!(ClientSecret::new("a"), ClientSecret::new("b"));
        assert_ne!(AccessToken::new("a"), AccessToken::new("ab"));
    }
}
