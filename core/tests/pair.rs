//! Whole sessions through the in-memory pair harness: PUT, GET, LIST, resume, rejects,
//! compression, back-pressure, timeouts and close, over links that split and delay bytes.

use std::time::Duration;

use ferry_core::testing::{LinkConfig, MemApp, Outcome, Pair, TestRng};
use ferry_core::{Compression, Config, Event, Reason, SessionError};

fn cfg_with(f: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::default();
    f(&mut c);
    c
}

fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = TestRng::new(seed);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

fn text(len: usize) -> Vec<u8> {
    let words = ["ferry ", "moves ", "files ", "safely ", "and ", "fast\n"];
    let mut out = Vec::with_capacity(len);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(words[i % words.len()].as_bytes());
        i = i.wrapping_mul(7).wrapping_add(3);
    }
    out.truncate(len);
    out
}

fn sender(files: &[(&str, Vec<u8>)]) -> MemApp {
    let mut app = MemApp::new();
    for (p, d) in files {
        app = app.with_file(p, d.clone());
        app.to_send.push_back(p.to_string());
    }
    app.close_when_done = true;
    app
}

fn assert_clean(pair: &Pair) {
    assert_eq!(pair.client.error, None);
    assert_eq!(pair.server.error, None);
    for side in [&pair.client, &pair.server] {
        assert!(
            side.app.log.contains(&Event::Closed { result: Ok(()) }),
            "no clean close: {:?}",
            side.app.log.last()
        );
    }
}

#[test]
fn multi_file_put_over_split_links() {
    let files = vec![
        ("a.bin", data(1, 300_000)),
        ("dir/b.txt", text(70_000)),
        ("empty", Vec::new()),
        ("one", vec![7]),
        ("exact", data(2, 65_536)),
    ];
    for seed in 0..8 {
        let link = LinkConfig {
            latency: Duration::from_millis(1 + seed),
            jitter: Duration::from_millis(seed * 2),
            max_segment: 1 + (seed as usize * 977) % 4000,
            window: (64 * 1024) << seed,
        };
        let cfg = Config::default();
        let mut pair = Pair::new(&cfg, &cfg, sender(&files), MemApp::new(), link, seed);
        assert!(pair.drive(), "seed {seed}: did not finish");
        assert_clean(&pair);
        for (p, d) in &files {
            assert_eq!(pair.server.app.files.get(*p), Some(d), "seed {seed}: {p}");
            assert_eq!(pair.client.app.outcomes.get(*p), Some(&Outcome::Delivered));
        }
    }
}

#[test]
fn get_and_list() {
    let mut server = MemApp::new()
        .with_file("docs/a.txt", text(10_000))
        .with_file("docs/b.txt", text(200_000))
        .with_file("other", data(3, 5));
    server.close_when_done = false;
    let mut client = MemApp::new();
    client.to_get.push_back("docs".into());
    client.to_get.push_back("missing".into());
    client.to_list.push_back(String::new());
    client.close_when_done = true;
    let mut pair = Pair::simple(client, server, 11);
    assert!(pair.drive());
    assert_clean(&pair);
    let c = &pair.client.app;
    assert_eq!(c.files.get("docs/a.txt"), Some(&text(10_000)));
    assert_eq!(c.files.get("docs/b.txt"), Some(&text(200_000)));
    assert!(!c.files.contains_key("other"));
    assert_eq!(c.listings.len(), 3);
    assert!(
        c.listings
            .iter()
            .any(|e| e.path == "docs/b.txt" && e.size == 200_000)
    );
    let errors: Vec<_> = c
        .requests_done
        .iter()
        .filter_map(|(_, e)| e.clone())
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].reason, Reason::NotFound);
}

