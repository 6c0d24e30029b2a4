//! Unit tests of the parent module.

use std::fs::Permissions;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::sync::Arc;

use super::incoming::Sidecar;
use super::names::{Names, PARTIAL, aux_name};
use super::test_support::*;
use super::*;
use crate::path::MAX_COMPONENT_LEN;

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// Whether this process ignores file permissions (root, or CAP_DAC_OVERRIDE): then
/// permission failures cannot be provoked.
fn permissions_are_bypassed(tmp: &Path) -> bool {
    let dir = tmp.join("probe");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, Permissions::from_mode(0o500)).unwrap();
    let bypassed = File::create(dir.join("x")).is_ok();
    fs::set_permissions(&dir, Permissions::from_mode(0o700)).unwrap();
    fs::remove_dir_all(&dir).unwrap();
    bypassed
}

#[test]
fn fresh_receive_publishes_content_mode_and_mtime() {
    let (_tmp, store) = store();
    let data = b"hello, ferry";
    let mut f = accepted(store.receive(&offer("a/b/c.txt", data)));
    assert!(f.prefix().is_empty());
    f.write_at(0, &data[..5]).unwrap();
    f.write_at(5, &data[5..]).unwrap();
    f.commit(data.len() as u64).unwrap();

    let dest = store.root().join("a/b/c.txt");
    assert_eq!(fs::read(&dest).unwrap(), data);
    assert_eq!(mode(&dest), 0o640);
    let md = fs::metadata(&dest).unwrap();
    assert_eq!(mtime_of(&md), Some(MTIME));
    assert_eq!(tree(store.root()), ["a", "a/b", "a/b/c.txt"]);
}

#[test]
fn mode_is_masked_and_keeps_owner_rw() {
    let (_tmp, store) = store();
    // Never writable by others, then masked by the umask.
    let umask = partial::umask();
    for (i, (offered, want)) in [
        (Some(0o755), 0o755 & !umask | 0o600),
        (Some(0o4755), 0o755 & !umask | 0o600),
        (Some(0o7777), 0o775 & !umask | 0o600),
        (Some(0o000), 0o600),
        (Some(0o444), 0o444 & !umask | 0o600),
        (None, DEFAULT_MODE & !umask | 0o600),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("f{i}");
        let mut meta = offer(&name, b"x");
        meta.mode = offered;
        put(&store, &meta, b"x").unwrap();
        assert_eq!(mode(&store.root().join(&name)), want, "{offered:?}");
    }
}

#[test]
fn mtime_conversion() {
    for m in [
        MTIME,
        Mtime { secs: 0, nanos: 0 },
        Mtime {
            secs: -1,
            nanos: 500_000_000,
        },
        Mtime {
            secs: -86_400,
            nanos: 0,
        },
    ] {
        let t = system_time(m).unwrap();
        let back = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        assert_eq!(
            back,
            i128::from(m.secs) * 1_000_000_000 + i128::from(m.nanos),
            "{m:?}"
        );
    }
    assert_eq!(
        system_time(Mtime {
            secs: 0,
            nanos: 1_000_000_000
        }),
        None
    );

    // Times the filesystem cannot hold do not fail the commit.
    let (_tmp, store) = store();
    for (i, secs) in [i64::MAX, i64::MIN, 1 << 40].into_iter().enumerate() {
        let mut meta = offer(&format!("f{i}"), b"x");
        meta.mtime = Some(Mtime { secs, nanos: 5 });
        put(&store, &meta, b"x").unwrap_or_else(|p| panic!("{secs}: {p}"));
    }

    // Before the epoch, through a real file.
    let mut meta = offer("old", b"x");
    meta.mtime = Some(Mtime {
        secs: -1,
        nanos: 250,
    });
    put(&store, &meta, b"x").unwrap();
    let md = fs::metadata(store.root().join("old")).unwrap();
    assert_eq!(mtime_of(&md), meta.mtime);
}

#[test]
fn same_content_with_hash_is_up_to_date() {
    let (_tmp, store) = store();
    let data = vec![7u8; 3 * HASH_BUF + 17]; // several hashing reads
    put(&store, &offer("f", &data), &data).unwrap();
    let p = refused(store.receive(&offer("f", &data)));
    assert_eq!(p.reason, Reason::UpToDate);
    // Even with --overwrite: nothing to do.
    let mut meta = offer("f", &data);
    meta.overwrite = true;
    assert_eq!(refused(store.receive(&meta)).reason, Reason::UpToDate);
    assert_eq!(tree(store.root()), ["f"], "nothing left behind");
}

