//! Unit tests of the store's housekeeping: the reserved record log, directories left by
//! refused names, expiring and listing partials.

use std::time::{Duration, SystemTime};

use super::names::{PARTIAL, SIDECAR, aux_name};
use super::test_support::*;
use super::*;

#[test]
fn the_record_log_name_is_reserved_in_the_root() {
    let (_tmp, store) = store();
    for name in [
        "records.jsonl",
        "records.jsonl/x",
        "./records.jsonl/a/b",
        "RECORDS.JSONL",
    ] {
        let mut meta = offer(name, b"x");
        meta.overwrite = true;
        let p = refused(store.receive(&meta));
        assert_eq!(p.reason, Reason::BadName, "{name}");
        assert!(p.detail.contains("record log"), "{name}: {}", p.detail);
    }
    assert!(tree(store.root()).is_empty(), "{:?}", tree(store.root()));
    store.append_record("{\"a\":1}").unwrap();
    // Elsewhere the name is an ordinary one.
    put(&store, &offer("dir/records.jsonl", b"x"), b"x").unwrap();
    put(&store, &offer("records.jsonl.bak", b"y"), b"y").unwrap();
    store.append_record("{\"a\":2}").unwrap();
    assert_eq!(
        fs::read_to_string(store.records_path()).unwrap(),
        "{\"a\":1}\n{\"a\":2}\n"
    );
}

/// `n` components `d` joined by `/`, then `/last`.
fn deep(n: usize, last: &str) -> String {
    let mut s = "d/".repeat(n);
    s.push_str(last);
    s
}

#[test]
fn a_deep_name_that_fails_leaves_no_directories() {
    let (_tmp, store) = store();
    let root = store.root().to_path_buf();
    fs::create_dir(root.join("kept")).unwrap();
    // The whole name fits the protocol's limit, the absolute path does not fit the OS's: the
    // directories fail part way down.
    let name = format!("kept/{}", deep(2044, "f"));
    assert!(name.len() <= proto::MAX_PATH_LEN);
    let p = refused(store.receive(&offer(&name, b"x")));
    assert!(p.detail.contains("too long"), "{p}");
    assert_eq!(tree(&root), ["kept"]);

    // The directories fit, the partial beside the file does not: they go again too.
    let room = 4095 - root.as_os_str().len() - 1 - "kept/".len();
    let mut name = format!("kept/{}", deep(room / 2 - 1, "e"));
    name.push_str(&"e".repeat(room - (name.len() - "kept/".len()) - 2));
    name.push_str("/f");
    let dir_len = root.join(&name).parent().unwrap().as_os_str().len();
    assert!(dir_len < 4096 && dir_len + "/.ferry-part.f".len() > 4095);
    let p = refused(store.receive(&offer(&name, b"x")));
    assert!(p.detail.contains("partial"), "{p}");
    assert_eq!(tree(&root), ["kept"]);

    // Refused once the directories exist for another offer: those stay.
    put(&store, &offer("kept/a/b/one", b"1"), b"1").unwrap();
    let _busy = store.receive(&offer("kept/a/b/c/two", b"2")).unwrap();
    let p = refused(store.receive(&offer("kept/a/b/c/two", b"2")));
    assert_eq!(p.reason, Reason::Busy);
    assert!(root.join("kept/a/b/c").is_dir());
}

const DAY: Duration = Duration::from_secs(86_400);

/// Receive `len` bytes of `name` and suspend: a partial kept for resume.
fn park(store: &FsStore, name: &str, len: usize) {
    let data = vec![7u8; len + 1];
    let mut f = store.receive(&offer(name, &data)).unwrap();
    f.write_at(0, &data[..len]).unwrap();
    f.suspend();
}

