//! Unit tests of the store's housekeeping: the reserved record log, directories left by
//! refused names, expiring and listing partials.

use super::*;

fn store() -> (tempfile::TempDir, FsStore) {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsStore::new(tmp.path().join("root"))
        .unwrap()
        .resumable_from(0);
    (tmp, store)
}

fn offer(path: &str, data: &[u8]) -> FileMeta {
    FileMeta {
        path: path.to_owned(),
        size: Some(data.len() as u64),
        mode: Some(0o640),
        mtime: None,
        hash: Some(proto::hash(data)),
        overwrite: false,
    }
}

fn refused(r: Result<Box<dyn Incoming>, Problem>) -> Problem {
    match r {
        Ok(_) => panic!("accepted"),
        Err(p) => p,
    }
}

fn put(store: &FsStore, meta: &FileMeta, data: &[u8]) -> Result<(), Problem> {
    let mut f = store.receive(meta)?;
    f.write_at(0, data).unwrap();
    f.commit(data.len() as u64)
}

/// Every name under `dir`, hidden ones and directories included, relative and sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| relative(dir, e.unwrap().path()).unwrap())
        .collect();
    names.sort();
    names
}

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
    assert!(name.len() <= proto::wire::MAX_PATH_LEN);
    let p = refused(store.receive(&offer(&name, b"x")));
    assert_ne!(p.reason, Reason::BadName, "{p}");
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
    assert_eq!(p.reason, Reason::Denied);
    assert!(root.join("kept/a/b/c").is_dir());
}