#[test]
fn different_or_unknown_content_exists_without_overwrite() {
    let (_tmp, store) = store();
    put(&store, &offer("f", b"old"), b"old").unwrap();
    let p = refused(store.receive(&offer("f", b"new")));
    assert_eq!(p.reason, Reason::Exists);
    assert!(p.detail.contains("--overwrite"), "{}", p.detail);
    // Same size, different content: hashed, still different.
    assert_eq!(
        refused(store.receive(&offer("f", b"odd"))).reason,
        Reason::Exists
    );
    // No hash: cannot tell, so it exists.
    let mut meta = offer("f", b"old");
    meta.hash = None;
    let p = refused(store.receive(&meta));
    assert_eq!(p.reason, Reason::Exists);
    assert!(p.detail.contains("--overwrite"), "{}", p.detail);
    assert_eq!(fs::read(store.root().join("f")).unwrap(), b"old");
    assert_eq!(tree(store.root()), ["f"]);
}

#[test]
fn overwrite_replaces() {
    let (_tmp, store) = store();
    put(&store, &offer("f", b"old content"), b"old content").unwrap();
    let mut meta = offer("f", b"new");
    meta.overwrite = true;
    meta.mode = Some(0o600);
    put(&store, &meta, b"new").unwrap();
    assert_eq!(fs::read(store.root().join("f")).unwrap(), b"new");
    assert_eq!(mode(&store.root().join("f")), 0o600);
    assert_eq!(tree(store.root()), ["f"]);
}

#[test]
fn resume_after_suspend() {
    let (_tmp, store) = store();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let meta = offer("d/big", &data);
    let mut f = accepted(store.receive(&meta));
    f.write_at(0, &data[..40_000]).unwrap();
    f.suspend();
    assert_eq!(
        tree(store.root()),
        ["d", "d/.ferry-info.big", "d/.ferry-part.big"]
    );

    let mut f = accepted(store.receive(&meta));
    let prefix = f.prefix();
    assert_eq!(prefix.len(), 40_000);
    assert_eq!(prefix.finalize(), proto::hash(&data[..40_000]));
    f.write_at(40_000, &data[40_000..]).unwrap();
    f.commit(data.len() as u64).unwrap();
    assert_eq!(fs::read(store.root().join("d/big")).unwrap(), data);
    assert_eq!(tree(store.root()), ["d", "d/big"]);
}

#[test]
fn dropped_transfer_is_still_resumable() {
    // A crash (here: a drop without suspend) keeps the sidecar written at creation.
    let (_tmp, store) = store();
    let data = b"0123456789";
    let mut f = accepted(store.receive(&offer("f", data)));
    f.write_at(0, &data[..4]).unwrap();
    drop(f);
    let f = accepted(store.receive(&offer("f", data)));
    assert_eq!(f.prefix().len(), 4);
}

#[test]
fn changed_offer_does_not_resume() {
    let data = b"0123456789";
    type Change = fn(&mut FileMeta, &Names);
    let cases: &[(&str, Change)] = &[
        ("size", |m, _| m.size = Some(11)),
        ("mtime", |m, _| m.mtime = Some(Mtime { secs: 1, nanos: 0 })),
        ("no mtime", |m, _| m.mtime = None),
        ("hash", |m, _| m.hash = Some([0; 32])),
        ("no hash", |m, _| m.hash = None),
        ("unknown size", |m, _| m.size = None),
        ("sidecar lost", |_, n| fs::remove_file(n.sidecar()).unwrap()),
        ("sidecar garbled", |_, n| {
            fs::write(n.sidecar(), b"{not json").unwrap()
        }),
        ("partial longer than the file", |_, n| {
            fs::write(&n.partial, b"0123456789ab").unwrap();
        }),
    ];
    for (what, change) in cases {
        let (_tmp, store) = store();
        let mut meta = offer("f", data);
        let mut f = accepted(store.receive(&meta));
        f.write_at(0, &data[..6]).unwrap();
        f.suspend();
        change(
            &mut meta,
            &Names::new(store.root().join("f"), "f", store.shared.anchor.clone()),
        );
        let mut f = accepted(store.receive(&meta));
        assert!(f.prefix().is_empty(), "{what}: resumed");
        let partial = store.root().join(".ferry-part.f");
        assert_eq!(
            fs::metadata(&partial).map_or(0, |m| m.len()),
            0,
            "{what}: not dropped"
        );
        // And the fresh transfer still works.
        f.write_at(0, data).unwrap();
        f.commit(data.len() as u64).unwrap();
        assert_eq!(fs::read(store.root().join("f")).unwrap(), data, "{what}");
    }
}

