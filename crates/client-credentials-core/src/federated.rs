//! Client assertions made by someone else: workload identity federation (RFC 7521 §4.2,
//! RFC 7523 §2.2).
//!
//! Kubernetes projects a service-account token into a file, GitHub Actions and cloud
//! workload identity hand a job a JWT, and Entra ID, Google and AWS take such a JWT as the
//! `client_assertion` of a client-credentials request. The JWT is short-lived and rotates
//! under the process, so it is read again for every token request, never cached.
//!
//! An [`AssertionSource`] says where to read it: a file ([`AssertionSource::file`], the
//! `AZURE_FEDERATED_TOKEN_FILE` pattern), an environment variable
//! ([`AssertionSource::env`]), or your own function, blocking or async. The core stays
//! without I/O: the adapters read the source when they are about to send (never under a
//! lock), hand what they read to [`AssertionSource::accept`], which checks it, and add it
//! to the request with [`crate::driver::attach_assertion`]. A file that is missing, empty
//! or not a JWT is an [`AssertionError`] naming the path, and no request is sent without
//! credentials.
//!
//! ```
//! use client_credentials::{AssertionSource, AuthMethod, Config};
//! use client_credentials::federated::Read;
//!
//! let config = Config::builder()
//!     .token_url("https://login.example.com/tenant/oauth2/v2.0/token")
//!     .client_id("9e7b1d4a-workload")
//!     .client_assertion(AssertionSource::file("/var/run/secrets/tokens/azure-identity-token"))
//!     .build()?;
//! assert_eq!(config.auth_method(), &AuthMethod::PrivateKeyJwt);
//!
//! // What an adapter does before each send (here with the file's contents given directly):
//! let source = config.assertion_source().unwrap();
//! let read = Read::File(Ok(b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ3In0.c2ln\n".to_vec()));
//! let assertion = source.accept(read)?;
//! let http = client_credentials::driver::attach_assertion(&config, config.default_request().to_http(), &assertion);
//! assert!(std::str::from_utf8(http.body())?.ends_with(
//!     "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
//!      &client_assertion=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ3In0.c2ln"
//! ));
//!
//! // An empty file is an error that names it, and nothing is sent.
//! let error = source.accept(Read::File(Ok(Vec::new()))).unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "client assertion from file /var/run/secrets/tokens/azure-identity-token is empty"
//! );
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```

use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use zeroize::Zeroizing;

/// The error a caller's assertion function returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What an async assertion function ([`AssertionSource::from_async_fn`]) returns.
pub type AssertionFuture = Pin<Box<dyn Future<Output = Result<String, BoxError>> + Send>>;

/// The largest assertion taken, in bytes. Projected service-account tokens and workload
/// identity JWTs are one to two kilobytes; anything near this is not a client assertion.
pub const MAX_ASSERTION_LEN: usize = 16 * 1024;

type BlockingFn = dyn Fn() -> Result<String, BoxError> + Send + Sync;
type AsyncFn = dyn Fn() -> AssertionFuture + Send + Sync;

/// Where a client assertion made elsewhere is read, once per token request
/// ([`ConfigBuilder::client_assertion`](crate::ConfigBuilder::client_assertion)). See the
/// [module docs](self).
#[derive(Clone)]
pub struct AssertionSource(Kind);

#[derive(Clone)]
enum Kind {
    File(PathBuf),
    Env(String),
    Blocking(Arc<BlockingFn>),
    Async(Arc<AsyncFn>),
}

/// How an adapter reads an [`AssertionSource`]: [`AssertionSource::plan`].
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum Plan<'a> {
    /// Read this file, whole.
    File(&'a Path),
    /// Read this environment variable.
    Env(&'a str),
    /// Call this function (it may block).
    Blocking(&'a BlockingFn),
    /// Call this function and await its future.
    Async(&'a AsyncFn),
}

impl fmt::Debug for Plan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Env(name) => f.debug_tuple("Env").field(name).finish(),
            Self::Blocking(_) => f.write_str("Blocking(..)"),
            Self::Async(_) => f.write_str("Async(..)"),
        }
    }
}

/// What an adapter read from an [`AssertionSource`], handed to [`AssertionSource::accept`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Read {
    /// The file's contents, or why it could not be read.
    File(std::io::Result<Vec<u8>>),
    /// The variable's value; `None` if it is not set.
    Env(Option<OsString>),
    /// What the function returned.
    Function(Result<String, BoxError>),
}

impl AssertionSource {
    /// A file read whole before every token request, such as a Kubernetes projected
    /// service-account token or the file named by `AZURE_FEDERATED_TOKEN_FILE`. Surrounding
    /// whitespace (a trailing newline) is ignored.
    #[must_use]
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self(Kind::File(path.into()))
    }

    /// An environment variable read before every token request (CI systems that hand a job
    /// its identity token in the environment).
    #[must_use]
    pub fn env(name: impl Into<String>) -> Self {
        Self(Kind::Env(name.into()))
    }

    /// A function called before every token request, on the thread that sends it (the
    /// blocking adapter's caller or refresh thread; the async adapter runs it on tokio's
    /// blocking pool). Return the compact JWT.
    ///
    /// ```
    /// use client_credentials::AssertionSource;
    /// let source = AssertionSource::from_fn(|| Ok(std::fs::read_to_string("/run/identity/jwt")?));
    /// # let _ = source;
    /// ```
    #[must_use]
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn() -> Result<String, BoxError> + Send + Sync + 'static,
    {
        Self(Kind::Blocking(Arc::new(f)))
    }

    /// An async function called before every token request (an identity service asked over
    /// the network, with its own timeout). Only the async adapter can use it; the blocking
    /// adapter answers every fetch with [`AssertionProblem::NeedsAsync`].
    ///
    /// ```
    /// use client_credentials::AssertionSource;
    /// let source = AssertionSource::from_async_fn(|| async { Ok("eyJ...".to_owned()) });
    /// # let _ = source;
    /// ```
    #[must_use]
    pub fn from_async_fn<F, Fut>(f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, BoxError>> + Send + 'static,
    {
        Self(Kind::Async(Arc::new(move || -> AssertionFuture {
            Box::pin(f())
        })))
    }

    /// How to read this source.
    #[must_use]
    pub fn plan(&self) -> Plan<'_> {
        match &self.0 {
            Kind::File(path) => Plan::File(path),
            Kind::Env(name) => Plan::Env(name),
            Kind::Blocking(f) => Plan::Blocking(f.as_ref()),
            Kind::Async(f) => Plan::Async(f.as_ref()),
        }
    }

    /// Whether this source must be awaited ([`AssertionSource::from_async_fn`]).
    #[must_use]
    pub fn is_async(&self) -> bool {
        matches!(self.0, Kind::Async(_))
    }

    /// What the source is, as errors name it: `file /path`, `environment variable NAME`,
    /// `assertion function`.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.0 {
            Kind::File(path) => format!("file {}", path.display()),
            Kind::Env(name) => format!("environment variable {name}"),
            Kind::Blocking(_) | Kind::Async(_) => "assertion function".to_owned(),
        }
    }

    /// The source's part of a cache key: its path or variable name, or `function`. Cache
    /// keys are stable across processes (a shared store keys tokens by them), so a function
    /// is not told apart by its address: the endpoint and client id already say whose
    /// token it is.
    pub(crate) fn identity(&self) -> String {
        match &self.0 {
            Kind::File(_) | Kind::Env(_) => self.describe(),
            Kind::Blocking(_) | Kind::Async(_) => "function".to_owned(),
        }
    }

    /// Checks a description of the source given to the builder: a path or variable name
    /// that cannot name anything.
    pub(crate) fn validate(&self) -> Result<(), crate::ConfigError> {
        let bad = match &self.0 {
            Kind::File(path) => path.as_os_str().is_empty(),
            Kind::Env(name) => name.is_empty() || name.contains(['=', '\0']),
            Kind::Blocking(_) | Kind::Async(_) => false,
        };
        if bad {
            return Err(crate::ConfigError::InvalidAssertionSource(self.describe()));
        }
        Ok(())
    }

    /// What a read of this source that did not end within `limit` gives [`AssertionSource::accept`]:
    /// a timed-out file read, or a function that gave no assertion in time. For a driver
    /// that waits for its reader with a timeout.
    #[must_use]
    pub fn unanswered(&self, limit: std::time::Duration) -> Read {
        let late = format!("no assertion within {} ms", limit.as_millis());
        match &self.0 {
            Kind::File(_) => {
                Read::File(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, late)))
            }
            _ => Read::Function(Err(late.into())),
        }
    }

    /// The error of a client that cannot read this source: an async function read by a
    /// blocking client.
    #[must_use]
    pub fn unreadable_here(&self) -> AssertionError {
        AssertionError {
            source: self.describe(),
            problem: AssertionProblem::NeedsAsync,
        }
    }

    /// Checks what was read: a compact JWT (three base64url parts, or five for an encrypted
    /// one) of at most [`MAX_ASSERTION_LEN`] bytes, surrounding whitespace removed.
    ///
    /// # Errors
    /// An [`AssertionError`] naming the source: it could not be read, is missing or empty,
    /// or is not a JWT. Its message never holds the assertion.
    pub fn accept(&self, read: Read) -> Result<ClientAssertion, AssertionError> {
        let fail = |problem| AssertionError {
            source: self.describe(),
            problem,
        };
        let text: Zeroizing<String> = match read {
            Read::File(Ok(bytes)) => {
                let bytes = Zeroizing::new(bytes);
                Zeroizing::new(
                    std::str::from_utf8(&bytes)
                        .map_err(|_| fail(AssertionProblem::Malformed))?
                        .to_owned(),
                )
            }
            Read::File(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(fail(AssertionProblem::Missing));
            }
            Read::File(Err(e)) => return Err(fail(AssertionProblem::Unreadable(e.to_string()))),
            Read::Env(None) => return Err(fail(AssertionProblem::Missing)),
            Read::Env(Some(value)) => Zeroizing::new(
                value
                    .into_string()
                    .map_err(|_| fail(AssertionProblem::Malformed))?,
            ),
            Read::Function(Ok(text)) => Zeroizing::new(text),
            Read::Function(Err(e)) => return Err(fail(AssertionProblem::Function(e.to_string()))),
        };
        let jwt = text.trim_matches(|c: char| c.is_ascii_whitespace());
        if jwt.is_empty() {
            return Err(fail(AssertionProblem::Empty));
        }
        if jwt.len() > MAX_ASSERTION_LEN {
            return Err(fail(AssertionProblem::TooLarge {
                limit: MAX_ASSERTION_LEN,
            }));
        }
        if !is_compact_jwt(jwt) {
            return Err(fail(AssertionProblem::Malformed));
        }
        Ok(ClientAssertion(Zeroizing::new(jwt.to_owned())))
    }
}