#[test]
fn rejected_and_failed_files_do_not_stop_others() {
    let files = vec![
        ("ok1", data(4, 100_000)),
        ("../escape", data(5, 10)),
        ("exists", data(6, 1000)),
        ("same", data(7, 1000)),
        ("diskfull", data(8, 150_000)),
        ("ok2", data(9, 100_000)),
    ];
    let mut server = MemApp::new()
        .with_file("exists", data(60, 1000))
        .with_file("same", data(7, 1000));
    server.fail_commit.insert("diskfull".into());
    let mut pair = Pair::simple(sender(&files), server, 5);
    assert!(pair.drive());
    assert_clean(&pair);
    let out = &pair.client.app.outcomes;
    assert_eq!(out["ok1"], Outcome::Delivered);
    assert_eq!(out["ok2"], Outcome::Delivered);
    assert_eq!(out["../escape"], Outcome::Rejected(Reason::BadName));
    assert_eq!(out["exists"], Outcome::Rejected(Reason::Exists));
    assert_eq!(out["same"], Outcome::Rejected(Reason::UpToDate));
    assert_eq!(out["diskfull"], Outcome::Failed(Reason::NoSpace));
    let s = &pair.server.app;
    assert_eq!(s.files["exists"], data(60, 1000), "not overwritten");
    assert!(!s.files.contains_key("diskfull"));
    assert_eq!(s.committed, vec!["ok1".to_string(), "ok2".to_string()]);
}

#[test]
fn overwrite_replaces_existing() {
    let mut client = sender(&[("f", data(1, 5000))]);
    client.overwrite = true;
    let server = MemApp::new().with_file("f", data(2, 7000));
    let mut pair = Pair::simple(client, server, 3);
    assert!(pair.drive());
    assert_eq!(pair.server.app.files["f"], data(1, 5000));
}

/// Interrupt a transfer half-way (the connection dies), keep the partial, then run a second
/// session: only the rest crosses, and the result matches.
#[test]
fn resumed_transfer_sends_only_the_rest() {
    let big = data(21, 1_000_000);
    let files = vec![("big", big.clone())];
    let mut pair = Pair::simple(sender(&files), MemApp::new(), 9);
    // Run until roughly half has been read by the server, then cut the connection.
    while pair.server.app.bytes_read < 500_000 {
        assert!(!pair.drive_bounded(1), "finished too early");
    }
    let mut server_app = std::mem::take(&mut pair.server.app);
    server_app.interrupt();
    server_app.bytes_read = 0;
    let held = server_app.partials["big"].len();
    assert!(held >= 500_000 && held < big.len(), "held {held}");
    let mut pair = Pair::simple(sender(&files), server_app, 10);
    assert!(pair.drive());
    assert_clean(&pair);
    assert_eq!(pair.server.app.files["big"], big);
    assert_eq!(pair.server.app.bytes_read, (big.len() - held) as u64);
    assert!(
        pair.server
            .app
            .log
            .iter()
            .any(|e| matches!(e, Event::Offered { .. }))
    );
    assert!(pair.client.app.log.contains(&Event::Accepted {
        id: ferry_core::SendId(0),
        resume_from: held as u64
    }));
}

/// A partial that does not match the sender's prefix is resent whole, and the result is
/// still exactly the sender's file.
#[test]
fn resume_with_changed_prefix_restarts_from_zero() {
    let file = data(30, 200_000);
    let mut server = MemApp::new();
    let mut stale = file[..120_000].to_vec();
    stale[5] ^= 1;
    server.partials.insert("f".into(), stale);
    let mut pair = Pair::simple(sender(&[("f", file.clone())]), server, 12);
    assert!(pair.drive());
    assert_eq!(pair.server.app.files["f"], file);
    assert_eq!(pair.server.app.bytes_read, file.len() as u64);
}

/// A partial as long as the whole file: nothing but FileEnd crosses.
#[test]
fn resume_of_complete_partial_sends_no_data() {
    let file = data(31, 70_000);
    let mut server = MemApp::new();
    server.partials.insert("f".into(), file.clone());
    let mut pair = Pair::simple(sender(&[("f", file.clone())]), server, 13);
    assert!(pair.drive());
    assert_eq!(pair.server.app.files["f"], file);
    assert_eq!(pair.server.app.bytes_read, 0);
}

