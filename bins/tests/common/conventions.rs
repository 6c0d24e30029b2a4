//! Issue 21 part 2 through the real binaries: the `--json` contract (every command, checked
//! line by line against `docs/json-schema.json`), the conventions (`ferry`, `--version`,
//! completions, man page, `--help` examples, config file, `NO_COLOR`), keys (`key
//! fingerprint`, `FERRY_KEY_DATA`), and the transfer options (excludes and `.gitignore`,
//! globs in `get`, `ls -h`, `--dry-run`, `--bwlimit`).

use std::io::Read as _;
use std::process::Command;
use std::time::{Duration, Instant};

use super::*;

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

pub fn schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/json-schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("a valid schema")
}

/// Every stdout line of `o` is one JSON object valid against the schema; returns them.
fn valid_lines(v: &jsonschema::Validator, o: &Output, what: &str) -> Vec<serde_json::Value> {
    let text = stdout(o);
    assert!(
        !text.trim().is_empty(),
        "{what}: no JSON at all: {}",
        stderr(o)
    );
    text.lines()
        .map(|l| {
            let value: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: not JSON: {l:?}: {e}"));
            let errors: Vec<String> = v.iter_errors(&value).map(|e| e.to_string()).collect();
            assert!(
                errors.is_empty(),
                "{what}: {l} does not match the schema: {errors:?}"
            );
            value
        })
        .collect()
}

/// The last object is the summary with this exit code, and nothing follows it.
fn summary(lines: &[serde_json::Value], command: &str, code: i32) -> serde_json::Value {
    let last = lines.last().unwrap().clone();
    assert_eq!(last["event"], "summary", "{lines:?}");
    assert_eq!(last["command"], command, "{lines:?}");
    assert_eq!(last["exit_code"], code, "{lines:?}");
    assert_eq!(
        lines.iter().filter(|l| l["event"] == "summary").count(),
        1,
        "{lines:?}"
    );
    last
}

/// A bare command of `bin_name` (no `--key` added), with `vars` set.
fn run(bin_name: &str, cwd: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin(bin_name));
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("FERRY_TRANSPORT");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null()).output().unwrap()
}

