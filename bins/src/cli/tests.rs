use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_validated_from(std::iter::once("ferry-std").chain(args.iter().copied()))
}

fn usage_error(args: &[&str]) -> String {
    let e = parse(args).expect_err("expected a usage error");
    assert_eq!(e.exit_code(), EXIT_USAGE, "{e}");
    e.to_string()
}

#[test]
fn clap_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn parse_host_forms() {
    let ok = |s: &str| parse_host(s, DEFAULT_PORT).unwrap();
    let own = |h: &str, p| (h.to_owned(), p);
    assert_eq!(ok("example.org"), own("example.org", 6868));
    assert_eq!(ok("example.org:7000"), own("example.org", 7000));
    assert_eq!(ok("localhost:1"), own("localhost", 1));
    assert_eq!(ok("my_host-2.lan"), own("my_host-2.lan", 6868));
    assert_eq!(ok("127.0.0.1"), own("127.0.0.1", 6868));
    assert_eq!(ok("127.0.0.1:65535"), own("127.0.0.1", 65535));
    assert_eq!(ok("[::1]"), own("::1", 6868));
    assert_eq!(ok("[::1]:6869"), own("::1", 6869));
    assert_eq!(ok("::1"), own("::1", 6868));
    assert_eq!(ok("::"), own("::", 6868));
    assert_eq!(ok("2001:db8::42"), own("2001:db8::42", 6868));
    assert_eq!(ok("[2001:db8::42]:80"), own("2001:db8::42", 80));
    assert_eq!(ok("fe80::1%eth0"), own("fe80::1%eth0", 6868));
    assert_eq!(ok("[fe80::1%eth0]:9"), own("fe80::1%eth0", 9));
    assert_eq!(parse_host("h", 1234).unwrap(), own("h", 1234));
}

#[test]
fn parse_host_rejects() {
    for bad in [
        "",
        ":6868",
        "host:",
        "host:0",
        "host:65536",
        "host:port",
        "host:-1",
        "[::1",
        "[::1]x",
        "[::1]:",
        "[]:80",
        "[example.org]:80",
        "1:2:3",
        "a b",
        "host/path",
        "user@host",
        "::1::2",
        "fe80::1%",
    ] {
        let e = parse_host(bad, DEFAULT_PORT).expect_err(bad);
        assert!(e.starts_with(&format!("invalid host `{bad}`: ")), "{e}");
    }
}

#[test]
fn a_url_is_named_as_such() {
    let e = parse_host("http://127.0.0.1:6868/x", DEFAULT_PORT).unwrap_err();
    assert_eq!(
        e,
        "`http://127.0.0.1:6868/x` is a URL; give HOST[:PORT] instead, e.g. `127.0.0.1:6868` \
         (ferry speaks its own protocol, not HTTP)"
    );
}

#[test]
fn remote_display_round_trips() {
    for s in ["example.org:6868", "127.0.0.1:80", "[::1]:6868"] {
        let r = parse_remote(s).unwrap();
        assert_eq!(r.to_string(), s);
        assert_eq!(parse_remote(&r.to_string()).unwrap(), r);
    }
    assert_eq!(parse_remote("::1").unwrap().to_string(), "[::1]:6868");
}

#[test]
fn listen_forms() {
    assert_eq!(
        parse_listen("127.0.0.1:0").unwrap(),
        "127.0.0.1:0".parse().unwrap()
    );
    assert_eq!(
        parse_listen("[::]:7000").unwrap(),
        "[::]:7000".parse().unwrap()
    );
    assert_eq!(
        parse_listen("0.0.0.0").unwrap(),
        "0.0.0.0:6868".parse().unwrap()
    );
    assert_eq!(parse_listen("::1").unwrap(), "[::1]:6868".parse().unwrap());
    assert_eq!(
        parse_listen("[::1]").unwrap(),
        "[::1]:6868".parse().unwrap()
    );
    assert_eq!(
        DEFAULT_LISTEN.parse::<SocketAddr>().unwrap(),
        parse_listen("::").unwrap()
    );
    assert_eq!(
        DEFAULT_LISTEN_V4.parse::<SocketAddr>().unwrap(),
        parse_listen("0.0.0.0").unwrap()
    );
    assert!(parse_listen("localhost:80").is_err());
    assert!(parse_listen("127.0.0.1:99999").is_err());
}

#[test]
fn compress_maps_to_core() {
    assert_eq!(
        proto::Compression::from(Compress::Auto),
        proto::Compression::Auto
    );
    assert_eq!(
        proto::Compression::from(Compress::On),
        proto::Compression::On
    );
    assert_eq!(
        proto::Compression::from(Compress::Off),
        proto::Compression::Off
    );
}

