//! Unit tests of the parent module: the serving side (lookups, listings, the root itself,
//! standard output, the record log).

use std::os::unix::fs::symlink;
use std::sync::Arc;

use super::test_support::*;
use super::*;
/// A tree with files, a partial, a symlink out of the root and an empty directory.
fn populated() -> (tempfile::TempDir, FsStore) {
    let (tmp, store) = store();
    let root = store.root();
    for (name, data) in [
        ("top.txt", &b"top"[..]),
        ("photos/b.jpg", b"bb"),
        ("photos/a.jpg", b"a"),
        ("photos/2024/c.jpg", b"ccc"),
        ("photos2/d.jpg", b"dddd"),
        ("photo-notes.txt", b"n"),
    ] {
        put(&store, &offer(name, data), data).unwrap();
    }
    let mut f = accepted(store.receive(&offer("photos/partial.jpg", b"pppp")));
    f.write_at(0, b"pp").unwrap();
    f.suspend();
    fs::create_dir(root.join("empty")).unwrap();
    fs::write(tmp.path().join("secret"), b"s").unwrap();
    symlink(tmp.path().join("secret"), root.join("photos/link.jpg")).unwrap();
    symlink(tmp.path(), root.join("outside")).unwrap();
    fs::write(root.join("photos/bad\\name"), b"x").unwrap();
    (tmp, store)
}

fn outgoing_names(v: &[Outgoing]) -> Vec<&str> {
    v.iter().map(|o| o.meta.path.as_str()).collect()
}

#[test]
fn lookup_a_file() {
    let (_tmp, store) = populated();
    let found = store.lookup("photos//./b.jpg").unwrap();
    assert_eq!(outgoing_names(&found), ["photos/b.jpg"]);
    let o = &found[0];
    assert_eq!(o.meta.size, Some(2));
    assert_eq!(o.meta.mode, Some(0o640));
    assert_eq!(o.meta.mtime, Some(MTIME));
    assert_eq!(o.meta.hash, None);
    assert!(!o.meta.overwrite);
    assert!(
        matches!(&o.source, Source::Served { path, .. } if *path == store.root().join("photos/b.jpg"))
    );
}

#[test]
fn lookup_a_directory() {
    let (_tmp, store) = populated();
    let found = store.lookup("photos").unwrap();
    assert_eq!(
        outgoing_names(&found),
        ["photos/2024/c.jpg", "photos/a.jpg", "photos/b.jpg"]
    );
    for o in &found {
        let Source::Served { path: p, .. } = &o.source else {
            panic!("not a file source")
        };
        assert_eq!(fs::read(p).unwrap().len() as u64, o.meta.size.unwrap());
    }
    let all = store.lookup("").unwrap();
    assert_eq!(store.lookup(".").unwrap().len(), all.len());
    assert_eq!(
        outgoing_names(&all),
        [
            "photo-notes.txt",
            "photos/2024/c.jpg",
            "photos/a.jpg",
            "photos/b.jpg",
            "photos2/d.jpg",
            "top.txt"
        ]
    );
    assert!(store.lookup("empty").unwrap().is_empty());
}

#[test]
fn lookup_refusals() {
    let (_tmp, store) = populated();
    for (name, reason) in [
        ("missing", Reason::NotFound),
        ("photos/missing.jpg", Reason::NotFound),
        ("top.txt/x", Reason::NotFound),
        ("photos/partial.jpg", Reason::NotFound),
        ("photos/.ferry-part.partial.jpg", Reason::BadName),
        ("../root", Reason::BadName),
        ("/etc", Reason::BadName),
        ("outside", Reason::Denied),
        ("outside/secret", Reason::Denied),
        ("photos/link.jpg", Reason::Denied),
    ] {
        match store.lookup(name) {
            Ok(v) => panic!("{name}: found {:?}", outgoing_names(&v)),
            Err(p) => assert_eq!(p.reason, reason, "{name}: {p}"),
        }
    }
}

