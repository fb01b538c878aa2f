//! The testkit's conformance suite against the async client, each call blocking on the
//! harness's own runtime.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod harness;

client_credentials_testkit::conformance_suite!(harness::ReqwestHarness);