#[test]
fn defaults() {
    let cli = parse(&["serve"]).unwrap();
    assert_eq!(cli.verbose, 0);
    assert!(!cli.quiet && !cli.json);
    let Command::Serve(s) = cli.command else {
        panic!()
    };
    assert_eq!(s.listen, None);
    assert_eq!(s.root, PathBuf::from("./ferry-inbox"));
    assert_eq!(s.max_connections, 256);
    assert_eq!(s.compress, Compress::Auto);

    let Command::Send(s) = parse(&["send", "a", "--to", "h"]).unwrap().command else {
        panic!()
    };
    assert_eq!(s.paths, [PathBuf::from("a")]);
    assert_eq!(
        s.to,
        Some(Remote {
            host: "h".into(),
            port: 6868
        })
    );
    assert_eq!(s.as_name, None);
    assert_eq!(s.compress, Compress::Auto);
    assert!(!s.overwrite);
    assert_eq!(s.retries, 3);

    let Command::Get(g) = parse(&["get", "n", "--from", "h:1"]).unwrap().command else {
        panic!()
    };
    assert_eq!(g.out, PathBuf::from("."));
    assert!(!g.out_is_stdout());
    assert_eq!(g.retries, 3);

    let Command::Ls(l) = parse(&["ls", "--from", "[::1]"]).unwrap().command else {
        panic!()
    };
    assert_eq!(l.prefix, None);
    assert_eq!(l.from.host, "::1");

    let Command::Keygen(k) = parse(&["keygen"]).unwrap().command else {
        panic!()
    };
    assert_eq!(k.out, None);
    assert!(!k.force);
}

#[test]
fn everything_given() {
    let cli = parse(&[
        "-vv",
        "--json",
        "--key",
        "/k",
        "send",
        "a",
        "dir",
        "--to",
        "example.org:7000",
        "--compress",
        "off",
        "--overwrite",
        "--retries",
        "0",
    ])
    .unwrap();
    assert_eq!(cli.verbose, 2);
    assert!(cli.json);
    assert_eq!(cli.key, Some(PathBuf::from("/k")));
    let Command::Send(s) = cli.command else {
        panic!()
    };
    assert_eq!(s.paths, [PathBuf::from("a"), PathBuf::from("dir")]);
    assert_eq!(s.to.unwrap().to_string(), "example.org:7000");
    assert_eq!(s.compress, Compress::Off);
    assert!(s.overwrite);
    assert_eq!(s.retries, 0);

    // Global flags also after the subcommand.
    let cli = parse(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--root",
        "/srv",
        "--max-connections",
        "8",
        "--compress",
        "on",
        "-q",
        "--key",
        "k",
    ])
    .unwrap();
    assert!(cli.quiet);
    assert_eq!(cli.key, Some(PathBuf::from("k")));
    let Command::Serve(s) = cli.command else {
        panic!()
    };
    assert_eq!(s.listen, Some("127.0.0.1:0".parse().unwrap()));
    assert_eq!(s.root, PathBuf::from("/srv"));
    assert_eq!(s.max_connections, 8);
    assert_eq!(s.compress, Compress::On);

    let cli = parse(&["keygen", "--out", "/tmp/k", "--force"]).unwrap();
    let Command::Keygen(k) = cli.command else {
        panic!()
    };
    assert_eq!(k.out, Some(PathBuf::from("/tmp/k")));
    assert!(k.force);

    let cli = parse(&[
        "get",
        "a",
        "b/c",
        "--from",
        "h",
        "--out",
        "/dl",
        "--retries",
        "9",
    ])
    .unwrap();
    let Command::Get(g) = cli.command else {
        panic!()
    };
    assert_eq!(g.names, ["a", "b/c"]);
    assert_eq!(g.out, PathBuf::from("/dl"));
    assert_eq!(g.retries, 9);

    let cli = parse(&["ls", "photos/", "--from", "h"]).unwrap();
    let Command::Ls(l) = cli.command else {
        panic!()
    };
    assert_eq!(l.prefix.as_deref(), Some("photos/"));
}

#[test]
fn transport_flags() {
    for cmd in [
        &["send", "a", "--to", "h"][..],
        &["get", "n", "--from", "h"],
        &["ls", "--from", "h"],
        &["record", "k=v", "--to", "h"],
    ] {
        let cli = parse(cmd).unwrap();
        let t = *cli.command.transport().unwrap();
        assert!(!t.udp, "{cmd:?}");
        assert_eq!(t.cc, Cc::Cubic);
        let mut with: Vec<&str> = cmd.to_vec();
        with.extend(["--udp", "--cc", "bbr"]);
        let cli = parse(&with).unwrap();
        let t = *cli.command.transport().unwrap();
        assert!(t.udp && t.use_udp() == Ok(true), "{with:?}");
        assert_eq!(t.cc, Cc::Bbr);
    }
    assert!(parse(&["keygen"]).unwrap().command.transport().is_none());
    let Command::Serve(s) = parse(&["serve", "--no-udp", "--cc", "newreno"])
        .unwrap()
        .command
    else {
        panic!()
    };
    assert!(s.no_udp);
    assert_eq!(
        proto::dgram::CongestionControl::from(s.cc),
        proto::dgram::CongestionControl::NewReno
    );
    assert!(
        !parse(&["serve"])
            .map(|c| matches!(c.command, Command::Serve(s) if s.no_udp))
            .unwrap()
    );
    for bad in [
        &["send", "a", "--to", "h", "--cc", "vegas"][..],
        &["keygen", "--udp"],
        &["serve", "--udp"],
    ] {
        assert_eq!(parse(bad).unwrap_err().exit_code(), EXIT_USAGE, "{bad:?}");
    }
}

