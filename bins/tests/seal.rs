//! `seal` and `open` end to end (the same code in every binary; run with ferry-std).

mod common;

use std::process::Output;

use common::*;

const B: &str = "ferry-std";

fn run(env: &Env, args: &[&str], passphrase: Option<&str>, stdin: Option<&[u8]>) -> Output {
    let vars = [("FERRY_PASSPHRASE", passphrase)];
    client_with(B, env, env.dir.path(), args, stdin, &vars)
}

fn ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what}: {}", stderr(o));
}

#[test]
fn round_trips_with_key_file_and_passphrase() {
    let env = Env::new(B);
    // Empty, one byte, one chunk, exact multiple of the chunk, several MiB, compressible.
    let sizes = [0usize, 1, 16 * 1024, 4 * 16 * 1024, 3 << 20];
    for (i, &n) in sizes.iter().enumerate() {
        let plain = env.write(&format!("p{i}"), &data(i as u64, n));
        for (mode, pass) in [("key", None), ("pass", Some("correct horse"))] {
            for compress in [false, true] {
                let sealed = format!("s{i}-{mode}-{compress}.fsealed");
                let mut args = vec!["seal", plain.to_str().unwrap(), "-o", &sealed];
                if pass.is_some() {
                    args.push("--passphrase");
                }
                if compress {
                    args.push("--compress");
                }
                ok(&run(&env, &args, pass, None), "seal");
                let back = format!("b{i}-{mode}-{compress}");
                ok(
                    &run(&env, &["open", &sealed, "-o", &back], pass, None),
                    "open",
                );
                assert!(
                    std::fs::read(env.path(&back)).unwrap() == data(i as u64, n),
                    "{back}"
                );
                let raw = std::fs::read(env.path(&sealed)).unwrap();
                assert!(raw.starts_with(b"ferry-sealed/v1\n"));
                if n > 64 && !compress {
                    // A few 32-byte pieces of the plaintext must not appear in the sealed file.
                    let plain = data(i as u64, n);
                    for at in [0, n / 2, n - 32] {
                        let piece = &plain[at..at + 32];
                        assert!(
                            !raw.windows(32).any(|w| w == piece),
                            "plaintext visible at {at}"
                        );
                    }
                }
            }
        }
    }
    // Standard input and output.
    let text = b"through the pipes ".repeat(5000);
    let o = run(&env, &["seal", "-", "-o", "-"], None, Some(&text));
    ok(&o, "seal stdin->stdout");
    let o = run(&env, &["open", "-", "-o", "-"], None, Some(&o.stdout));
    ok(&o, "open stdin->stdout");
    assert!(o.stdout == text);
}

