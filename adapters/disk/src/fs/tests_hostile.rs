//! Unit tests of the receive path against dead, slow and hostile peers: claim takeover, a
//! full disk, files the server did not make.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use proto::{FileMeta, Mtime, Problem, Reason};

use super::claim::{self, IDLE};
use super::pipeline;
use super::{FsStore, Incoming, Store};

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
        mtime: Some(Mtime {
            secs: 1_600_000_000,
            nanos: 0,
        }),
        hash: Some(proto::hash(data)),
        overwrite: false,
    }
}

fn busy(r: Result<Box<dyn Incoming>, Problem>) {
    match r {
        Ok(_) => panic!("accepted while another transfer is active"),
        Err(p) => assert_eq!(p.reason, Reason::Busy, "{p}"),
    }
}

fn accepted(r: Result<Box<dyn Incoming>, Problem>) -> Box<dyn Incoming> {
    r.unwrap_or_else(|p| panic!("refused: {p}"))
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A holder that wrote a moment ago is busy; once idle it is taken over, the new holder resumes
/// from its bytes, and the old one can neither write nor suspend nor discard over them.
#[test]
fn an_idle_holder_is_taken_over_and_revoked() {
    type End = fn(Box<dyn Incoming>);
    let ends: &[(&str, End)] = &[
        ("suspend", |f| f.suspend()),
        ("discard", |f| f.discard()),
        ("commit", |f| {
            f.commit(100_000).unwrap_err();
        }),
        ("drop", drop),
    ];
    for (how, end) in ends {
        let (_tmp, store) = store();
        let data = pattern(100_000);
        let meta = offer("d/f", &data);
        let dest = store.root().join("d/f");
        let partial = store.root().join("d/.ferry-part.f");
        let mut old = accepted(store.receive(&meta));
        old.write_at(0, &data[..40_000]).unwrap();
        busy(store.receive(&meta));

        claim::backdate(&dest);
        let mut new = accepted(store.receive(&meta));
        assert_eq!(new.prefix().len(), 40_000, "{how}");
        let e = old.write_at(40_000, &data[40_000..50_000]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ResourceBusy, "{how}");
        assert_eq!(e.to_string(), claim::revoked().to_string());
        // A write at 0 (a restart) would truncate: refused too.
        old.write_at(0, b"garbage").unwrap_err();
        end(old);
        assert_eq!(fs::read(&partial).unwrap(), data[..40_000], "{how}");
        assert!(store.root().join("d/.ferry-info.f").exists(), "{how}");
        // The old holder let go: that does not free the name while the new one holds it.
        busy(store.receive(&meta));
        new.write_at(40_000, &data[40_000..]).unwrap();
        new.commit(data.len() as u64).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), data, "{how}");
        assert!(!partial.exists());
    }
}

/// Idle means a real second without a write: before that the name is busy, after it the
/// takeover happens without any help from the old holder.
#[test]
fn takeover_waits_for_the_idle_time() {
    let (_tmp, store) = store();
    let data = pattern(10_000);
    let meta = offer("f", &data);
    let mut old = accepted(store.receive(&meta));
    let start = Instant::now();
    old.write_at(0, &data[..5000]).unwrap();
    let mut new = loop {
        match store.receive(&meta) {
            Ok(f) => break f,
            Err(p) => assert_eq!(p.reason, Reason::Busy),
        }
        assert!(start.elapsed() < IDLE * 5, "never taken over");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        start.elapsed() >= IDLE,
        "taken over after {:?}",
        start.elapsed()
    );
    assert_eq!(new.prefix().len(), 5000);
    new.write_at(5000, &data[5000..]).unwrap();
    new.commit(data.len() as u64).unwrap();
    old.suspend();
    assert_eq!(fs::read(store.root().join("f")).unwrap(), data);
}

/// The writer thread of a large file checks the claim at each write: after a takeover the
/// buffers still queued are never written, not even by the old holder's suspend.
#[test]
fn a_revoked_writer_thread_writes_nothing() {
    let (_tmp, store) = store();
    let len = pipeline::MIN_SIZE as usize + 4096;
    let data = pattern(len);
    let meta = offer("big", &data);
    let dest = store.root().join("big");
    let partial = store.root().join(".ferry-part.big");
    let mut old = accepted(store.receive(&meta));
    let cut = 3 * pipeline::BUF_LEN + 1000;
    for (i, piece) in data[..cut].chunks(65_536).enumerate() {
        old.write_at((i * 65_536) as u64, piece).unwrap();
    }
    // The writer thread may still be busy with a buffer: then the name is busy.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut new = loop {
        claim::backdate(&dest);
        match store.receive(&meta) {
            Ok(f) => break f,
            Err(p) => assert_eq!(p.reason, Reason::Busy),
        }
        assert!(Instant::now() < deadline, "never taken over");
        std::thread::sleep(Duration::from_millis(10));
    };
    let held = new.prefix().len();
    assert!(
        held <= cut as u64 && held % pipeline::BUF_LEN as u64 == 0,
        "{held}"
    );
    old.write_at(cut as u64, &data[cut..cut + 10]).unwrap_err();
    // The suspend drains the pipeline (its last buffer padded): none of it may land.
    old.suspend();
    assert_eq!(fs::metadata(&partial).unwrap().len(), held);
    new.write_at(held, &data[held as usize..]).unwrap();
    new.commit(len as u64).unwrap();
    assert_eq!(fs::read(&dest).unwrap(), data);
}

/// A small tmpfs at `dir` (removed by the returned guard), or `None` when this process cannot
/// mount one (not root): the caller skips with a printed reason.
pub(super) fn small_tmpfs(dir: &Path, size: &str) -> Option<impl Drop> {
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    fs::create_dir_all(dir).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    mounted.then(|| Unmount(dir.to_path_buf()))
}

/// A write that fails for lack of space removes the partial and its sidecar (a suspend does
/// not keep them), so the disk is not left full for the next send.
#[test]
fn a_full_disk_keeps_no_partial() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("small");
    let Some(_mount) = small_tmpfs(&root, "1m") else {
        eprintln!("cannot mount a tmpfs here (not root?); skipping the full-disk test");
        return;
    };
    let store = FsStore::new(&root).unwrap();
    let data = pattern(600 << 10);
    let meta = offer("f", &data);
    let mut f = accepted(store.receive(&meta));
    f.write_at(0, &data[..64 << 10]).unwrap();
    // Someone else fills the disk meanwhile.
    let filler = root.join("filler");
    let _ = fs::write(&filler, vec![1u8; 1 << 20]);
    let mut failed = None;
    for (i, piece) in data.chunks(64 << 10).enumerate().skip(1) {
        if let Err(e) = f.write_at((i * (64 << 10)) as u64, piece) {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("the disk filled up");
    assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
    f.suspend();
    let mut left: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["filler"]);
}
