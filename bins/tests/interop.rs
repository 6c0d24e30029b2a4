//! Every client binary against every server binary (`ferry-std`, `ferry-mio`, `ferry-smol`):
//! the 3×3 matrix of round trips (send, ls, get and get to standard output, with the bytes and
//! the reported BLAKE3 hashes compared), the same matrix over UDP, in code mode over TCP and
//! UDP, then directories and standard input across adapters.

mod common;

use common::cases;

const BINS: [&str; 3] = ["ferry-std", "ferry-mio", "ferry-smol"];

/// One round-trip test per (client, server) pair, so a failure names its pair.
macro_rules! matrix {
    ($($name:ident: $client:literal => $server:literal,)*) => {
        matrix!(@ cases::round_trip; matrix_is_complete; $($name: $client => $server,)*);
    };
    (@ $case:path; $complete:ident; $($name:ident: $client:literal => $server:literal,)*) => {
        $(
            #[test]
            fn $name() {
                $case($client, $server);
            }
        )*

        /// The matrix above is complete: every client with every server, once.
        #[test]
        fn $complete() {
            let mut pairs = vec![$(($client, $server)),*];
            pairs.sort();
            pairs.dedup();
            let mut want: Vec<_> =
                BINS.iter().flat_map(|c| BINS.iter().map(move |s| (*c, *s))).collect();
            want.sort();
            assert_eq!(pairs, want);
        }
    };
}

matrix! {
    std_client_std_server: "ferry-std" => "ferry-std",
    std_client_mio_server: "ferry-std" => "ferry-mio",
    std_client_smol_server: "ferry-std" => "ferry-smol",
    mio_client_std_server: "ferry-mio" => "ferry-std",
    mio_client_mio_server: "ferry-mio" => "ferry-mio",
    mio_client_smol_server: "ferry-mio" => "ferry-smol",
    smol_client_std_server: "ferry-smol" => "ferry-std",
    smol_client_mio_server: "ferry-smol" => "ferry-mio",
    smol_client_smol_server: "ferry-smol" => "ferry-smol",
}

// The same over UDP.
matrix! {
    @ common::udp::udp_round_trip; udp_matrix_is_complete;
    udp_std_client_std_server: "ferry-std" => "ferry-std",
    udp_std_client_mio_server: "ferry-std" => "ferry-mio",
    udp_std_client_smol_server: "ferry-std" => "ferry-smol",
    udp_mio_client_std_server: "ferry-mio" => "ferry-std",
    udp_mio_client_mio_server: "ferry-mio" => "ferry-mio",
    udp_mio_client_smol_server: "ferry-mio" => "ferry-smol",
    udp_smol_client_std_server: "ferry-smol" => "ferry-std",
    udp_smol_client_mio_server: "ferry-smol" => "ferry-mio",
    udp_smol_client_smol_server: "ferry-smol" => "ferry-smol",
}

// Short codes: `receive` (the "client") from `send --code` (the "server"), no key file.
matrix! {
    @ common::code::code_round_trip; code_matrix_is_complete;
    code_std_receives_from_std: "ferry-std" => "ferry-std",
    code_std_receives_from_mio: "ferry-std" => "ferry-mio",
    code_std_receives_from_smol: "ferry-std" => "ferry-smol",
    code_mio_receives_from_std: "ferry-mio" => "ferry-std",
    code_mio_receives_from_mio: "ferry-mio" => "ferry-mio",
    code_mio_receives_from_smol: "ferry-mio" => "ferry-smol",
    code_smol_receives_from_std: "ferry-smol" => "ferry-std",
    code_smol_receives_from_mio: "ferry-smol" => "ferry-mio",
    code_smol_receives_from_smol: "ferry-smol" => "ferry-smol",
}

// Short codes over UDP: `receive --udp` from `send --code --udp`.
matrix! {
    @ common::code_udp::code_udp_round_trip; code_udp_matrix_is_complete;
    code_udp_std_receives_from_std: "ferry-std" => "ferry-std",
    code_udp_std_receives_from_mio: "ferry-std" => "ferry-mio",
    code_udp_std_receives_from_smol: "ferry-std" => "ferry-smol",
    code_udp_mio_receives_from_std: "ferry-mio" => "ferry-std",
    code_udp_mio_receives_from_mio: "ferry-mio" => "ferry-mio",
    code_udp_mio_receives_from_smol: "ferry-mio" => "ferry-smol",
    code_udp_smol_receives_from_std: "ferry-smol" => "ferry-std",
    code_udp_smol_receives_from_mio: "ferry-smol" => "ferry-mio",
    code_udp_smol_receives_from_smol: "ferry-smol" => "ferry-smol",
}

#[test]
fn directory_and_stdin_across_adapters() {
    for c in BINS {
        for s in BINS {
            if c != s {
                cases::directory_tree(c, s);
                cases::standard_input(c, s);
            }
        }
    }
}