/// The contents of a file source, read from `file` (which the driver opened) up to one byte
/// past [`MAX_ASSERTION_LEN`], so that a huge file costs no more than that and still comes
/// out as [`AssertionProblem::TooLarge`]. The core opens nothing: the reader is the driver's.
///
/// # Errors
/// The reader's error.
pub fn read_capped(file: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    file.take(MAX_ASSERTION_LEN as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A compact JWS (`header.payload.signature`, each part non-empty) or JWE (five parts, the
/// header, IV, ciphertext and tag non-empty; the key part is empty for direct encryption),
/// every part base64url without padding.
fn is_compact_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    let base64url = |p: &str| {
        p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let shape_ok = match parts.len() {
        3 => parts.iter().all(|p| !p.is_empty()),
        5 => parts
            .iter()
            .enumerate()
            .all(|(i, p)| i == 1 || !p.is_empty()),
        _ => false,
    };
    shape_ok && parts.iter().all(|p| base64url(p))
}

impl fmt::Debug for AssertionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AssertionSource")
            .field(&format_args!("{}", self.describe()))
            .finish()
    }
}

/// A client assertion read from an [`AssertionSource`]: a secret (whoever holds it can
/// authenticate as the client until it expires). `Debug` shows no part of it; it is
/// zeroized when dropped.
#[derive(Clone)]
pub struct ClientAssertion(Zeroizing<String>);

impl ClientAssertion {
    /// The compact JWT, to send. Never log it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientAssertion([REDACTED])")
    }
}

