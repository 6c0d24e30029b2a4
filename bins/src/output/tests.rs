use super::*;
use proto::Mtime;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

fn report(outcome: &'static str) -> FileReport {
    FileReport {
        name: "notes.txt".into(),
        bytes: 1_258_291, // 1.2 MiB
        resumed_from: 512 * KIB,
        blake3: "af13".into(),
        seconds: 0.0175,
        outcome,
    }
}

/// Run one output method against in-memory sinks; returns (stdout, stderr).
fn capture(
    out: &Output,
    f: impl FnOnce(&Output, &mut dyn Write, &mut dyn Write) -> io::Result<()>,
) -> (String, String) {
    let (mut o, mut e) = (Vec::new(), Vec::new());
    f(out, &mut o, &mut e).unwrap();
    (String::from_utf8(o).unwrap(), String::from_utf8(e).unwrap())
}

fn human() -> Output {
    Output::with_progress(false, false, false)
}
fn json() -> Output {
    Output::with_progress(true, false, false)
}
fn quiet() -> Output {
    Output::with_progress(false, true, false)
}

#[test]
fn file_done_human() {
    let r = report(FileReport::SENT);
    let (o, e) = capture(&human(), |s, o, e| s.file_done_to(o, e, &r));
    assert_eq!(
        o,
        "sent notes.txt  1.2 MiB in 0.02 s (40 MiB/s), resumed from 512 KiB\n"
    );
    assert_eq!(e, "");

    let r = FileReport {
        resumed_from: 0,
        seconds: 12.25,
        bytes: 3 * 1024 * MIB,
        outcome: FileReport::RECEIVED,
        ..report("")
    };
    let (o, _) = capture(&human(), |s, o, e| s.file_done_to(o, e, &r));
    assert_eq!(o, "received notes.txt  3.0 GiB in 12.2 s (251 MiB/s)\n");

    let r = report(FileReport::UP_TO_DATE);
    let (o, _) = capture(&human(), |s, o, e| s.file_done_to(o, e, &r));
    assert_eq!(o, "up-to-date notes.txt  1.2 MiB\n");

    let r = FileReport {
        bytes: 0,
        resumed_from: 0,
        seconds: 0.0,
        ..report(FileReport::SENT)
    };
    let (o, _) = capture(&human(), |s, o, e| s.file_done_to(o, e, &r));
    assert_eq!(o, "sent notes.txt  0 B in 0.00 s\n");

    // Quiet: nothing. Stdout carries data: the line goes to stderr.
    let r = report(FileReport::RECEIVED);
    assert_eq!(
        capture(&quiet(), |s, o, e| s.file_done_to(o, e, &r)),
        (String::new(), String::new())
    );
    let (o, e) = capture(&human().stdout_is_data(), |s, o, e| {
        s.file_done_to(o, e, &r)
    });
    assert_eq!(o, "");
    assert!(e.starts_with("received notes.txt  1.2 MiB in "), "{e}");
}

#[test]
fn file_done_json() {
    let r = report(FileReport::SENT);
    for out in [json(), Output::with_progress(true, true, false)] {
        let (o, _) = capture(&out.clone().with_transport("udp"), |s, o, e| {
            s.file_done_to(o, e, &r)
        });
        assert!(
            o.ends_with(",\"outcome\":\"sent\",\"transport\":\"udp\"}\n"),
            "{o}"
        );
        let (o, e) = capture(&out, |s, o, e| s.file_done_to(o, e, &r));
        assert_eq!(
            o,
            "{\"event\":\"file\",\"name\":\"notes.txt\",\"bytes\":1258291,\"resumed_from\":524288,\
             \"blake3\":\"af13\",\"seconds\":0.0175,\"outcome\":\"sent\"}\n"
        );
        assert_eq!(e, "");
    }
}