fn compressed_run(mode: Compression, payload: Vec<u8>) -> (usize, Pair) {
    let cfg = cfg_with(|c| {
        c.compression = mode;
    });
    let mut pair = Pair::new(
        &cfg,
        &Config::default(),
        sender(&[("f", payload.clone())]),
        MemApp::new(),
        LinkConfig::default(),
        17,
    );
    assert!(pair.drive());
    assert_clean(&pair);
    assert_eq!(pair.server.app.files["f"], payload);
    (pair.c2s.log.len(), pair)
}

#[test]
fn compression_modes() {
    let t = text(2_000_000);
    let (off, _) = compressed_run(Compression::Off, t.clone());
    let (on, _) = compressed_run(Compression::On, t.clone());
    assert!(off > 2_000_000);
    assert!(on * 5 < off, "on {on} vs off {off}");
    // Chunks are deflated whole (not cut to the room left in a record): the stream is within
    // a few percent of deflating each 64 KiB chunk on its own.
    let chunked: usize = t
        .chunks(ferry_core::CHUNK)
        .map(|c| ferry_core::testing::deflate_chunk(c).map_or(c.len(), |d| d.len()))
        .sum();
    assert!(
        on < chunked + chunked / 20 + 2_000,
        "on {on} vs chunk by chunk {chunked}"
    );
    // Auto measures goodput before it decides: on this window-limited link (256 KiB per
    // round trip) compressing is faster, so after measuring (~300 ms of the virtual clock,
    // ~12 MB sent stored) it compresses.
    let long = text(96_000_000);
    let (auto, _) = compressed_run(Compression::Auto, long);
    assert!(
        auto * 3 < 96_000_000,
        "auto sent {auto} bytes for 96 MB of text"
    );
    // Random data: on and auto fall back to stored chunks, costing almost nothing.
    let r = data(40, 1_000_000);
    let (off, _) = compressed_run(Compression::Off, r.clone());
    let (on, _) = compressed_run(Compression::On, r.clone());
    let (auto, _) = compressed_run(Compression::Auto, r);
    assert!(
        on <= off + 64 && auto <= off + 64,
        "off {off} on {on} auto {auto}"
    );
}

#[test]
fn compression_needs_the_receivers_consent() {
    let client = cfg_with(|c| {
        c.compression = Compression::On;
    });
    let server = cfg_with(|c| {
        c.accept_compression = false;
    });
    let t = text(500_000);
    let mut pair = Pair::new(
        &client,
        &server,
        sender(&[("f", t.clone())]),
        MemApp::new(),
        LinkConfig::default(),
        2,
    );
    assert!(pair.drive());
    assert_clean(&pair);
    assert_eq!(pair.server.app.files["f"], t);
    assert!(
        pair.c2s.log.len() > 500_000,
        "sent compressed without consent"
    );
}

/// A receiver whose application does not read: the sender stalls, the receiver's buffers stay
/// within their bounds, then everything completes once reading resumes.
#[test]
fn back_pressure_bounds_buffers() {
    let cfg = Config::default();
    let big = data(50, 3_000_000);
    let mut server = MemApp::new();
    server.read_paused = true;
    let link = LinkConfig::default();
    let mut pair = Pair::new(&cfg, &cfg, sender(&[("big", big.clone())]), server, link, 4);
    for _ in 0..20_000 {
        pair.drive_bounded(1);
    }
    // Stalled: the session holds at most its receive window, the rest waits in the link
    // window and the sender's bounded send buffer.
    let queued = pair.server.session._internal_recv_queued();
    assert!(queued > 0 && queued <= cfg.recv_window, "queued {queued}");
    assert!(pair.server.inbox.len() <= link.window + ferry_core::MAX_RECORD);
    assert!(!pair.server.session.wants_input());
    assert_eq!(pair.client.session.send_capacity(), 0, "sender not stalled");
    assert_eq!(pair.server.app.bytes_read, 0);
    pair.server.app.read_paused = false;
    assert!(pair.drive());
    assert_clean(&pair);
    assert_eq!(pair.server.app.files["big"], big);
}

