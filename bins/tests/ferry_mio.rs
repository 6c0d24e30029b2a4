//! `ferry-mio` end to end: client and server are both the mio event-loop binary.

mod common;

use common::cases;

const B: &str = "ferry-mio";

#[test]
fn round_trip() {
    cases::round_trip(B, B);
}

#[test]
fn directory_tree() {
    cases::directory_tree(B, B);
}

#[test]
fn standard_input() {
    cases::standard_input(B, B);
}

#[test]
fn interrupted_send_resumes() {
    cases::interrupted_send_resumes(B, B);
}

#[test]
fn wrong_key() {
    cases::wrong_key(B, B);
}

#[test]
fn bad_names() {
    cases::bad_names(B, B);
}

#[test]
fn exists_rules() {
    cases::exists_rules(B, B);
}

#[test]
fn garbage_client() {
    cases::garbage_client(B, B);
}

#[test]
fn idle_connection_closed() {
    cases::idle_connection_closed(B, B);
}

#[test]
fn ipv6() {
    cases::ipv6(B, B);
}

#[test]
fn connection_limit() {
    cases::connection_limit(B, B);
}

#[test]
fn disk_full() {
    cases::disk_full(B, B);
}

#[test]
fn silent_crowd() {
    cases::silent_crowd(B, B);
}
