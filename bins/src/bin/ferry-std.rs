//! `ferry-std`: the ferry command line on blocking `std::net` sockets (a thread per
//! connection). Same commands and flags as `ferry-mio` and `ferry-smol`.

ferry_cli::adapter_main!(ferry_adapter_std);
