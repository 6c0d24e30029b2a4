//! The server's disk work runs on its pool, not on the connection's thread: the thread that
//! decrypts the next files never waits for a file to be created, synced or renamed.

#[path = "../../disk/tests/support/watched.rs"]
mod watched;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use ferry_adapter_std::{ServeOptions, connect, run_client, serve};
use ferry_app::agent::{Agent, Job, LogObserver};
use ferry_disk::{FsStore, Outgoing};
use proto::{Config, Psk};
use watched::{Seen, Watched, off_the_pool};

#[test]
fn received_files_are_created_and_committed_on_the_disk_pool() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mut files = Vec::new();
    for i in 0..40 {
        let path = src.join(format!("f{i}"));
        std::fs::write(&path, vec![i as u8; 3000 + i]).unwrap();
        files.push(Outgoing::from_file(path, &format!("d/f{i}"), false).unwrap());
    }
    let seen = Seen::default();
    let store = Watched {
        inner: FsStore::new(dir.path().join("root")).unwrap(),
        seen: seen.clone(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let psk = Psk::from_key_bytes(&[3; 32]);
    let server_psk = psk.clone();
    let opts = ServeOptions {
        max_connections: 4,
        config: Config::default(),
        ..Default::default()
    };
    std::thread::spawn(move || serve(listener, server_psk, Arc::new(store), opts));

    let stream = connect("127.0.0.1", port, Duration::from_secs(5), 0).unwrap();
    let local = Arc::new(FsStore::new(dir.path().join("local")).unwrap());
    let mut agent = Agent::client(local, Box::new(LogObserver), Job::Send(files));
    run_client(stream, &Config::default(), &psk, &mut agent).unwrap();
    assert_eq!(agent.failures(), 0);
    for i in 0..40 {
        let got = std::fs::read(dir.path().join("root/d").join(format!("f{i}"))).unwrap();
        assert_eq!(got, vec![i as u8; 3000 + i]);
    }
    let inline = off_the_pool(&seen);
    assert!(
        inline.is_empty(),
        "store calls on the connection's thread: {inline:?}"
    );
}
