//! Tests of [`Recovery`](super::Recovery).
