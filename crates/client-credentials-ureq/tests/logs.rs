//! The conformance suite's log tests against the blocking client, in a process of their
//! own (see `client_credentials_testkit::conformance_suite!`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod harness;

client_credentials_testkit::conformance_suite!(@logs harness::UreqHarness);