#[test]
fn restart_at_zero_after_a_prefix() {
    let (_tmp, store) = store();
    let old = b"AAAAAAAAAAAAAAAAAAAA"; // 20 bytes held
    let new = b"bbbbbbbbbbbbbbbbbbbb";
    let meta = offer("f", new);
    let mut f = accepted(store.receive(&meta));
    f.write_at(0, old).unwrap();
    f.suspend();
    let mut f = accepted(store.receive(&meta));
    assert_eq!(f.prefix().len(), 20);
    // The sender's prefix differed: it starts over, and is interrupted halfway.
    f.write_at(0, &new[..8]).unwrap();
    f.suspend();
    let mut f = accepted(store.receive(&meta));
    assert_eq!(f.prefix().len(), 8, "only the new bytes are held");
    assert_eq!(f.prefix().finalize(), proto::hash(&new[..8]));
    // Another restart, this time to the end.
    f.write_at(0, &new[..10]).unwrap();
    f.write_at(10, &new[10..]).unwrap();
    f.commit(new.len() as u64).unwrap();
    assert_eq!(fs::read(store.root().join("f")).unwrap(), new);
}

#[test]
fn commit_truncates_to_size() {
    let (_tmp, store) = store();
    let data = b"short";
    let mut meta = offer("f", data);
    meta.size = None; // a stream: no size to check writes against
    let mut f = accepted(store.receive(&meta));
    f.write_at(0, b"short and then some").unwrap();
    f.commit(5).unwrap();
    assert_eq!(fs::read(store.root().join("f")).unwrap(), data);
}

#[test]
fn write_past_the_offered_size_is_refused() {
    let (_tmp, store) = store();
    let mut f = accepted(store.receive(&offer("f", b"1234")));
    f.write_at(0, b"1234").unwrap();
    let e = f.write_at(2, b"345").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let e = f.write_at(u64::MAX, b"x").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn discard_removes_partial_and_sidecar() {
    let (_tmp, store) = store();
    let mut f = accepted(store.receive(&offer("d/f", b"data")));
    f.write_at(0, b"da").unwrap();
    assert_eq!(
        tree(store.root()),
        ["d", "d/.ferry-info.f", "d/.ferry-part.f"]
    );
    f.discard();
    assert_eq!(tree(store.root()), ["d"]);
    // And the name is free again.
    drop(accepted(store.receive(&offer("d/f", b"data"))));
}

#[test]
fn unknown_size_never_resumes_and_keeps_nothing() {
    let (_tmp, store) = store();
    let mut meta = offer("f", b"stream");
    meta.size = None;
    let mut f = accepted(store.receive(&meta));
    f.write_at(0, b"str").unwrap();
    assert_eq!(
        tree(store.root()),
        [".ferry-part.f"],
        "no sidecar for a stream"
    );
    f.suspend();
    assert!(tree(store.root()).is_empty());
}

#[test]
fn concurrent_receives_of_one_path_are_denied_until_released() {
    type End = fn(Box<dyn Incoming>);
    let ends: &[(&str, End)] = &[
        ("drop", drop),
        ("suspend", |f| f.suspend()),
        ("discard", |f| f.discard()),
        ("commit", |mut f| {
            f.write_at(0, b"x").unwrap();
            f.commit(1).unwrap();
        }),
    ];
    for (how, end) in ends {
        let (_tmp, store) = store();
        let mut meta = offer("a/f", b"x");
        meta.overwrite = true;
        let first = accepted(store.receive(&meta));
        // Through a clone too: clones share the set. Another name is not affected.
        let other = store.clone();
        let p = refused(other.receive(&meta));
        assert_eq!(p.reason, Reason::Busy, "{how}");
        assert!(p.detail.contains("in progress"), "{how}: {}", p.detail);
        let mut equivalent = meta.clone();
        equivalent.path = String::from("./a//f");
        assert_eq!(
            refused(store.receive(&equivalent)).reason,
            Reason::Busy,
            "{how}"
        );
        drop(accepted(store.receive(&offer("a/g", b"x"))));
        end(first);
        let second = other.receive(&meta);
        match second {
            Ok(_) => {}
            // After a commit of the same content the answer is "up to date", not "busy".
            Err(p) => assert_eq!(p.reason, Reason::UpToDate, "{how}"),
        }
    }
}

#[test]
fn concurrent_receives_from_threads() {
    let (_tmp, store) = store();
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let meta = offer("f", b"x");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (store, meta, barrier) = (store.clone(), meta.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                match store.receive(&meta) {
                    Ok(f) => {
                        std::thread::sleep(Duration::from_millis(20));
                        drop(f);
                        true
                    }
                    Err(p) => {
                        assert_eq!(p.reason, Reason::Busy);
                        false
                    }
                }
            })
        })
        .collect();
    let won = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|w| *w)
        .count();
    assert!(won >= 1);
    // Every claim was released: the name is free again.
    drop(accepted(store.receive(&meta)));
}

