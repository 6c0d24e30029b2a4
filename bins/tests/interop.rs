//! Any client binary against any server binary: a round trip and a resumed send across
//! adapters (the smol adapter will join the matrix).

mod common;

use common::cases;

const BINS: [&str; 2] = ["ferry-std", "ferry-mio"];

#[test]
fn round_trip_across_adapters() {
    for c in BINS {
        for s in BINS {
            if c != s {
                cases::round_trip(c, s);
            }
        }
    }
}

#[test]
fn directory_and_stdin_across_adapters() {
    for (c, s) in [("ferry-std", "ferry-mio"), ("ferry-mio", "ferry-std")] {
        cases::directory_tree(c, s);
        cases::standard_input(c, s);
    }
}