#[test]
fn tampering_and_wrong_keys_write_nothing() {
    let env = Env::new(B);
    let plain = env.write("plain", &data(9, 40_000));
    ok(
        &run(
            &env,
            &["seal", plain.to_str().unwrap(), "-o", "f.sealed"],
            None,
            None,
        ),
        "seal",
    );
    let sealed = std::fs::read(env.path("f.sealed")).unwrap();
    let cases: Vec<(String, Vec<u8>, &str)> = vec![
        (
            "truncated".into(),
            sealed[..sealed.len() - 1].to_vec(),
            "corrupt",
        ),
        (
            "cut at a chunk".into(),
            sealed[..18 + 56 + 16400].to_vec(),
            "truncated",
        ),
        ("header only".into(), sealed[..18].to_vec(), "truncated"),
        (
            "flipped tag".into(),
            {
                let mut s = sealed.clone();
                let n = s.len();
                s[n - 1] ^= 1;
                s
            },
            "tampered",
        ),
        (
            "flipped body".into(),
            {
                let mut s = sealed.clone();
                s[18 + 56 + 5] ^= 4;
                s
            },
            "tampered",
        ),
        (
            "flipped header".into(),
            {
                let mut s = sealed.clone();
                s[17] ^= 1;
                s
            },
            "",
        ),
        (
            "appended".into(),
            {
                let mut s = sealed.clone();
                s.extend_from_slice(b"extra");
                s
            },
            "",
        ),
        (
            "not sealed".into(),
            b"hello".to_vec(),
            "not a ferry sealed file",
        ),
    ];
    for (name, bytes, msg) in cases {
        std::fs::write(env.path("bad.sealed"), &bytes).unwrap();
        let o = run(&env, &["open", "bad.sealed", "-o", "out"], None, None);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(msg), "{name}: {}", stderr(&o));
        assert!(!env.path("out").exists(), "{name}: plaintext was written");
        let leftovers: Vec<_> = tree(env.dir.path())
            .into_iter()
            .filter(|p| p.contains("ferry-tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{name}: {leftovers:?}");
    }
    // Every single-bit flip of a small sealed file is refused (a sample of positions in debug).
    ok(
        &run(
            &env,
            &["seal", plain.to_str().unwrap(), "-o", "g.sealed", "--force"],
            None,
            None,
        ),
        "seal",
    );
    let g = std::fs::read(env.path("g.sealed")).unwrap();
    for pos in (0..g.len()).step_by(997) {
        let mut b = g.clone();
        b[pos] ^= 0x10;
        std::fs::write(env.path("bad.sealed"), &b).unwrap();
        let o = run(&env, &["open", "bad.sealed", "-o", "out"], None, None);
        assert_eq!(o.status.code(), Some(1), "flip at {pos}");
        assert!(!env.path("out").exists());
    }
    // Another key file, a wrong passphrase.
    let other = Env::new(B);
    std::fs::copy(env.path("f.sealed"), other.path("f.sealed")).unwrap();
    let o = run(&other, &["open", "f.sealed", "-o", "out"], None, None);
    assert!(stderr(&o).contains("wrong key"), "{}", stderr(&o));
    assert!(!other.path("out").exists());
    ok(
        &run(
            &env,
            &[
                "seal",
                plain.to_str().unwrap(),
                "-o",
                "p.sealed",
                "--passphrase",
            ],
            Some("right"),
            None,
        ),
        "seal",
    );
    let o = run(
        &env,
        &["open", "p.sealed", "-o", "out"],
        Some("wrong"),
        None,
    );
    assert!(
        stderr(&o).contains("wrong key or passphrase"),
        "{}",
        stderr(&o)
    );
    assert!(!env.path("out").exists());
    // An existing destination is kept unless --force.
    std::fs::write(env.path("out"), b"keep me").unwrap();
    let o = run(&env, &["open", "f.sealed", "-o", "out"], None, None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read(env.path("out")).unwrap(), b"keep me");
    ok(
        &run(
            &env,
            &["open", "f.sealed", "-o", "out", "--force"],
            None,
            None,
        ),
        "open --force",
    );
    assert!(std::fs::read(env.path("out")).unwrap() == data(9, 40_000));
}

#[test]
fn serve_store_sealed_round_trip() {
    let env = Env::new(B);
    let root = env.path("root");
    let server = Server::start(B, &env, &root, &["--store-sealed"]);
    let a = env.write("work/a.bin", &data(11, 100_000));
    let b = env.write("work/empty", b"");
    let to = server.to();
    for f in [&a, &b] {
        let o = client(B, &env, &["send", f.to_str().unwrap(), "--to", &to]);
        ok(&o, "send to a sealing server");
    }
    // At rest: sealed files, no plaintext, nothing else left behind.
    let raw = std::fs::read(root.join("a.bin")).unwrap();
    assert!(raw.starts_with(b"ferry-sealed/v1\n"));
    let plain = data(11, 100_000);
    assert!(!raw.windows(32).any(|w| w == &plain[5000..5032]));
    assert_eq!(tree(&root), vec!["a.bin", "empty"]);
    // ls shows plaintext sizes, get returns plaintext, the same content is up to date.
    let o = client(B, &env, &["ls", "--from", &to]);
    ok(&o, "ls");
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.ends_with("a.bin") && l.contains(" 100000 ")),
        "{}",
        stdout(&o)
    );
    let back = env.path("back");
    std::fs::create_dir_all(&back).unwrap();
    let o = client(
        B,
        &env,
        &[
            "get",
            "a.bin",
            "empty",
            "--from",
            &to,
            "--out",
            back.to_str().unwrap(),
        ],
    );
    ok(&o, "get");
    assert!(std::fs::read(back.join("a.bin")).unwrap() == plain);
    assert_eq!(std::fs::read(back.join("empty")).unwrap(), b"");
    let o = client(
        B,
        &env,
        &["send", a.to_str().unwrap(), "--to", &to, "--json"],
    );
    ok(&o, "resend");
    assert_eq!(json_lines(&o)[0]["outcome"], "up-to-date");
    // The server's own key opens its files with `open`.
    std::fs::copy(root.join("a.bin"), env.path("copy.sealed")).unwrap();
    let o = run(&env, &["open", "copy.sealed", "-o", "opened"], None, None);
    ok(&o, "open a stored file");
    assert!(std::fs::read(env.path("opened")).unwrap() == plain);
}