/// A client assertion could not be read from its [`AssertionSource`]: no request was sent.
/// Retryable with the session's backoff ([`AssertionError::is_retryable`]): a projected token
/// may not be written yet, or is being rotated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssertionError {
    /// The source, as [`AssertionSource::describe`] names it (the path, the variable).
    pub source: String,
    /// What was wrong.
    pub problem: AssertionProblem,
}

/// What was wrong with an [`AssertionSource`]'s assertion.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssertionProblem {
    /// The file does not exist, or the variable is not set.
    Missing,
    /// The file could not be read (the I/O error's message).
    Unreadable(String),
    /// Nothing but whitespace.
    Empty,
    /// Longer than the cap.
    TooLarge {
        /// The cap, in bytes ([`MAX_ASSERTION_LEN`]).
        limit: usize,
    },
    /// Not a compact JWT (or not UTF-8).
    Malformed,
    /// The assertion function failed (its error's message).
    Function(String),
    /// The function is async ([`AssertionSource::from_async_fn`]) and the client that
    /// read it cannot await it (the blocking adapter).
    NeedsAsync,
}

impl fmt::Display for AssertionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = &self.source;
        match &self.problem {
            AssertionProblem::Missing if source.starts_with("file") => {
                write!(f, "client assertion {source} does not exist")
            }
            AssertionProblem::Missing => write!(f, "client assertion {source} is not set"),
            AssertionProblem::Unreadable(e) => {
                write!(f, "client assertion {source} cannot be read: {e}")
            }
            AssertionProblem::Empty => write!(f, "client assertion from {source} is empty"),
            AssertionProblem::TooLarge { limit } => {
                write!(
                    f,
                    "client assertion from {source} is longer than {limit} bytes"
                )
            }
            AssertionProblem::Malformed => {
                write!(f, "client assertion from {source} is not a compact JWT")
            }
            AssertionProblem::Function(e) => write!(f, "{source} failed: {e}"),
            AssertionProblem::NeedsAsync => {
                write!(f, "{source} is async and this client cannot await it")
            }
        }
    }
}

