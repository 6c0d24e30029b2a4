//! Unit tests of the parent module.

use super::*;
use ferry_disk::FsStore;

fn key(b: u8) -> [u8; 32] {
    [b; 32]
}

fn list(lines: &str) -> AllowList {
    AllowList::parse(lines).unwrap()
}

fn store(root: &Path, text: &str) -> AccessStore {
    let root = root.to_path_buf();
    AccessStore::new(
        list(text),
        Box::new(move |dir| Ok(Arc::new(FsStore::new(root.join(dir))?) as Arc<dyn Store>)),
    )
}

#[test]
fn allow_list_parses_and_rejects() {
    let text = format!(
        "# team\nalice {} put,list alice\nbob {} all . # everything\n",
        encode_key(&key(1)),
        encode_key(&key(2))
    );
    let l = list(&text);
    assert_eq!(l.len(), 2);
    let alice = l.get(&key(1)).unwrap();
    assert!(alice.rights.contains(Rights::PUT) && !alice.rights.contains(Rights::GET));
    assert_eq!(alice.dir, PathBuf::from("alice"));
    assert_eq!(l.get(&key(2)).unwrap().dir, PathBuf::new());
    for bad in [
        format!("x {} put ../bob", encode_key(&key(1))),
        format!("x {} put /abs", encode_key(&key(1))),
        format!("x {} fly .", encode_key(&key(1))),
        "x nothex put .".to_string(),
        format!("x {} put", encode_key(&key(1))),
        format!("x {k} put .\ny {k} get .", k = encode_key(&key(1))),
    ] {
        assert!(AllowList::parse(&bad).is_err(), "{bad}");
    }
    assert_eq!(decode_key(&encode_key(&key(7))).unwrap(), key(7));
}

#[test]
fn unlisted_is_refused_and_rights_are_per_request() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(
        tmp.path(),
        &format!("alice {} put alice", encode_key(&key(1))),
    );
    assert!(s.for_peer(Some(&key(9))).is_err());
    assert!(s.for_peer(None).is_err());
    // Refused before any disk work: alice's folder does not exist yet.
    assert!(!tmp.path().join("alice").exists());
    let alice = s.for_peer(Some(&key(1))).unwrap().unwrap();
    assert!(tmp.path().join("alice").is_dir());
    assert_eq!(alice.lookup("x").err().unwrap().reason, Reason::Denied);
    assert_eq!(alice.list("").err().unwrap().reason, Reason::Denied);
    assert_eq!(
        alice.append_record("{}").err().unwrap().reason,
        Reason::Denied
    );
    let mut meta = FileMeta::new("f", Some(1));
    meta.overwrite = true;
    assert_eq!(alice.receive(&meta).err().unwrap().reason, Reason::Denied);
    meta.overwrite = false;
    assert!(alice.receive(&meta).is_ok());
}

#[test]
fn reload_revokes_dropped_and_changed_clients_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (encode_key(&key(1)), encode_key(&key(2)));
    let s = store(tmp.path(), &format!("alice {a} put alice\nbob {b} put bob"));
    let alice = s.for_peer(Some(&key(1))).unwrap().unwrap();
    let bob = s.for_peer(Some(&key(2))).unwrap().unwrap();
    let revoked = s.reload(list(&format!("bob {b} put bob")));
    assert_eq!(revoked, vec!["alice".to_string()]);
    assert!(alice.revoked() && !bob.revoked());
    assert!(s.for_peer(Some(&key(1))).is_err());
    // Re-added: a new grant, not revoked.
    s.reload(list(&format!("alice {a} put alice\nbob {b} put bob")));
    assert!(!s.for_peer(Some(&key(1))).unwrap().unwrap().revoked());
}