#[test]
fn parse_errors_exit_2() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["send", "a"],
        &["send", "--to", "h"],
        &["send", "a", "--to", "h:0"],
        &["send", "a", "--to", "h", "--compress", "maybe"],
        &["send", "a", "--to", "h", "--retries", "-1"],
        &["get", "--from", "h"],
        &["get", "n"],
        &["ls"],
        &["ls", "--from", "bad host"],
        &["serve", "--max-connections", "0"],
        &["serve", "--listen", "nowhere"],
        &["-v", "-q", "serve"],
        &["keygen", "extra"],
    ] {
        let e = parse(args).expect_err(&format!("{args:?}"));
        assert_eq!(e.exit_code(), EXIT_USAGE, "{args:?}: {e}");
    }
    assert_eq!(parse(&["--help"]).unwrap_err().exit_code(), 0);
    assert_eq!(parse(&["--version"]).unwrap_err().exit_code(), 0);
}

#[test]
fn validation_rules() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let e = usage_error(&["send", "a", "b", "--to", "h", "--as", "x"]);
    assert!(
        e.contains("--as NAME needs exactly one PATH (a file or -), got 2"),
        "{e}"
    );
    assert!(e.contains("Usage: ferry-std send"), "{e}");
    let e = usage_error(&["send", d, "--to", "h", "--as", "x"]);
    assert!(e.contains("is a directory"), "{e}");
    let e = usage_error(&["send", "-", "--to", "h"]);
    assert!(
        e.contains("sending standard input (-) needs --as NAME"),
        "{e}"
    );
    let e = usage_error(&["send", "a", "-", "--to", "h"]);
    assert!(e.contains("needs --as NAME"), "{e}");
    let e = usage_error(&["send", "-", "--to", "h", "--as", ""]);
    assert!(e.contains("must not be empty"), "{e}");
    let e = usage_error(&["get", "a", "b", "--from", "h", "--out", "-"]);
    assert!(
        e.contains("--out - (standard output) takes exactly one NAME, got 2"),
        "{e}"
    );
    let e = usage_error(&["--json", "get", "a", "--from", "h", "--out", "-"]);
    assert!(e.contains("--json cannot be combined with --out -"), "{e}");

    parse(&["send", "-", "--to", "h", "--as", "x"]).unwrap();
    parse(&["send", "missing-file", "--to", "h", "--as", "x"]).unwrap();
    parse(&["send", "a", "b", d, "--to", "h"]).unwrap();
    let cli = parse(&["get", "a", "--from", "h", "--out", "-"]).unwrap();
    let Command::Get(g) = &cli.command else {
        panic!()
    };
    assert!(g.out_is_stdout());
    assert_eq!(validate(&cli), Ok(()));
}

#[test]
fn ls_h_is_human_and_help_stays_long() {
    let cli = parse(&["ls", "-h", "--from", "h"]).unwrap();
    assert!(matches!(
        cli.command,
        Command::Ls(LsArgs { human: true, .. })
    ));
    let e = parse(&["ls", "--help"]).expect_err("help");
    assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
    assert!(e.to_string().contains("Examples:"));
}

#[test]
fn command_for_names_the_binary_and_runtime() {
    let cmd = command_for("mio", Some(std::ffi::OsStr::new("/usr/bin/ferry-mio")));
    assert_eq!(cmd.get_name(), "ferry-mio");
    assert_eq!(
        cmd.get_version(),
        Some(concat!(env!("CARGO_PKG_VERSION"), " (mio)"))
    );
    let cmd = command_for("std", None);
    assert_eq!(cmd.get_name(), "ferry");
}

#[test]
fn send_options_parse() {
    let cli = parse(&[
        "send",
        "d",
        "--to",
        "h",
        "--exclude",
        "*.o",
        "--exclude",
        "t/",
        "--bwlimit",
        "1M",
        "-n",
        "--no-gitignore",
    ])
    .unwrap();
    let Command::Send(a) = cli.command else {
        panic!("not send")
    };
    assert_eq!(a.options.exclude, ["*.o", "t/"]);
    assert_eq!(a.options.bwlimit, Some(1 << 20));
    assert!(a.options.dry_run && a.options.no_gitignore);
    assert!(usage_error(&["send", "d", "--to", "h", "--bwlimit", "fast"]).contains("rate"));
}