#[test]
fn bad_names_are_rejected_and_nothing_is_created() {
    let (tmp, store) = store();
    for name in [
        "",
        ".",
        "/etc/passwd",
        "../escape",
        "a/../../escape",
        "a/..",
        "C:/escape",
        "\\\\host\\share",
        "a\\..\\..\\escape",
        "a\0b",
        "a\nb",
        ".ferry-part.x",
        "d/.ferry-info.x",
        ".FERRY-TMP.x",
    ] {
        let mut meta = offer(name, b"x");
        meta.overwrite = true;
        let p = refused(store.receive(&meta));
        assert_eq!(p.reason, Reason::BadName, "{name:?}");
    }
    assert!(tree(store.root()).is_empty());
    assert_eq!(tree(tmp.path()), ["root"]);
}

#[test]
fn destination_must_be_a_file_under_directories() {
    let (tmp, store) = store();
    let root = store.root();
    fs::create_dir(root.join("dir")).unwrap();
    fs::write(root.join("file"), b"x").unwrap();
    fs::create_dir(tmp.path().join("outside")).unwrap();
    symlink(tmp.path().join("outside"), root.join("link-dir")).unwrap();
    symlink(tmp.path().join("outside/target"), root.join("link-file")).unwrap();
    for (name, detail) in [
        ("dir", "is a directory"),
        ("file/x", "parent directory is a file"),
        ("file/x/y", "parent directory is a file"),
        ("link-dir/x", "symbolic link"),
        ("link-file", "symbolic link"),
    ] {
        let mut meta = offer(name, b"data");
        meta.overwrite = true;
        let p = refused(store.receive(&meta));
        assert_eq!(p.reason, Reason::BadName, "{name}");
        assert!(p.detail.contains(detail), "{name}: {}", p.detail);
    }
    assert!(tree(&tmp.path().join("outside")).is_empty());
    assert_eq!(tree(root), ["dir", "file", "link-dir", "link-file"]);
}

#[test]
fn partial_is_private() {
    let (_tmp, store) = store();
    let mut meta = offer("f", b"secret");
    meta.mode = Some(0o644);
    let mut f = accepted(store.receive(&meta));
    f.write_at(0, b"sec").unwrap();
    assert_eq!(mode(&store.root().join(".ferry-part.f")), 0o600);
    assert_eq!(mode(&store.root().join(".ferry-info.f")), 0o600);
    f.suspend();
    // A partial left world-readable is tightened when reused.
    let partial = store.root().join(".ferry-part.f");
    fs::set_permissions(&partial, Permissions::from_mode(0o666)).unwrap();
    let f = accepted(store.receive(&meta));
    assert_eq!(f.prefix().len(), 3);
    assert_eq!(mode(&partial), 0o600);
}