/// Every command's `--json` output parses line by line against the schema; errors carry a
/// reason from the vocabulary; an up-to-date file reports `resumed_from` 0; a summary ends
/// every command; usage errors are JSON too; `serve --json` reports each received file.
pub fn json_contract(c: &str, s: &str) {
    let v = schema();
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &["--json", "--print"]);
    let to = server.to();
    let dir = env.dir.path();
    let f = env.write("work/a.bin", &data(7, 100_000));
    let fs = f.to_str().unwrap();

    // send, then again (up to date), then different content (exists).
    let o = client(c, &env, &["send", fs, "--to", &to, "--json"]);
    ok(&o, "send");
    let l = valid_lines(&v, &o, "send");
    assert_eq!(l[0]["outcome"], "sent");
    let sum = summary(&l, "send", 0);
    assert_eq!(
        (sum["files"].clone(), sum["bytes"].clone()),
        (1.into(), 100_000.into())
    );
    let o = client(c, &env, &["send", fs, "--to", &to, "--json"]);
    ok(&o, "send again");
    let l = valid_lines(&v, &o, "send again");
    assert_eq!(l[0]["outcome"], "up-to-date");
    assert_eq!(
        l[0]["resumed_from"], 0,
        "an up-to-date file resumed nothing"
    );
    assert_eq!(summary(&l, "send", 0)["up_to_date"], 1);
    std::fs::write(&f, b"other").unwrap();
    let o = client(c, &env, &["send", fs, "--to", &to, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let l = valid_lines(&v, &o, "send conflict");
    assert_eq!(
        (l[0]["event"].clone(), l[0]["reason"].clone()),
        ("error".into(), "exists".into())
    );
    assert_eq!(summary(&l, "send", 1)["failed"], 1);

    // The server told about the received file, with its hash.
    wait_for(10, "the server's file event", || {
        server
            .stdout
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("\"received\""))
    });
    for line in server.stdout.lock().unwrap().iter() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v.is_valid(&value), "serve: {line}");
    }
    let received: serde_json::Value = serde_json::from_str(
        server
            .stdout
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains("\"received\""))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(received["name"], "a.bin");
    assert_eq!(received["bytes"], 100_000);
    assert_eq!(
        received["blake3"],
        blake3::hash(&data(7, 100_000)).to_hex().as_str()
    );

    // ls, get, record, dry runs.
    let o = client(c, &env, &["ls", "--from", &to, "--json"]);
    let l = valid_lines(&v, &o, "ls");
    assert_eq!(l[0]["name"], "a.bin");
    assert_eq!(summary(&l, "ls", 0)["entries"], 1);
    let o = client(
        c,
        &env,
        &["get", "a.bin", "--from", &to, "--out", "got", "--json"],
    );
    ok(&o, "get");
    summary(&valid_lines(&v, &o, "get"), "get", 0);
    let o = client(
        c,
        &env,
        &["get", "nope", "--from", &to, "--out", "got", "--json"],
    );
    let l = valid_lines(&v, &o, "get missing");
    assert_eq!(l[0]["reason"], "not_found");
    summary(&l, "get", 1);
    let o = client(c, &env, &["record", "k=v", "--to", &to, "--json"]);
    summary(&valid_lines(&v, &o, "record"), "record", 0);
    wait_for(10, "the server's record event", || {
        let lines = server.stdout.lock().unwrap();
        lines.iter().any(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["event"] == "record" && v["record"] == serde_json::json!({"k": "v"})
        })
    });
    for line in server.stdout.lock().unwrap().iter() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v.is_valid(&value), "serve --print: {line}");
    }
    let o = client(c, &env, &["send", fs, "--to", &to, "--json", "--dry-run"]);
    let l = valid_lines(&v, &o, "send --dry-run");
    assert_eq!(l[0]["event"], "plan");
    summary(&l, "send", 0);
    let o = client(
        c,
        &env,
        &["get", "*.bin", "--from", &to, "--json", "--dry-run"],
    );
    let l = valid_lines(&v, &o, "get --dry-run");
    assert_eq!(
        (l[0]["event"].clone(), l[0]["name"].clone()),
        ("plan".into(), "a.bin".into())
    );

    // keygen, key fingerprint, seal, open.
    let k2 = env.path("k2");
    let o = run(
        c,
        dir,
        &["keygen", "--out", k2.to_str().unwrap(), "--json"],
        &[],
    );
    let l = valid_lines(&v, &o, "keygen");
    assert_eq!(l[0]["created"], true);
    summary(&l, "keygen", 0);
    let o = client(c, &env, &["seal", fs, "-o", "sealed", "--json"]);
    summary(&valid_lines(&v, &o, "seal"), "seal", 0);
    let o = client(c, &env, &["open", "sealed", "-o", "opened", "--json"]);
    let l = valid_lines(&v, &o, "open");
    assert_eq!(l[0]["event"], "opened");
    let o = client(c, &env, &["key", "fingerprint", "--json"]);
    summary(&valid_lines(&v, &o, "key fingerprint"), "key", 0);
    let o = client(
        c,
        &env,
        &["serve", "--list-partials", "--root", "root", "--json"],
    );
    summary(&valid_lines(&v, &o, "serve --list-partials"), "serve", 0);

    // daytime.
    let day = Server::daytime(s);
    let o = run(c, dir, &["daytime", &day.to(), "--json"], &[]);
    let l = valid_lines(&v, &o, "daytime");
    assert_eq!(l[0]["event"], "daytime");

    // Errors with reasons: wrong key, nobody listening, usage (as JSON), bad key data.
    let other = Env::new(c);
    let o = client(
        c,
        &other,
        &["ls", "--from", &to, "--retries", "0", "--json"],
    );
    let l = valid_lines(&v, &o, "wrong key");
    assert_eq!(l[0]["reason"], "wrong_key", "{l:?}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = client(
        c,
        &env,
        &[
            "ls",
            "--from",
            &closed.to_string(),
            "--retries",
            "0",
            "--json",
        ],
    );
    let l = valid_lines(&v, &o, "refused");
    assert_eq!(l[0]["reason"], "refused", "{l:?}");
    for args in [
        &["send", fs, "--json"][..],
        &["ls", "--from", "h:0", "--json"],
        &["--json", "frobnicate"],
        &["completions", "bash", "--json"],
    ] {
        let o = run(c, dir, args, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let l = valid_lines(&v, &o, "usage");
        assert_eq!(l[0]["reason"], "usage", "{args:?}: {l:?}");
        assert_eq!(
            summary(&l, l[1]["command"].as_str().unwrap(), 2)["ok"],
            false
        );
        assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
    }
    let o = run(
        c,
        dir,
        &["key", "fingerprint", "--json"],
        &[("FERRY_KEY_DATA", "ferry-psk-v1:AAAA")],
    );
    let l = valid_lines(&v, &o, "bad key data");
    assert_eq!(l[0]["reason"], "bad_key", "{l:?}");
    assert!(stderr(&o).contains("FERRY_KEY_DATA"), "{}", stderr(&o));
}

