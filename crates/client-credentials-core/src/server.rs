//! The token endpoint half of the protocol (in progress).