#[test]
fn list_filters_and_never_shows_partials() {
    let (_tmp, store) = populated();
    let names = |prefix: &str| -> Vec<String> {
        store
            .list(prefix)
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect()
    };
    let all = [
        "photo-notes.txt",
        "photos/2024/c.jpg",
        "photos/a.jpg",
        "photos/b.jpg",
        "photos2/d.jpg",
        "top.txt",
    ];
    assert_eq!(names(""), all);
    assert_eq!(names("."), all);
    assert_eq!(
        names("photos"),
        ["photos/2024/c.jpg", "photos/a.jpg", "photos/b.jpg"]
    );
    assert_eq!(names("photos/"), names("photos"));
    assert_eq!(
        names("photo"),
        [
            "photo-notes.txt",
            "photos/2024/c.jpg",
            "photos/a.jpg",
            "photos/b.jpg",
            "photos2/d.jpg"
        ]
    );
    assert_eq!(names("photos/2"), ["photos/2024/c.jpg"]);
    assert_eq!(names("photos/b"), ["photos/b.jpg"]);
    assert_eq!(names("top.txt"), ["top.txt"]);
    assert!(names("nothing").is_empty());
    assert!(names("nothing/deeper").is_empty());
    assert!(names("top.txt/x").is_empty());
    assert!(names("outside").is_empty());
    assert!(names("outside/secret").is_empty());
    assert!(names("photos/partial").is_empty());
    assert_eq!(store.list("../x").unwrap_err().reason, Reason::BadName);
    assert_eq!(
        store.list(".ferry-part.x").unwrap_err().reason,
        Reason::BadName
    );

    let e = &store.list("photos/b.jpg").unwrap()[0];
    assert_eq!((e.size, e.mtime), (2, Some(MTIME)));
}

#[test]
fn root_is_created_and_canonical() {
    let tmp = tempfile::tempdir().unwrap();
    let canonical = tmp.path().canonicalize().unwrap();
    let store = FsStore::new(tmp.path().join("x/y/../z")).unwrap();
    assert_eq!(store.root(), canonical.join("x/z"));
    let store = FsStore::new(tmp.path().join("a/b")).unwrap();
    assert!(store.root().is_dir());
    assert_eq!(store.root(), canonical.join("a/b"));
    fs::write(tmp.path().join("file"), b"").unwrap();
    assert!(FsStore::new(tmp.path().join("file")).is_err());
}

/// A writer tests can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn stdout_takes_one_file_in_order() {
    let out = Captured::default();
    let store = StdoutStore::with_writer(Box::new(out.clone()));
    let meta = offer("anything", b"hello world");
    let mut f = accepted(store.receive(&meta));
    assert!(f.prefix().is_empty());
    let p = refused(store.receive(&meta));
    assert_eq!(p.reason, Reason::Denied);
    assert!(p.detail.contains("only one file"), "{}", p.detail);
    f.write_at(0, b"hello").unwrap();
    assert_eq!(
        f.write_at(0, b"hello").unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        f.write_at(6, b"world").unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    f.write_at(5, b" world").unwrap();
    f.commit(11).unwrap();
    assert_eq!(out.0.lock().unwrap().as_slice(), b"hello world");
    // Still only one, even after the first is done.
    assert_eq!(refused(store.receive(&meta)).reason, Reason::Denied);
}

#[test]
fn stdout_commit_checks_the_size_and_serves_nothing() {
    let store = StdoutStore::with_writer(Box::new(Captured::default()));
    let mut f = accepted(store.receive(&offer("x", b"abc")));
    f.write_at(0, b"ab").unwrap();
    assert_eq!(f.commit(3).unwrap_err().reason, Reason::Io);
    assert_eq!(
        store.lookup("x").map(|_| ()).unwrap_err().reason,
        Reason::Unsupported
    );
    assert_eq!(store.list("").unwrap_err().reason, Reason::Unsupported);
}

#[test]
fn records_append_whole_lines_and_repair_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path()).unwrap();
    store.append_record(r#"{"a":1}"#).unwrap();
    store.append_record(r#"{"b":2}"#).unwrap();
    let log = store.records_path();
    assert_eq!(fs::read_to_string(&log).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
    // A crash in the middle of a write leaves a torn line: the next append cuts it off.
    let mut f = OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(b"{\"c\":").unwrap();
    drop(f);
    store.append_record(r#"{"d":4}"#).unwrap();
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "{\"a\":1}\n{\"b\":2}\n{\"d\":4}\n"
    );
    // A log that is one torn line only becomes empty, then gains the new line.
    fs::write(&log, b"{\"torn").unwrap();
    store.append_record(r#"{"e":5}"#).unwrap();
    assert_eq!(fs::read_to_string(&log).unwrap(), "{\"e\":5}\n");
}
