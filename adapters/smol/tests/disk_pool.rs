//! The server's disk work runs on its pool, not on the thread that steps the connection: that
//! thread decrypts the next files while the last ones are created, synced and renamed.

#[path = "../../disk/tests/support/watched.rs"]
mod watched;

use std::sync::Arc;

use ferry_adapter_smol::{Client, Config, FsStore, Psk, ServeOptions, Server};
use watched::{Seen, Watched, off_the_pool};

#[test]
fn received_files_are_created_and_committed_on_the_disk_pool() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Seen::default();
    let store = Watched {
        inner: FsStore::new(dir.path().join("root")).unwrap(),
        seen: seen.clone(),
    };
    let psk = Psk::from_key_bytes(&[5; 32]);
    let server = Server::bind(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(store),
        &psk,
        ServeOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    smol::block_on(async {
        let task = smol::spawn(server.run());
        let client = Client::connect(addr, &psk, Config::default())
            .await
            .unwrap();
        for i in 0..12 {
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, vec![i as u8; 5000 + i]).unwrap();
            client.send_file(&path, &format!("d/f{i}")).await.unwrap();
        }
        stop.shutdown();
        task.await.unwrap();
    });
    for i in 0..12 {
        let got = std::fs::read(dir.path().join("root/d").join(format!("f{i}"))).unwrap();
        assert_eq!(got, vec![i as u8; 5000 + i]);
    }
    let inline = off_the_pool(&seen);
    assert!(
        inline.is_empty(),
        "store calls off the disk pool: {inline:?}"
    );
}
