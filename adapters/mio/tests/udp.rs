//! The mio adapter's datagram server and client on 127.0.0.1: files in and out, and garbage
//! that changes nothing (the body is shared by every adapter).

#[path = "../../app/tests/support/udp_adapter.rs"]
mod udp_adapter;

use ferry_adapter_mio::{ServeOptions, run_udp_client, serve_udp};

#[test]
fn files_in_and_out_with_garbage_around() {
    udp_adapter::files_in_and_out_with_garbage_around(
        |sock, psk, store| {
            let _ = serve_udp(sock, psk, store, ServeOptions::default());
        },
        run_udp_client,
    );
}
