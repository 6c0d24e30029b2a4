//! The embeddable std API: a server and a client in one process, on 127.0.0.1.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use ferry_adapter_std::{ServeOptions, connect, send_record, serve};
use ferry_app::records::SendRecordError;
use ferry_disk::FsStore;
use proto::RecordFormat;
use proto::{Config, Psk};

#[derive(serde::Serialize)]
struct Reading {
    sensor: String,
    celsius: f64,
    tags: Vec<&'static str>,
}

#[test]
fn send_record_of_any_serializable_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path()).unwrap();
    let log = store.records_path();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let psk = Psk::from_key_bytes(&[9; 32]);
    let opts = ServeOptions {
        max_connections: 8,
        config: Config::default(),
        ..Default::default()
    };
    let server_psk = psk.clone();
    std::thread::spawn(move || serve(listener, server_psk, Arc::new(store), opts));
    let dial = || connect("127.0.0.1", addr.port(), Duration::from_secs(5), 0).unwrap();
    let value = Reading {
        sensor: "t1".into(),
        celsius: 21.5,
        tags: vec!["lab"],
    };
    for format in [RecordFormat::Postcard, RecordFormat::Json] {
        send_record(dial(), &Config::default(), &psk, &value, format).unwrap();
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want = serde_json::json!({"sensor": "t1", "celsius": 21.5, "tags": ["lab"]});
    assert_eq!(lines, vec![want.clone(), want]);
    // Not an object: refused before anything is sent.
    let err = send_record(
        dial(),
        &Config::default(),
        &psk,
        &[1, 2, 3],
        RecordFormat::Json,
    )
    .unwrap_err();
    assert!(matches!(err, SendRecordError::Encode(_)), "{err}");
    // Wrong key: the session fails.
    let other = Psk::from_key_bytes(&[8; 32]);
    let err = send_record(
        dial(),
        &Config::default(),
        &other,
        &value,
        RecordFormat::Json,
    )
    .unwrap_err();
    assert!(matches!(err, SendRecordError::Run(_)), "{err}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), text);
}