impl std::error::Error for AssertionError {}

impl AssertionError {
    /// Whether reading again later may succeed: a file not written yet, being rotated, or a
    /// function that failed. An async function read by a blocking client
    /// ([`AssertionProblem::NeedsAsync`]) never will, and waits out the session's
    /// rejection cool-down instead of its backoff.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        !matches!(self.problem, AssertionProblem::NeedsAsync)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ3In0.c2ln";

    #[test]
    fn a_file_is_trimmed_and_checked() {
        let source = AssertionSource::file("/t/token");
        let ok = source
            .accept(Read::File(Ok(format!("  {JWT}\r\n").into_bytes())))
            .unwrap();
        assert_eq!(ok.expose_secret(), JWT);
        assert_eq!(format!("{ok:?}"), "ClientAssertion([REDACTED])");
        for (read, problem) in [
            (
                Read::File(Err(std::io::ErrorKind::NotFound.into())),
                AssertionProblem::Missing,
            ),
            (Read::File(Ok(b" \n".to_vec())), AssertionProblem::Empty),
            (
                Read::File(Ok(b"not a jwt".to_vec())),
                AssertionProblem::Malformed,
            ),
            (
                Read::File(Ok(vec![0xff, 0xfe])),
                AssertionProblem::Malformed,
            ),
            (
                Read::File(Ok(vec![b'a'; MAX_ASSERTION_LEN + 1])),
                AssertionProblem::TooLarge {
                    limit: MAX_ASSERTION_LEN,
                },
            ),
        ] {
            let error = source.accept(read).unwrap_err();
            assert_eq!(error.problem, problem);
            assert!(error.to_string().contains("file /t/token"), "{error}");
        }
        let denied = source
            .accept(Read::File(Err(std::io::ErrorKind::PermissionDenied.into())))
            .unwrap_err();
        assert!(matches!(denied.problem, AssertionProblem::Unreadable(_)));
    }

    #[test]
    fn jwt_shapes() {
        assert!(is_compact_jwt(JWT));
        assert!(is_compact_jwt("aGVhZA.ZW5j.aXY.Y2lwaGVy.dGFn"));
        assert!(is_compact_jwt("aGVhZA..aXY.Y2lwaGVy.dGFn"), "dir JWE");
        for bad in [
            "a.b",
            "a.b.",
            ".b.c",
            "a.b.c.d",
            "a.b.c=",
            "a b.c.d",
            "a.b.c.d.e.f",
            "",
        ] {
            assert!(!is_compact_jwt(bad), "{bad}");
        }
    }

    #[test]
    fn env_and_function_errors_name_their_source() {
        let env = AssertionSource::env("CI_ID_TOKEN");
        assert_eq!(
            env.accept(Read::Env(None)).unwrap_err().to_string(),
            "client assertion environment variable CI_ID_TOKEN is not set"
        );
        assert_eq!(
            env.accept(Read::Env(Some(JWT.into())))
                .unwrap()
                .expose_secret(),
            JWT
        );
        let function = AssertionSource::from_fn(|| Ok(String::new()));
        let failed = function.accept(Read::Function(Err("identity service down".into())));
        assert_eq!(
            failed.unwrap_err().to_string(),
            "assertion function failed: identity service down"
        );
        assert!(!function.is_async());
        assert!(AssertionSource::from_async_fn(|| async { Ok(String::new()) }).is_async());
    }

    #[test]
    fn the_builder_refuses_sources_that_name_nothing() {
        assert!(AssertionSource::file("").validate().is_err());
        assert!(AssertionSource::env("").validate().is_err());
        assert!(AssertionSource::env("A=B").validate().is_err());
        assert!(AssertionSource::env("A").validate().is_ok());
        // The source is the client's only credential: a secret beside it is refused, not
        // silently ignored.
        let both = crate::Config::builder()
            .token_url("https://as.example.com/token")
            .client_id("c")
            .client_secret("s")
            .client_assertion(AssertionSource::env("A"))
            .build();
        assert!(matches!(
            both,
            Err(crate::ConfigError::ConflictingAssertion)
        ));
    }
}