/// `ferry` is the std runtime; `--version` names the runtime; completions, the man page and
/// `--help` examples are there; `NO_COLOR` turns the log's colours off on a terminal.
pub fn conventions(c: &str, _s: &str) {
    let dir = tempfile::tempdir().unwrap();
    let runtime = c.strip_prefix("ferry-").unwrap_or("std");
    let o = run(c, dir.path(), &["--version"], &[]);
    ok(&o, "--version");
    assert_eq!(
        stdout(&o).trim(),
        format!("{c} {} ({runtime})", env!("CARGO_PKG_VERSION"))
    );
    let o = run("ferry", dir.path(), &["--version"], &[]);
    assert_eq!(
        stdout(&o).trim(),
        format!("ferry {} (std)", env!("CARGO_PKG_VERSION"))
    );
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = run(c, dir.path(), &["completions", shell], &[]);
        ok(&o, shell);
        let text = stdout(&o);
        assert!(
            text.contains(c) && text.contains("fingerprint"),
            "{shell}: {text}"
        );
    }
    let o = run(c, dir.path(), &["man"], &[]);
    ok(&o, "man");
    let man = stdout(&o);
    assert!(man.starts_with(".ie") || man.contains(".TH"), "{man}");
    assert!(man.contains(&format!(".TH {c} 1")), "{man}");
    assert!(
        man.contains("SEND\"") && man.contains("\\-\\-bwlimit"),
        "{man}"
    );
    for args in [
        &["--help"][..],
        &["send", "--help"],
        &["get", "--help"],
        &["ls", "--help"],
    ] {
        let o = run(c, dir.path(), args, &[]);
        ok(&o, "--help");
        assert!(stdout(&o).contains("Examples:"), "{args:?}: {}", stdout(&o));
    }
    // The server's log on a terminal (`script` gives it a pseudo-terminal): coloured, unless
    // NO_COLOR is set.
    let coloured = server_log_on_a_tty(c, None);
    assert!(
        coloured.contains("INFO") && coloured.contains("\x1b["),
        "{coloured:?}"
    );
    let plain = server_log_on_a_tty(c, Some("1"));
    assert!(
        plain.contains("INFO") && !plain.contains("\x1b["),
        "{plain:?}"
    );
}

