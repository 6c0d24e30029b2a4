//! `ferry`: the ferry command line on the blocking std runtime, under the short name (the same
//! program as `ferry-std`).

ferry_cli::adapter_main!(ferry_adapter_std);