/// Set the modification time of every store-made file of `name` to `t`.
fn age(store: &FsStore, name: &str, t: SystemTime) {
    let dest = store.root().join(name);
    let dir = dest.parent().unwrap();
    let file = dest.file_name().unwrap().to_str().unwrap();
    for prefix in [PARTIAL, SIDECAR] {
        let p = dir.join(aux_name(prefix, file));
        File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
}

fn names(v: &[PartialInfo]) -> Vec<&str> {
    v.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn partials_are_listed_oldest_first_with_their_real_names() {
    let (_tmp, store) = store();
    let now = SystemTime::now();
    let long = format!("dir/{}", "L".repeat(250));
    park(&store, "dir/a.bin", 1000);
    park(&store, &long, 10);
    park(&store, "b.bin", 0);
    age(&store, "dir/a.bin", now - 3 * DAY);
    age(&store, &long, now - DAY);
    put(&store, &offer("done.txt", b"x"), b"x").unwrap();
    // Being received: listed once its first bytes made the partial.
    let mut busy = store.receive(&offer("busy.bin", b"xyz")).unwrap();
    busy.write_at(0, b"x").unwrap();
    let list = store.partials_at(now).unwrap();
    assert_eq!(names(&list), ["dir/a.bin", &long, "b.bin", "busy.bin"]);
    let sidecar_len = |name: &str| {
        let dest = store.root().join(name);
        let file = dest.file_name().unwrap().to_str().unwrap().to_owned();
        fs::metadata(dest.with_file_name(aux_name(SIDECAR, &file)))
            .unwrap()
            .len()
    };
    assert_eq!(list[0].bytes, 1000 + sidecar_len("dir/a.bin"));
    assert_eq!(list[1].bytes, 10 + sidecar_len(&long));
    assert!(list[0].age >= 3 * DAY && list[0].age < 3 * DAY + Duration::from_secs(60));
    assert!(list[1].age >= DAY && list[1].age < DAY + Duration::from_secs(60));
    assert_eq!(
        list.iter().map(|p| p.claimed).collect::<Vec<_>>(),
        [false, false, false, true]
    );
    drop(busy);
}

#[test]
fn partials_past_the_age_go_but_never_a_claimed_one() {
    let (_tmp, store) = store();
    let store = store.expire_partials(PartialsPolicy {
        max_age: Some(7 * DAY),
        max_bytes: None,
    });
    let now = SystemTime::now();
    park(&store, "old.bin", 100);
    park(&store, "d/recent.bin", 100);
    park(&store, "held.bin", 100);
    age(&store, "old.bin", now - 8 * DAY);
    age(&store, "d/recent.bin", now - 6 * DAY);
    // A stray sidecar and temporary file of an old transfer go too.
    let stray = store.root().join("d/.ferry-info.gone");
    fs::write(&stray, b"{}").unwrap();
    fs::write(store.root().join("d/.ferry-tmp.gone"), b"{}").unwrap();
    for p in ["d/.ferry-info.gone", "d/.ferry-tmp.gone"] {
        File::options()
            .write(true)
            .open(store.root().join(p))
            .unwrap()
            .set_modified(now - 30 * DAY)
            .unwrap();
    }
    // Resumed now (its files are old, it is claimed): kept.
    let held = store.receive(&offer("held.bin", &[7; 101])).unwrap();
    age(&store, "held.bin", now - 9 * DAY);
    let removed = store.sweep_at(now).unwrap();
    assert_eq!(names(&removed), ["d/gone", "old.bin"]);
    assert_eq!(
        tree(store.root()),
        [
            ".ferry-info.held.bin",
            ".ferry-part.held.bin",
            "d",
            "d/.ferry-info.recent.bin",
            "d/.ferry-part.recent.bin",
        ]
    );
    // Released, the held one is old enough to go at the next sweep.
    drop(held);
    age(&store, "held.bin", now - 9 * DAY);
    assert_eq!(names(&store.sweep_at(now).unwrap()), ["held.bin"]);
    // With no policy nothing goes.
    let (_tmp2, plain) = self::store();
    park(&plain, "x.bin", 10);
    age(&plain, "x.bin", now - 300 * DAY);
    assert!(plain.sweep_at(now).unwrap().is_empty());
    assert_eq!(plain.partials().unwrap().len(), 1);
}

#[test]
fn partials_beyond_the_total_size_go_oldest_first() {
    let (_tmp, store) = store();
    let now = SystemTime::now();
    for (i, name) in ["a.bin", "b.bin", "c.bin", "d.bin"].iter().enumerate() {
        park(&store, name, 1000);
        age(
            &store,
            name,
            now - Duration::from_secs(3600 * (10 - i as u64)),
        );
    }
    let each = store.partials_at(now).unwrap()[0].bytes;
    let store = store.expire_partials(PartialsPolicy {
        max_age: None,
        max_bytes: Some(2 * each + 1),
    });
    assert_eq!(names(&store.sweep_at(now).unwrap()), ["a.bin", "b.bin"]);
    assert_eq!(names(&store.partials_at(now).unwrap()), ["c.bin", "d.bin"]);
    assert!(store.sweep_at(now).unwrap().is_empty());
}

#[test]
fn receiving_a_file_sweeps_at_most_once_a_minute() {
    let (_tmp, plain) = store();
    let now = SystemTime::now();
    park(&plain, "old.bin", 10);
    age(&plain, "old.bin", now - 2 * DAY);
    let store = plain.expire_partials(PartialsPolicy {
        max_age: Some(DAY),
        max_bytes: None,
    });
    let old = store.root().join(".ferry-part.old.bin");
    // Receiving another file starts the sweep (on a thread of its own).
    put(&store, &offer("new.txt", b"n"), b"n").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while old.exists() || store.shared.housekeeping.is_running() {
        assert!(std::time::Instant::now() < deadline, "no sweep");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Another old partial waits for the next minute's sweep.
    park(&store, "later.bin", 10);
    age(&store, "later.bin", now - 2 * DAY);
    put(&store, &offer("new2.txt", b"n"), b"n").unwrap();
    assert!(!store.shared.housekeeping.is_running());
    assert!(store.root().join(".ferry-part.later.bin").exists());
}