#[test]
fn errors() {
    let (o, e) = capture(&human(), |s, o, e| {
        s.file_failed_to(
            o,
            e,
            "a\nb",
            "exists",
            "the destination exists (use --overwrite)",
        )
    });
    assert_eq!(o, "");
    assert_eq!(
        e,
        "error: a\\nb: the destination exists (use --overwrite)\n"
    );

    let (o, e) = capture(&json(), |s, o, e| {
        s.file_failed_to(o, e, "a\"b", "no_space", "disk full")
    });
    assert_eq!(
        o,
        "{\"event\":\"error\",\"name\":\"a\\\"b\",\"reason\":\"no_space\",\"error\":\"disk full\"}\n"
    );
    assert_eq!(e, "error: a\"b: disk full\n");

    let msg = "authentication failed: the server does not share this key";
    for out in [human(), quiet()] {
        let (o, e) = capture(&out, |s, o, e| s.error_to(o, e, "wrong_key", &msg));
        assert_eq!(o, "");
        assert_eq!(e, format!("error: {msg}\n"));
    }
    let (o, e) = capture(&json(), |s, o, e| s.error_to(o, e, "wrong_key", &msg));
    assert_eq!(
        o,
        format!(
            "{{\"event\":\"error\",\"name\":null,\"reason\":\"wrong_key\",\"error\":\"{msg}\"}}\n"
        )
    );
    assert_eq!(e, format!("error: {msg}\n"));
}

#[test]
fn info_respects_quiet() {
    let (o, e) = capture(&human(), |s, _, e| s.info_to(e, &"hello\x1b[2J"));
    assert_eq!((o.as_str(), e.as_str()), ("", "hello\\u{1b}[2J\n"));
    let (o, e) = capture(&json(), |s, _, e| s.info_to(e, &"hello"));
    assert_eq!((o.as_str(), e.as_str()), ("", "hello\n"));
    let (o, e) = capture(&quiet(), |s, _, e| s.info_to(e, &"hello"));
    assert_eq!((o.as_str(), e.as_str()), ("", ""));
}

#[test]
fn listing() {
    let entry = ListEntry {
        path: "photos/cat.jpg".into(),
        size: 1_234_567,
        mtime: Some(Mtime {
            secs: 1_700_000_000,
            nanos: 5,
        }),
    };
    let (o, e) = capture(&human(), |s, o, _| s.listed_to(o, &entry));
    assert_eq!(o, "     1234567  2023-11-14 22:13:20 UTC  photos/cat.jpg\n");
    assert_eq!(e, "");
    // Listings are the requested data: printed even with -q.
    let (o, _) = capture(&quiet(), |s, o, _| s.listed_to(o, &entry));
    assert_eq!(o, "     1234567  2023-11-14 22:13:20 UTC  photos/cat.jpg\n");
    let (o, _) = capture(&json(), |s, o, _| s.listed_to(o, &entry));
    assert_eq!(
        o,
        "{\"event\":\"entry\",\"name\":\"photos/cat.jpg\",\"bytes\":1234567,\"mtime\":1700000000}\n"
    );

    let entry = ListEntry {
        path: "x\ty".into(),
        size: 0,
        mtime: None,
    };
    let (o, _) = capture(&human(), |s, o, _| s.listed_to(o, &entry));
    assert_eq!(o, "           0  -                        x\\ty\n");
    let (o, _) = capture(&json(), |s, o, _| s.listed_to(o, &entry));
    assert_eq!(
        o,
        "{\"event\":\"entry\",\"name\":\"x\\ty\",\"bytes\":0,\"mtime\":null}\n"
    );
    // Bidirectional and zero-width characters are shown, not obeyed.
    let entry = ListEntry {
        path: "evil\u{202e}hs.txt\u{200b}\u{2066}".into(),
        ..entry
    };
    let (o, _) = capture(&human(), |s, o, _| s.listed_to(o, &entry));
    assert_eq!(
        o,
        "           0  -                        evil\\u{202e}hs.txt\\u{200b}\\u{2066}\n"
    );
    let (o, _) = capture(&json(), |s, o, _| s.listed_to(o, &entry));
    assert!(o.contains("\"evil\\u202ehs.txt\\u200b\\u2066\""), "{o}");
    let (_, e) = capture(&human(), |s, o, e| {
        s.file_failed_to(o, e, "a\u{feff}", "io", "b\u{200f}")
    });
    assert_eq!(e, "error: a\\u{feff}: b\\u{200f}\n");
}