#[test]
fn idle_peer_times_out_and_keepalive_keeps_session() {
    // Both sides idle with nothing to do and nobody closing: keep-alives hold the session
    // open well past the idle timeout.
    let cfg = cfg_with(|c| {
        c.idle_timeout = Duration::from_secs(6);
        c.keepalive_interval = Duration::from_secs(2);
    });
    let mut pair = Pair::new(
        &cfg,
        &cfg,
        MemApp::new(),
        MemApp::new(),
        LinkConfig::default(),
        8,
    );
    let end = pair.now + Duration::from_secs(60);
    while pair.now < end {
        pair.drive_bounded(1);
    }
    assert!(pair.client.session.is_connected() && pair.server.session.is_connected());
    // Now the client goes silent (its link is cut): the server times out.
    let mut server_only = pair;
    let deadline = server_only.now + Duration::from_secs(10);
    while server_only.now < deadline {
        server_only.server.session.handle_timeout(server_only.now);
        server_only.sleep(Duration::from_millis(500));
    }
    assert_eq!(
        server_only.server.session.error(),
        Some(SessionError::TimedOut)
    );
}

#[test]
fn handshake_timeout() {
    let cfg = Config::default();
    let mut s = ferry_core::Session::server(
        &cfg,
        &ferry_core::testing::test_psk(),
        [1; 32],
        ferry_core::Instant::ZERO,
    );
    let t = s.poll_timeout().unwrap();
    assert_eq!(t, ferry_core::Instant::ZERO + cfg.handshake_timeout);
    s.handle_timeout(ferry_core::Instant::from_micros(5));
    assert_eq!(s.error(), None, "early timeout call is a no-op");
    s.handle_timeout(t);
    assert_eq!(s.error(), Some(SessionError::TimedOut));
    assert!(matches!(
        s.poll_event(),
        Some(Event::Closed {
            result: Err(SessionError::TimedOut)
        })
    ));
}

#[test]
fn rekey_is_transparent() {
    let cfg = cfg_with(|c| {
        c._internal_rekey_interval = 3;
    });
    let big = data(70, 1_500_000);
    let mut pair = Pair::new(
        &cfg,
        &cfg,
        sender(&[("big", big.clone())]),
        MemApp::new(),
        LinkConfig::default(),
        1,
    );
    assert!(pair.drive());
    assert_clean(&pair);
    assert_eq!(pair.server.app.files["big"], big);
}

#[test]
fn many_small_files_pipelined() {
    let files: Vec<(String, Vec<u8>)> = (0..2000)
        .map(|i| (format!("d/{i:04}"), data(i, 4096)))
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
    let cfg = Config::default();
    let mut pair = Pair::new(
        &cfg,
        &cfg,
        sender(&refs),
        MemApp::new(),
        LinkConfig {
            latency: Duration::from_millis(20),
            jitter: Duration::ZERO,
            max_segment: 65536,
            window: 8 << 20,
        },
        6,
    );
    let start = pair.now;
    assert!(pair.drive());
    assert_clean(&pair);
    assert_eq!(pair.server.app.committed.len(), 2000);
    // Pipelined: a handful of round trips, not one per file (2000 x 40 ms would be 80 s).
    let elapsed = pair.now - start;
    assert!(
        elapsed < Duration::from_secs(2),
        "took {elapsed:?} of virtual time"
    );
}

