//! Unit tests of the small-file path: what a directory of thousands of small files costs per
//! file (no free-space query each, no look at the partial's name before the data).

use std::fs::{self, Permissions};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::Ordering;

use super::names::{PARTIAL, SIDECAR, aux_name};
use super::space::SMALL;
use super::test_support::*;
use super::{FsStore, Store};

/// Hundreds of small offers ask the filesystem for its free space about once, not once each;
/// an offer larger than [`SMALL`] always asks.
#[test]
fn small_offers_share_one_free_space_query() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsStore::new(tmp.path().join("root")).unwrap();
    let asked = || store.shared.space.asked.load(Ordering::Relaxed);
    let mut held = Vec::new();
    for i in 0..300 {
        let data = vec![i as u8; 4096];
        held.push(accepted(store.receive(&offer(&format!("d/{i}"), &data))));
    }
    // One query, or a few if this ran for longer than an answer is used (a loaded machine).
    assert!(asked() <= 5, "300 small offers asked {} times", asked());
    let before = asked();
    let mut big = offer("big", b"");
    big.size = Some(SMALL + 1);
    big.hash = None;
    held.push(accepted(store.receive(&big)));
    assert_eq!(asked(), before + 1, "a large offer did not ask");
    for f in held {
        f.suspend();
    }
}

/// A small offer does not look at the partial's name before its data: a stale partial (longer
/// than the new file) and a stale sidecar left there are dropped when the partial is created,
/// and exactly the new bytes are published.
#[test]
fn a_small_offer_drops_a_stale_partial_and_sidecar_at_its_first_data() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsStore::new(tmp.path().join("root")).unwrap();
    fs::create_dir_all(store.root().join("d")).unwrap();
    let stale = store.root().join("d").join(aux_name(PARTIAL, "f"));
    let sidecar = store.root().join("d").join(aux_name(SIDECAR, "f"));
    fs::write(&stale, vec![b'x'; 10_000]).unwrap();
    fs::set_permissions(&stale, Permissions::from_mode(0o600)).unwrap();
    fs::write(&sidecar, b"{}").unwrap();
    fs::set_permissions(&sidecar, Permissions::from_mode(0o600)).unwrap();
    let mut f = accepted(store.receive(&offer("d/f", b"new")));
    f.write_at(0, b"new").unwrap();
    assert_eq!(
        fs::read(&stale).unwrap(),
        b"new",
        "the stale bytes were kept"
    );
    f.commit(3).unwrap();
    assert_eq!(fs::read(store.root().join("d/f")).unwrap(), b"new");
    assert_eq!(tree(store.root()), ["d", "d/f"]);
}

/// The per-file calls resolve names from the store's root held open (fewer path components
/// walked per file): a store whose root directory is renamed meanwhile still checks, creates
/// and publishes (alone and grouped) in that directory.
#[test]
fn received_files_resolve_from_the_open_root() {
    use crate::commit::commit_batch;
    let tmp = tempfile::tempdir().unwrap();
    let store = FsStore::new(tmp.path().join("root")).unwrap();
    fs::create_dir(store.root().join("d")).unwrap();
    let moved = tmp.path().join("moved");
    fs::rename(store.root(), &moved).unwrap();
    let mut alone = accepted(store.receive(&offer("d/alone", b"one")));
    alone.write_at(0, b"one").unwrap();
    alone.commit(3).unwrap();
    let mut batch = Vec::new();
    for i in 0..3u8 {
        let data = [i; 10];
        let mut f = accepted(store.receive(&offer(&format!("d/{i}"), &data)));
        f.write_at(0, &data).unwrap();
        batch.push((proto::RecvId(u32::from(i)), f, 10));
    }
    for (_, answer) in commit_batch(batch) {
        answer.unwrap();
    }
    assert_eq!(fs::read(moved.join("d/alone")).unwrap(), b"one");
    for i in 0..3u8 {
        assert_eq!(fs::read(moved.join(format!("d/{i}"))).unwrap(), [i; 10]);
    }
    assert!(!store.root().exists(), "something was made at the old path");
}
