//! `ferry-mio`: the ferry command line on one `mio` event-loop thread (thousands of
//! connections). Same commands and flags as `ferry-std` and `ferry-smol`.

ferry_cli::adapter_main!(ferry_adapter_mio);