/// Offers and requests share the peer's `max_open`: a client pipelining both never trips the
/// server's limit, it just waits (`Busy`) and everything completes.
#[test]
fn offers_and_requests_share_the_open_limit() {
    let mut client = sender(&[
        ("f0", data(80, 100_000)),
        ("f1", data(81, 100_000)),
        ("f2", data(82, 100_000)),
    ]);
    client.to_get.extend(["g0".to_string(), "g1".to_string()]);
    let server = MemApp::new()
        .with_file("g0", data(83, 70_000))
        .with_file("g1", data(84, 5));
    let server_cfg = cfg_with(|c| c.max_open = 2);
    let mut pair = Pair::new(
        &Config::default(),
        &server_cfg,
        client,
        server,
        LinkConfig::default(),
        31,
    );
    assert!(pair.drive());
    assert_clean(&pair);
    assert_eq!(pair.server.app.committed.len(), 3);
    assert_eq!(pair.client.app.files["g0"], data(83, 70_000));
    assert_eq!(pair.client.app.files["g1"], data(84, 5));
}

/// A sender that closes right after its last FileEnd, without waiting for the Ack, still gets
/// the Ack: the receiver answers what it owes before its own FINAL record.
#[test]
fn close_right_after_file_end_still_gets_the_ack() {
    close_right_after_file_end(false);
}

/// The same with a receiver whose commit takes longer than the close timeout: its
/// keep-alives hold the closing side until the Ack comes.
#[test]
fn slow_commit_after_peer_close_still_gets_the_ack() {
    close_right_after_file_end(true);
}

fn close_right_after_file_end(slow_commit: bool) {
    let mut server = MemApp::new();
    server.hold_commits = slow_commit;
    let mut pair = Pair::simple(MemApp::new(), server, 41);
    while !pair.client.session.is_connected() {
        pair.drive_bounded(1);
    }
    let payload = data(90, 150_000);
    let id = pair
        .client
        .session
        .offer(ferry_core::FileMeta::new(
            "quick",
            Some(payload.len() as u64),
        ))
        .unwrap();
    while !pair
        .client
        .app
        .log
        .iter()
        .any(|e| matches!(e, Event::Accepted { .. }))
    {
        pair.drive_bounded(1);
    }
    pair.client
        .session
        .start(id, ferry_core::FileHasher::new())
        .unwrap();
    let mut pos = 0;
    while pos < payload.len() {
        pos += pair.client.session.write(id, &payload[pos..]).unwrap();
        pair.drive_bounded(1);
    }
    pair.client.session.finish(id).unwrap();
    pair.client
        .session
        .close(pair.now, ferry_core::CloseCode::Done);
    if slow_commit {
        let later = pair.now + Duration::from_secs(40);
        pair.drive_until(1_000_000, |p| p.now >= later);
        assert!(!pair.client.session.is_closed(), "gave up on a slow commit");
        pair.server.app.hold_commits = false;
    }
    assert!(pair.drive());
    assert_clean(&pair);
    assert_eq!(pair.server.app.files["quick"], payload);
    let log = &pair.client.app.log;
    let delivered = log
        .iter()
        .position(|e| matches!(e, Event::Delivered { id: i, .. } if *i == id));
    let closed = log.iter().position(|e| matches!(e, Event::Closed { .. }));
    assert!(delivered.is_some() && delivered < closed, "{log:?}");
}

/// A problem text longer than the protocol allows is cut, not sent as an unencodable frame.
#[test]
fn over_long_problem_detail_is_cut() {
    let mut pair = Pair::simple(MemApp::new(), MemApp::new(), 43);
    while !pair.server.session.is_connected() {
        pair.drive_bounded(1);
    }
    let req = pair.client.session.list("nothing").unwrap();
    let peer_req = loop {
        if let Some(ev) = pair.server.session.poll_event() {
            if let Event::ListRequested { req, .. } = ev {
                break req;
            }
        } else {
            let _ = pair.step();
            pair.now = pair.next_due().unwrap_or(pair.now).max(pair.now);
        }
    };
    let huge = ferry_core::Problem {
        reason: Reason::Other,
        detail: "é".repeat(20_000),
    };
    pair.server
        .session
        .finish_request(peer_req, Some(huge))
        .unwrap();
    pair.client.app.close_when_done = true;
    assert!(pair.drive());
    let (got, err) = pair.client.app.requests_done[0].clone();
    assert_eq!(got, req);
    let err = err.unwrap();
    assert!(err.detail.len() <= ferry_core::wire::MAX_DETAIL_LEN && err.detail.len() > 400);
}

