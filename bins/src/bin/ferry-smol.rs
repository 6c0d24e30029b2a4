//! `ferry-smol`: the ferry command line on `smol` (the async adapter: connection tasks on a
//! small executor, file I/O on the blocking pool). Same commands and flags as `ferry-std` and
//! `ferry-mio`.

ferry_cli::adapter_main!(ferry_adapter_smol);
