//! Blocking transport for `client-credentials` on ureq 3 (in progress).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