#[test]
fn invalid_local_fields_are_refused_before_sending() {
    let mut pair = Pair::simple(MemApp::new(), MemApp::new(), 44);
    pair.drive_until(10_000, |p| p.client.session.is_connected());
    let mut meta = ferry_core::FileMeta::new("t", Some(1));
    meta.mtime = Some(ferry_core::Mtime {
        secs: 1,
        nanos: 1_000_000_000,
    });
    assert_eq!(
        pair.client.session.offer(meta),
        Err(ferry_core::RequestError::InvalidField)
    );
    let long = "p".repeat(ferry_core::wire::MAX_PATH_LEN + 1);
    assert_eq!(
        pair.client
            .session
            .offer(ferry_core::FileMeta::new(&long, Some(1))),
        Err(ferry_core::RequestError::PathTooLong)
    );
}

/// A record travels as one request, the receiver stores it and answers; too large is refused
/// before anything is sent.
#[test]
fn records_round_trip() {
    use ferry_core::wire::{MAX_RECORD_BODY, RecordFormat};
    let mut pair = Pair::simple(MemApp::new(), MemApp::new(), 51);
    pair.drive_until(10_000, |p| p.client.session.is_connected());
    let json = br#"{"name":"ferry","n":[1,2.5,null,true]}"#.to_vec();
    let req = pair
        .client
        .session
        .send_record(RecordFormat::Json, json.clone())
        .unwrap();
    let big = vec![0u8; MAX_RECORD_BODY + 1];
    assert_eq!(
        pair.client.session.send_record(RecordFormat::Postcard, big),
        Err(ferry_core::RequestError::TooLarge)
    );
    pair.drive_until(10_000, |p| !p.client.app.requests_done.is_empty());
    assert_eq!(pair.client.app.requests_done, vec![(req, None)]);
    assert_eq!(pair.server.app.records, vec![(RecordFormat::Json, json)]);
}

/// `has_transmit` answers what an empty-buffer probe of `poll_transmit` used to: true exactly
/// when bytes wait (the harness also checks it before every poll of every pair test).
#[test]
fn has_transmit_says_when_output_waits() {
    use ferry_core::testing::{START, test_psk};
    use ferry_core::{MAX_RECORD, Session};
    let psk = test_psk();
    let mut client = Session::client(&Config::default(), &psk, [1; 32], START);
    let mut server = Session::server(&Config::default(), &psk, [2; 32], START);
    let mut out = vec![0; MAX_RECORD];
    assert!(
        !server.has_transmit(),
        "a server speaks only after the client's message 1"
    );
    assert!(client.has_transmit(), "message 1 is ready at once");
    assert!(
        client.poll_transmit(START, &mut []).is_err(),
        "the probe agrees"
    );
    let n = client.poll_transmit(START, &mut out).unwrap();
    assert!(n > 0 && !client.has_transmit());
    assert_eq!(server.handle_input(START, &mut out[..n]).unwrap(), n);
    assert!(server.has_transmit(), "message 2 waits");
    let n = server.poll_transmit(START, &mut out).unwrap();
    assert!(n > 0 && !server.has_transmit());
    assert_eq!(client.handle_input(START, &mut out[..n]).unwrap(), n);
    assert!(client.has_transmit(), "the client's Start record waits");
    assert!(client.poll_transmit(START, &mut out).unwrap() > 0);
    assert!(!client.has_transmit());
    client.close(START, ferry_core::CloseCode::Done);
    assert!(client.has_transmit(), "the FINAL record waits");
    assert!(client.poll_transmit(START, &mut out).unwrap() > 0);
    assert!(!client.has_transmit(), "nothing after the FINAL record");
    assert_eq!(client.poll_transmit(START, &mut out), Ok(0));
}
