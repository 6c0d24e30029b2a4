//! ferry embedded in an async program: a server and a client in one process on 127.0.0.1.
//!
//! ```sh
//! cargo run -p ferry-adapter-smol --example embed
//! ```
//!
//! The server stores into a temporary directory; the client sends a file and a stream of
//! unknown length, lists what the server holds, fetches the file back and checks its hash,
//! then the server shuts down gracefully.

use std::error::Error;
use std::sync::Arc;

use ferry_adapter_smol::{Client, Config, FsStore, Psk, ServeOptions, Server};

fn main() -> Result<(), Box<dyn Error>> {
    smol::block_on(async {
        let dir = tempfile::tempdir()?;
        // In a real program both sides read the same key file (`ferry-smol keygen`).
        let psk = Psk::from_key_bytes(&[42; 32]);

        let store = Arc::new(FsStore::new(dir.path().join("server-root"))?);
        let server = Server::bind("127.0.0.1:0".parse()?, store, &psk, ServeOptions::default())?;
        let addr = server.local_addr()?;
        let stop = server.shutdown_handle();
        let serving = smol::spawn(server.run());
        println!("serving on {addr}");

        let client = Client::connect(addr, &psk, Config::default()).await?;

        let report = dir.path().join("report.csv");
        let rows: String = (0..50_000u64).map(|i| format!("{i},{}\n", i * i)).collect();
        std::fs::write(&report, rows)?;
        let sent = client.send_file(&report, "reports/2026.csv").await?;
        println!("sent {} ({} bytes)", sent.name, sent.bytes);

        let log = futures_lite::io::Cursor::new(b"started\nworking\ndone\n".repeat(1000));
        let piped = client.send_reader("logs/run.log", log).await?;
        println!("sent {} ({} bytes from a stream)", piped.name, piped.bytes);

        for entry in client.list("").await? {
            println!("listed {:>8} {}", entry.size, entry.path);
        }

        let back = dir.path().join("fetched");
        let got = client.get("reports/2026.csv", &back).await?;
        assert_eq!(
            got[0].blake3, sent.blake3,
            "same whole-file BLAKE3 both ways"
        );
        assert_eq!(
            std::fs::read(back.join("reports/2026.csv"))?,
            std::fs::read(&report)?
        );
        println!("fetched {} back, hashes match", got[0].name);

        stop.shutdown();
        serving.await?;
        println!("server stopped");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    /// `cargo test` runs the example (see `[[example]]` in Cargo.toml).
    #[test]
    fn runs() {
        super::main().unwrap();
    }
}