/// What `serve -v` prints on a pseudo-terminal while one file arrives.
fn server_log_on_a_tty(c: &str, no_color: Option<&str>) -> String {
    let env = Env::new(c);
    let root = env.path("root");
    let line = format!(
        "{} -v serve --listen 127.0.0.1:0 --root {} --key {}",
        bin(c).display(),
        root.display(),
        env.key.display()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR");
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = seen.clone();
    let mut pty = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pty.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut addr = String::new();
    wait_for(10, "serve to listen", || {
        let text = seen.lock().unwrap().clone();
        match text.split("listening on ").nth(1) {
            Some(rest) if rest.contains('\n') => {
                addr = rest.lines().next().unwrap().trim().to_owned();
                true
            }
            _ => false,
        }
    });
    let f = env.write("tty.txt", b"on a terminal");
    ok(
        &client(c, &env, &["send", f.to_str().unwrap(), "--to", &addr]),
        "send",
    );
    wait_for(10, "the server's log line", || {
        seen.lock().unwrap().contains("received")
    });
    let _ = child.kill();
    let _ = child.wait();
    let text = seen.lock().unwrap();
    text.clone()
}

/// `key fingerprint` is the same on both ends (a key file, or its text in `FERRY_KEY_DATA`);
/// `keygen` prints the path and the fingerprint; a client with only `FERRY_KEY_DATA` (no key
/// file anywhere) transfers; `--key` wins over `FERRY_KEY_DATA`.
pub fn keys(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &[]);
    let home = env.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let home_vars = [
        ("HOME", home.to_str().unwrap()),
        ("XDG_CONFIG_HOME", home.to_str().unwrap()),
    ];
    let k = env.path("fresh.key");
    let o = run(
        c,
        env.dir.path(),
        &["keygen", "--out", k.to_str().unwrap()],
        &home_vars,
    );
    ok(&o, "keygen");
    let out = stdout(&o);
    let fp = out
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint "))
        .expect("a fingerprint line");
    assert!(out.contains(k.to_str().unwrap()), "{out}");
    let o = run(
        c,
        env.dir.path(),
        &["key", "fingerprint", "--key", k.to_str().unwrap()],
        &home_vars,
    );
    assert_eq!(stdout(&o).trim(), fp);
    let text = std::fs::read_to_string(&env.key).unwrap();
    let server_fp = stdout(&client(s, &env, &["key", "fingerprint"]))
        .trim()
        .to_owned();
    let mut vars = home_vars.to_vec();
    vars.push(("FERRY_KEY_DATA", text.as_str()));
    let o = run(c, env.dir.path(), &["key", "fingerprint"], &vars);
    assert_eq!(stdout(&o).trim(), server_fp, "{}", stderr(&o));
    let f = env.write("ci.txt", b"from CI");
    let to = server.to();
    let o = run(
        c,
        env.dir.path(),
        &["send", f.to_str().unwrap(), "--to", &to],
        &vars,
    );
    ok(&o, "send with FERRY_KEY_DATA");
    assert_eq!(std::fs::read(env.path("root/ci.txt")).unwrap(), b"from CI");
    // --key wins: the fresh key is not the server's.
    let o = run(
        c,
        env.dir.path(),
        &[
            "ls",
            "--from",
            &to,
            "--retries",
            "0",
            "--key",
            k.to_str().unwrap(),
        ],
        &vars,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // Without either, the default path (none here) is named.
    let o = run(c, env.dir.path(), &["ls", "--from", &to], &home_vars);
    assert!(stderr(&o).contains("key file not found"), "{}", stderr(&o));
}

/// The config file gives defaults (remote, key, retries, excludes); flags override them;
/// `FERRY_CONFIG` names it; a broken one is a usage error naming it.
pub fn config_file(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &[]);
    let cfg = env.path("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "remote = \"{}\"\nkey = \"{}\"\nretries = 0\nexclude = [\"*.tmp\"]\n",
            server.to(),
            env.key.display()
        ),
    )
    .unwrap();
    env.write("d/keep.txt", b"keep");
    env.write("d/skip.tmp", b"skip");
    let vars = [("FERRY_CONFIG", cfg.to_str().unwrap())];
    let o = run(c, env.dir.path(), &["send", "d"], &vars);
    ok(&o, "send with the config's remote and key");
    assert_eq!(tree(&env.path("root")), ["d/keep.txt"]);
    let o = run(c, env.dir.path(), &["ls"], &vars);
    ok(&o, "ls");
    assert!(stdout(&o).contains("d/keep.txt"));
    // A flag overrides the config: --exclude replaces the config's list.
    let o = run(
        c,
        env.dir.path(),
        &["send", "d", "--exclude", "keep*"],
        &vars,
    );
    ok(&o, "send --exclude");
    assert_eq!(tree(&env.path("root")), ["d/keep.txt", "d/skip.tmp"]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = run(
        c,
        env.dir.path(),
        &["ls", "--from", &closed.to_string()],
        &vars,
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "--from wins over the config's remote"
    );
    std::fs::write(&cfg, "remote = 7\n").unwrap();
    let o = run(c, env.dir.path(), &["ls"], &vars);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("config.toml"), "{}", stderr(&o));
    let missing = [("FERRY_CONFIG", "/nonexistent/ferry.toml")];
    let o = run(c, env.dir.path(), &["ls", "--from", "h"], &missing);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/ferry.toml"),
        "{}",
        stderr(&o)
    );
}