#[test]
fn partial_symlink_is_not_written_through() {
    let (tmp, store) = store();
    let victim = tmp.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    symlink(&victim, store.root().join(".ferry-part.f")).unwrap();
    let mut f = accepted(store.receive(&offer("f", b"data")));
    f.write_at(0, b"data").unwrap();
    f.commit(4).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    assert_eq!(fs::read(store.root().join("f")).unwrap(), b"data");
}

#[test]
fn long_names_use_hashed_partials() {
    let (_tmp, store) = store();
    let name = "n".repeat(MAX_COMPONENT_LEN);
    let data = b"long";
    let mut f = accepted(store.receive(&offer(&name, data)));
    f.write_at(0, &data[..2]).unwrap();
    f.suspend();
    let held = tree(store.root());
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(
        held.iter().all(|n| n.len() < 64 && path::is_reserved(n)),
        "{held:?}"
    );
    let sidecar = Sidecar::read(&store.root().join(&held[0])).unwrap();
    assert_eq!(sidecar.name, name);
    let mut f = accepted(store.receive(&offer(&name, data)));
    assert_eq!(f.prefix().len(), 2);
    f.write_at(2, &data[2..]).unwrap();
    f.commit(4).unwrap();
    assert_eq!(tree(store.root()), [name]);
    // Two long names get different partials.
    assert_ne!(
        aux_name(PARTIAL, &"a".repeat(250)),
        aux_name(PARTIAL, &"b".repeat(250))
    );
}

#[test]
fn commit_failure_keeps_the_partial() {
    let (_tmp, store) = store();
    let data = b"data";
    let mut meta = offer("f", data);
    meta.overwrite = true;
    let mut f = accepted(store.receive(&meta));
    f.write_at(0, data).unwrap();
    // A directory (with something in it) takes the name before the commit.
    fs::create_dir_all(store.root().join("f/inner")).unwrap();
    let p = f.commit(4).unwrap_err();
    assert_eq!(p.reason, Reason::Io, "{p}");
    assert!(p.detail.contains("cannot publish"), "{}", p.detail);
    assert_eq!(
        tree(store.root()),
        [".ferry-info.f", ".ferry-part.f", "f", "f/inner"]
    );
    // The name is released and the bytes resume once the obstacle is gone.
    fs::remove_dir_all(store.root().join("f")).unwrap();
    let f = accepted(store.receive(&meta));
    assert_eq!(f.prefix().len(), 4);
    f.commit(4).unwrap();
    assert_eq!(fs::read(store.root().join("f")).unwrap(), data);
}

#[test]
fn commit_does_not_replace_a_file_that_appeared() {
    let (_tmp, store) = store();
    let mut f = accepted(store.receive(&offer("f", b"mine")));
    f.write_at(0, b"mine").unwrap();
    fs::write(store.root().join("f"), b"theirs").unwrap();
    let p = f.commit(4).unwrap_err();
    assert_eq!(p.reason, Reason::Exists);
    assert_eq!(fs::read(store.root().join("f")).unwrap(), b"theirs");
    assert!(store.root().join(".ferry-part.f").exists());
}

#[test]
fn read_only_directory_is_denied() {
    let (tmp, store) = store();
    if permissions_are_bypassed(tmp.path()) {
        eprintln!("skipped: this process ignores file permissions (root?)");
        return;
    }
    let dir = store.root().join("ro");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, Permissions::from_mode(0o500)).unwrap();
    let p = refused(store.receive(&offer("ro/f", b"x")));
    fs::set_permissions(&dir, Permissions::from_mode(0o700)).unwrap();
    assert_eq!(p.reason, Reason::Denied, "{p}");
    assert!(tree(&dir).is_empty());
}

#[test]
fn commit_in_a_directory_made_read_only_is_denied() {
    let (tmp, store) = store();
    if permissions_are_bypassed(tmp.path()) {
        eprintln!("skipped: this process ignores file permissions (root?)");
        return;
    }
    let dir = store.root().join("d");
    let mut f = accepted(store.receive(&offer("d/f", b"x")));
    f.write_at(0, b"x").unwrap();
    fs::set_permissions(&dir, Permissions::from_mode(0o500)).unwrap();
    let r = f.commit(1);
    fs::set_permissions(&dir, Permissions::from_mode(0o700)).unwrap();
    assert_eq!(r.unwrap_err().reason, Reason::Denied);
    assert!(dir.join(".ferry-part.f").exists());
    assert!(!dir.join("f").exists());
}
