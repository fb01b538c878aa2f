//! A loopback HTTP/1.1 test server for the `client-credentials` adapters: scripted replies,
//! injected faults, and a record of every request, so that tests can count what reached the
//! server and assert what was sent.
//!
//! It uses only `std` threads and `std::net`, so any transport (blocking or async) can be
//! tested against it. Servers bind `127.0.0.1:0` and stop when dropped.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use client_credentials_testkit::{Reply, Script, TestServer, TokenEndpoint};
//!
//! // One 503, then a token endpoint issuing 60-second tokens.
//! let server = TestServer::start(
//!     Script::new()
//!         .once(Reply::new(503))
//!         .then(TokenEndpoint::new().lifetime(Duration::from_secs(60))),
//! );
//!
//! let post = |body: &str| -> String {
//!     let mut tcp = std::net::TcpStream::connect(server.addr()).unwrap();
//!     write!(
//!         tcp,
//!         "POST /token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n\
//!          content-length: {}\r\n\r\n{body}",
//!         body.len()
//!     )
//!     .unwrap();
//!     let mut answer = String::new();
//!     tcp.read_to_string(&mut answer).unwrap();
//!     answer
//! };
//! assert!(post("grant_type=client_credentials").starts_with("HTTP/1.1 503"));
//! assert!(post("grant_type=client_credentials").contains(r#""access_token":"token-1""#));
//!
//! assert_eq!(server.count("/token"), 2);
//! let sent = server.last_request().unwrap();
//! assert_eq!(sent.param("grant_type").as_deref(), Some("client_credentials"));
//! ```
//!
//! The pieces:
//! - [`TestServer`]: the server; [`TestServer::requests`], [`TestServer::count`] and
//!   [`TestServer::wait_for_requests`] observe it. [`refused_url`] names a port where nothing
//!   listens.
//! - [`Handler`]: decides a [`Reply`]; closures, [`Reply`] itself, [`Script`] (replies in
//!   sequence), [`Router`] (by path) and [`TokenEndpoint`] (issues tokens) implement it.
//! - [`Reply`]: status, headers, body ([`Reply::large`] streams a big one), [`Framing`], and
//!   faults: [`Reply::delay`] (stalled headers), [`Reply::stall_after`] (stalled body),
//!   [`Reply::close_after`] (truncated body), [`Reply::reset_after`] (TCP reset mid-body),
//!   [`Reply::hang_up`] (no answer at all).
//! - [`Request`]: what the server read, with helpers for form and JSON bodies and Basic
//!   credentials, and [`Request::contains`] to check that a secret never arrived.
//! - [`conformance`]: the behaviour tests of the token cache, written once over a blocking
//!   [`conformance::Harness`], and [`conformance_suite!`], which runs them all against one
//!   adapter's harness.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod bench;
pub mod conformance;
mod handler;
mod metadata;
mod reply;
mod request;
mod server;

pub use handler::{Handler, Router, Script, TokenEndpoint};
pub use metadata::Metadata;
pub use reply::{Framing, Reply, RetryAfter};
pub use request::Request;
pub use server::{TestServer, refused_url};
