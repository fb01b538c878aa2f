//! The testkit's conformance suite against the blocking client.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod harness;

client_credentials_testkit::conformance_suite!(harness::UreqHarness);