#[test]
fn dates() {
    for (secs, want) in [
        (0, "1970-01-01 00:00:00 UTC"),
        (-1, "1969-12-31 23:59:59 UTC"),
        (951_782_400, "2000-02-29 00:00:00 UTC"),
        (951_868_799, "2000-02-29 23:59:59 UTC"),
        (951_868_800, "2000-03-01 00:00:00 UTC"),
        (1_234_567_890, "2009-02-13 23:31:30 UTC"),
        (1_700_000_000, "2023-11-14 22:13:20 UTC"),
        (1_709_164_800, "2024-02-29 00:00:00 UTC"),
        (2_147_483_647, "2038-01-19 03:14:07 UTC"),
        (4_107_542_400, "2100-03-01 00:00:00 UTC"),
        (253_402_300_799, "9999-12-31 23:59:59 UTC"),
        (-2_208_988_800, "1900-01-01 00:00:00 UTC"),
        (-62_135_596_800, "0001-01-01 00:00:00 UTC"),
    ] {
        assert_eq!(format_utc(secs), want, "{secs}");
    }
    // Extreme values do not panic.
    let _ = format_utc(i64::MIN);
    let _ = format_utc(i64::MAX);
}

#[test]
fn byte_and_time_formats() {
    assert_eq!(format_bytes(0), "0 B");
    assert_eq!(format_bytes(1023), "1023 B");
    assert_eq!(format_bytes(1024), "1.0 KiB");
    assert_eq!(format_bytes(1536), "1.5 KiB");
    assert_eq!(format_bytes(10 * KIB), "10 KiB");
    assert_eq!(format_bytes(512 * KIB), "512 KiB");
    assert_eq!(format_bytes(1024 * KIB - 1), "1.0 MiB");
    assert_eq!(format_bytes(40 * MIB), "40 MiB");
    assert_eq!(format_bytes(u64::MAX), "16 EiB");
    assert_eq!(format_seconds(0.0), "0.00 s");
    assert_eq!(format_seconds(0.034), "0.03 s");
    assert_eq!(format_seconds(9.999), "10.0 s");
    assert_eq!(format_seconds(42.0), "42.0 s");
    assert_eq!(format_seconds(125.0), "2m05s");
    assert_eq!(format_seconds(3725.0), "1h02m05s");
    assert_eq!(format_seconds(f64::NAN), "? s");
}

#[test]
fn progress_disabled_is_a_no_op() {
    let out = human();
    assert!(!out.progress_enabled());
    let p = out.progress_start("x", Some(10));
    p.set_position(3);
    p.advance(5);
    p.finish();
    drop(json().progress_start("y", None));
    // Enabled bars draw to stderr (hidden when it is not a terminal): must not panic.
    let out = Output::with_progress(false, false, true);
    assert!(out.progress_enabled());
    let p = out.progress_start("z", Some(100));
    p.set_position(10);
    p.advance(90);
    out.emit(|_, _| Ok(()));
    p.finish();
    let p = out.progress_start("w", None);
    p.advance(1);
}

#[test]
fn levels() {
    assert_eq!(default_level(0, false), "warn");
    assert_eq!(default_level(1, false), "info");
    assert_eq!(default_level(2, false), "debug");
    assert_eq!(default_level(7, false), "trace");
    assert_eq!(default_level(3, true), "error");
    init_tracing(1, false);
    init_tracing(0, true);
}

#[test]
fn tiny_files_have_no_rate() {
    let r = FileReport {
        bytes: 2,
        resumed_from: 0,
        seconds: 0.79,
        ..report(FileReport::SENT)
    };
    let (o, _) = capture(&human(), |s, o, e| s.file_done_to(o, e, &r));
    assert_eq!(o, "sent notes.txt  2 B in 0.79 s\n");
}
