//! The token lifecycle as a sans-IO state machine (in progress).
