//! Unit tests of the parent module: the writer thread (large files suspended, resumed and
//! restarted) and group commits.

use std::fs::Permissions;
use std::os::unix::fs::{PermissionsExt, symlink};

use super::names::{PARTIAL, aux_name};
use super::test_support::*;
use super::*;
/// A file large enough for the writer thread: suspended mid-buffer, resumed, restarted at 0
/// and committed; every step leaves exactly the bytes written so far (no padding, no gap).
#[test]
fn large_file_through_the_writer_thread() {
    let (_tmp, store) = store();
    let len = pipeline::MIN_SIZE as usize + 777;
    let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
    let meta = offer("big", &data);
    let partial = store.root().join(".ferry-part.big");

    let mut f = accepted(store.receive(&meta));
    let cut = 3 * pipeline::BUF_LEN + 12_345;
    for (i, piece) in data[..cut].chunks(65_536).enumerate() {
        f.write_at((i * 65_536) as u64, piece).unwrap();
    }
    f.suspend();
    assert_eq!(fs::metadata(&partial).unwrap().len(), cut as u64);

    // Resume from an unaligned offset: written directly, no writer thread.
    let mut f = accepted(store.receive(&meta));
    assert_eq!(f.prefix().finalize(), proto::hash(&data[..cut]));
    f.write_at(cut as u64, &data[cut..cut + 1000]).unwrap();
    // The sender restarts at 0: the writer thread takes over from there.
    for (i, piece) in data.chunks(65_536).enumerate() {
        f.write_at((i * 65_536) as u64, piece).unwrap();
    }
    f.commit(len as u64).unwrap();
    assert_eq!(fs::read(store.root().join("big")).unwrap(), data);
    assert_eq!(tree(store.root()), ["big"]);
}

/// A file of unknown size (standard input) is written directly until it has proved large,
/// then by the writer thread: its file lags what was written by the buffer being filled.
#[test]
fn unknown_size_file_gets_the_writer_thread_once_large() {
    let (_tmp, store) = store();
    let len = pipeline::MIN_SIZE as usize + pipeline::BUF_LEN + pipeline::BUF_LEN / 2 + 99;
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let meta = FileMeta {
        size: None,
        hash: None,
        ..offer("piped", &data)
    };
    let partial = store.root().join(".ferry-part.piped");
    let mut f = accepted(store.receive(&meta));
    let mut at = 0;
    for piece in data.chunks(65_536) {
        f.write_at(at as u64, piece).unwrap();
        at += piece.len();
        if at < pipeline::MIN_SIZE as usize {
            // Written directly: the partial holds every byte at once.
            assert_eq!(fs::metadata(&partial).unwrap().len(), at as u64);
        }
    }
    // The last half buffer waits in the pipeline, not in the file.
    assert!(fs::metadata(&partial).unwrap().len() < len as u64);
    f.commit(len as u64).unwrap();
    assert_eq!(fs::read(store.root().join("piped")).unwrap(), data);
    assert_eq!(tree(store.root()), ["piped"]);
}

/// A restart at 0 while the writer thread runs: the thread finishes first, then the file
/// starts over; nothing from before the restart survives past the new bytes.
#[test]
fn restart_while_the_writer_thread_runs() {
    let (_tmp, store) = store();
    let len = pipeline::MIN_SIZE as usize;
    let old: Vec<u8> = vec![0xAA; len];
    let new: Vec<u8> = (0..len).map(|i| (i % 241) as u8).collect();
    let meta = offer("big", &new);
    let mut f = accepted(store.receive(&meta));
    f.write_at(0, &old[..2 << 20]).unwrap();
    f.write_at(2 << 20, &old[2 << 20..5 << 20]).unwrap();
    for (i, piece) in new.chunks(1 << 20).enumerate() {
        f.write_at((i << 20) as u64, piece).unwrap();
    }
    f.commit(len as u64).unwrap();
    assert_eq!(fs::read(store.root().join("big")).unwrap(), new);
}