/// A passphrase file header (magic, Argon2id mode, stored) asking for `m` KiB, `t` passes and
/// `p` lanes, with a fixed salt.
fn argon2_header(m: u32, t: u32, p: u32) -> Vec<u8> {
    let mut b = b"ferry-sealed/v1\n\x02\x00".to_vec();
    for w in [m, t, p] {
        b.extend_from_slice(&w.to_be_bytes());
    }
    b.extend_from_slice(&[7; 16]);
    b
}

/// The header is not authenticated before Argon2id has run: a crafted one asking for 4 GiB and
/// 64 passes is refused at once with a clear message, before the passphrase is read or any
/// memory is taken; nothing is written.
#[test]
fn open_refuses_an_argon2_cost_above_the_limit() {
    let env = Env::new(B);
    let mut hostile = argon2_header(4 << 20, 64, 4);
    hostile.extend_from_slice(&[0; 200]);
    std::fs::write(env.path("hostile.sealed"), &hostile).unwrap();
    let started = std::time::Instant::now();
    let o = run(
        &env,
        &["open", "hostile.sealed", "-o", "out"],
        Some("pass"),
        None,
    );
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("asks Argon2id for 4096 MiB, 64 passes") && e.contains("--max-argon2-mib"),
        "{e}"
    );
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    assert!(!env.path("out").exists());
    // Without a passphrase at hand the refusal comes first too (no prompt).
    let o = run(&env, &["open", "hostile.sealed", "-o", "out"], None, None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("asks Argon2id"), "{}", stderr(&o));
}

/// `--max-argon2-mib` and `--max-argon2-passes` move the limit: ferry's own 64 MiB file is
/// refused under a 32 MiB limit and opens at 64; a genuine file sealed with 9 passes (over the
/// default 8) opens only with `--max-argon2-passes 9`.
#[test]
fn open_argon2_limit_flags_override_the_default() {
    use proto::seal::{Argon2Params, FileHeader, KeySource, PlaintextCodec, SealKey};
    let env = Env::new(B);
    let pass = "correct horse";
    let plain = env.write("plain", &data(3, 50_000));
    let args = ["seal", plain.to_str().unwrap(), "-o", "std.sealed"];
    ok(
        &run(
            &env,
            &[&args[..], &["--passphrase"]].concat(),
            Some(pass),
            None,
        ),
        "seal",
    );
    let o = run(
        &env,
        &["open", "std.sealed", "-o", "a", "--max-argon2-mib", "32"],
        Some(pass),
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("asks Argon2id for 64 MiB"),
        "{}",
        stderr(&o)
    );
    assert!(!env.path("a").exists());
    let o = run(
        &env,
        &["open", "std.sealed", "-o", "a", "--max-argon2-mib", "64"],
        Some(pass),
        None,
    );
    ok(&o, "open at 64 MiB");
    assert!(std::fs::read(env.path("a")).unwrap() == data(3, 50_000));

    // A legitimately sealed file with 8 MiB, 9 passes, 1 lane.
    let params = Argon2Params::new(8 * 1024, 9, 1, [5; 16]).unwrap();
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(8 * 1024, 9, 1, Some(32)).unwrap(),
    );
    let mut key = [0u8; 32];
    argon
        .hash_password_into(pass.as_bytes(), params.salt(), &mut key)
        .unwrap();
    let header = FileHeader {
        key: KeySource::Argon2id(params),
        codec: PlaintextCodec::Stored,
    };
    let mut sealed = Vec::new();
    ferry_disk::sealed::seal_with_header(
        &mut &data(4, 30_000)[..],
        &mut sealed,
        &SealKey::new(&key),
        &header,
    )
    .unwrap();
    assert!(sealed.starts_with(&argon2_header(8 * 1024, 9, 1)[..30]));
    std::fs::write(env.path("slow.sealed"), &sealed).unwrap();
    let o = run(&env, &["open", "slow.sealed", "-o", "b"], Some(pass), None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("9 passes"), "{}", stderr(&o));
    assert!(!env.path("b").exists());
    let o = run(
        &env,
        &["open", "slow.sealed", "-o", "b", "--max-argon2-passes", "9"],
        Some(pass),
        None,
    );
    ok(&o, "open with --max-argon2-passes 9");
    assert!(std::fs::read(env.path("b")).unwrap() == data(4, 30_000));
}