/// `--exclude` and `.gitignore` leave files out of directory sends (`--no-gitignore` puts the
/// ignored ones back); `get` expands globs against the listing; `--dry-run` touches nothing;
/// `ls -h` prints binary units and local time.
pub fn transfer_options(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &[]);
    let to = server.to();
    env.write("p/src/main.rs", b"fn main() {}");
    env.write("p/build/out.o", b"obj");
    env.write("p/notes.log", b"log");
    env.write("p/big.bin", &data(3, 3 * 1024 * 1024 / 2));
    env.write("p/.gitignore", b"*.log\n");
    let p = env.path("p");
    let ps = p.to_str().unwrap();
    let o = client(c, &env, &["send", ps, "--to", &to, "--dry-run"]);
    ok(&o, "send --dry-run");
    assert!(
        stdout(&o).contains("would send p/src/main.rs"),
        "{}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains("notes.log"), "{}", stdout(&o));
    assert!(
        tree(&env.path("root")).is_empty(),
        "a dry run sent something"
    );
    let o = client(c, &env, &["send", ps, "--to", &to, "--exclude", "build/"]);
    ok(&o, "send --exclude");
    assert_eq!(
        tree(&env.path("root")),
        ["p/.gitignore", "p/big.bin", "p/src/main.rs"]
    );
    let o = client(
        c,
        &env,
        &[
            "send",
            ps,
            "--to",
            &to,
            "--no-gitignore",
            "--exclude",
            "*.o",
        ],
    );
    ok(&o, "send --no-gitignore");
    assert!(tree(&env.path("root")).contains(&"p/notes.log".to_owned()));

    // get with globs, and a dry run that writes nothing.
    let o = client(
        c,
        &env,
        &["get", "p/*.log", "p/**/*.rs", "--from", &to, "--out", "g"],
    );
    ok(&o, "get globs");
    assert_eq!(tree(&env.path("g")), ["p/notes.log", "p/src/main.rs"]);
    let o = client(
        c,
        &env,
        &["get", "p", "--from", &to, "--out", "dry", "--dry-run"],
    );
    ok(&o, "get --dry-run");
    assert!(
        stdout(&o).contains("would get p/big.bin  1.5 MiB"),
        "{}",
        stdout(&o)
    );
    assert!(!env.path("dry").join("p").exists());
    let o = client(c, &env, &["get", "p/*", "--from", &to, "--out", "-"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("exactly one file"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let o = client(
        c,
        &env,
        &["get", "p/*.rs", "p/src/*.rs", "--from", &to, "--out", "-"],
    );
    assert!(
        stderr(&o).contains("exactly one NAME"),
        "the usage rule counts NAMEs: {}",
        stderr(&o)
    );
    let o = client(c, &env, &["get", "p/src/*.rs", "--from", &to, "--out", "-"]);
    ok(&o, "get a glob matching one file to stdout");
    assert_eq!(o.stdout, b"fn main() {}");
    let o = client(c, &env, &["get", "p/*.zip", "--from", &to, "--out", "g"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("p/*.zip: matches nothing"),
        "{}",
        stderr(&o)
    );

    // ls -h: human sizes, local time (TZ three hours east of UTC).
    let ls = |args: &[&str]| {
        let mut all = vec!["ls", "p/big", "--from", &to[..]];
        all.extend_from_slice(args);
        client_with(
            c,
            &env,
            env.dir.path(),
            &all,
            None,
            &[("TZ", Some("XYZ-3"))],
        )
    };
    let raw = stdout(&ls(&[]));
    let human = stdout(&ls(&["-h"]));
    assert!(raw.contains(" 1572864  ") && raw.contains(" UTC "), "{raw}");
    assert!(
        human.contains("1.5 MiB") && !human.contains("UTC"),
        "{human}"
    );
    let utc_hour: u32 = raw.split_whitespace().nth(2).unwrap()[..2].parse().unwrap();
    let local_hour: u32 = human.split_whitespace().nth(3).unwrap()[..2]
        .parse()
        .unwrap();
    assert_eq!(local_hour, (utc_hour + 3) % 24, "{raw} / {human}");
}

/// `--bwlimit` holds a send to the rate: 512 KiB at 256 KiB/s take well over a second (on
/// loopback it takes milliseconds without the limit).
pub fn bwlimit(c: &str, s: &str) {
    let env = Env::new(c);
    let server = Server::start(s, &env, &env.path("root"), &[]);
    let f = env.write("slow.bin", &data(9, 512 * 1024));
    let started = Instant::now();
    let o = client(
        c,
        &env,
        &[
            "send",
            f.to_str().unwrap(),
            "--to",
            &server.to(),
            "--bwlimit",
            "256K",
            "--compress",
            "off",
        ],
    );
    ok(&o, "send --bwlimit");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1500), "took {took:?}");
    assert_eq!(
        std::fs::read(env.path("root/slow.bin")).unwrap(),
        data(9, 512 * 1024)
    );
}