/// Below the resume threshold no sidecar is written and an interrupted file is not kept.
#[test]
fn small_files_keep_no_resume_state() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsStore::new(tmp.path().join("root")).unwrap();
    let data = vec![5u8; 1000];
    let meta = offer("s", &data);
    let mut f = accepted(store.receive(&meta));
    // Nothing on disk before the first data.
    assert!(tree(store.root()).is_empty());
    f.write_at(0, &data[..500]).unwrap();
    f.suspend();
    assert!(tree(store.root()).is_empty());
    put(&store, &meta, &data).unwrap();
    assert_eq!(tree(store.root()), ["s"]);
}

/// A group commit publishes every file whose data it synced, and fails only the one whose
/// name appeared meanwhile (its partial kept).
#[test]
fn grouped_commit_publishes_each_file_or_fails_it_alone() {
    use crate::commit::commit_batch;
    use proto::RecvId;
    let (_tmp, store) = store();
    let mut batch = Vec::new();
    for i in 0..5u32 {
        let data = vec![i as u8; 100 + i as usize];
        let meta = offer(&format!("g/{i}"), &data);
        let mut f = accepted(store.receive(&meta));
        f.write_at(0, &data).unwrap();
        batch.push((RecvId(i), f, data.len() as u64));
    }
    fs::write(store.root().join("g/3"), b"someone else's").unwrap();
    let answers = commit_batch(batch);
    assert_eq!(answers.len(), 5);
    for (id, result) in answers {
        match id.0 {
            3 => assert_eq!(result.unwrap_err().reason, Reason::Exists),
            i => {
                result.unwrap();
                let got = fs::read(store.root().join(format!("g/{i}"))).unwrap();
                assert_eq!(got, vec![i as u8; 100 + i as usize]);
            }
        }
    }
    assert_eq!(
        fs::read(store.root().join("g/3")).unwrap(),
        b"someone else's"
    );
    assert!(store.root().join("g/.ferry-part.3").exists());
}

/// Publishing refuses a name that appeared meanwhile in the same step as the rename
/// (`RENAME_NOREPLACE`): a dangling symbolic link planted there stays, alone or grouped.
#[test]
fn a_dangling_link_that_appeared_is_not_replaced() {
    use crate::commit::commit_batch;
    use proto::RecvId;
    let (_tmp, store) = store();
    let mut batch = Vec::new();
    for i in 0..3u32 {
        let mut f = accepted(store.receive(&offer(&format!("h/{i}"), b"data")));
        f.write_at(0, b"data").unwrap();
        batch.push((RecvId(i), f, 4));
    }
    symlink("/nonexistent/target", store.root().join("h/1")).unwrap();
    let mut single = accepted(store.receive(&offer("h/9", b"data")));
    single.write_at(0, b"data").unwrap();
    symlink("/nonexistent/target", store.root().join("h/9")).unwrap();
    assert_eq!(single.commit(4).unwrap_err().reason, Reason::Exists);
    for (id, result) in commit_batch(batch) {
        match id.0 {
            1 => assert_eq!(result.unwrap_err().reason, Reason::Exists),
            i => {
                result.unwrap();
                assert_eq!(
                    fs::read(store.root().join(format!("h/{i}"))).unwrap(),
                    b"data"
                );
            }
        }
    }
    for planted in ["h/1", "h/9"] {
        let md = fs::symlink_metadata(store.root().join(planted)).unwrap();
        assert!(md.file_type().is_symlink(), "{planted} was replaced");
    }
}

/// A small (not resumable) offer over a stale partial of ours, longer than the new file,
/// publishes exactly the new bytes: the partial is dropped at the offer, never reused.
#[test]
fn a_small_offer_never_reuses_a_stale_partial() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FsStore::new(tmp.path().join("root")).unwrap();
    fs::create_dir_all(store.root().join("d")).unwrap();
    let stale = store.root().join("d").join(aux_name(PARTIAL, "f"));
    fs::write(&stale, vec![b'x'; 10_000]).unwrap();
    fs::set_permissions(&stale, Permissions::from_mode(0o600)).unwrap();
    put(&store, &offer("d/f", b"new"), b"new").unwrap();
    assert_eq!(fs::read(store.root().join("d/f")).unwrap(), b"new");
    assert_eq!(tree(store.root()), ["d", "d/f"]);
}
