//! Unit tests of the receive path against dead, slow and hostile peers: claim takeover, a
//! full disk, files the server did not make.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use proto::{Problem, Reason};

use super::claim::{self, IDLE};
use super::partial::{self, PIPELINES};
use super::pipeline;
use super::test_support::{accepted, offer, store};
use super::{FsStore, Incoming, Store};

fn busy(r: Result<Box<dyn Incoming>, Problem>) {
    match r {
        Ok(_) => panic!("accepted while another transfer is active"),
        Err(p) => assert_eq!(p.reason, Reason::Busy, "{p}"),
    }
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
    // (Whole buffers, or everything when another test released the writer meanwhile.)
    assert!(held <= cut as u64, "{held}");
    old.write_at(cut as u64, &data[cut..cut + 10]).unwrap_err();
    // The suspend drains the pipeline (its last buffer padded): none of it may land.
    old.suspend();
    // (No partial at all when the takeover came before the first buffer was written.)
    assert_eq!(fs::metadata(&partial).map_or(0, |m| m.len()), held);
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

/// Descriptors of this process open on something under `dir` (not `dir` itself: a store
/// holds its root open).
fn fds_under(dir: &Path) -> usize {
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir) && target != dir)
        .count()
}

/// Writer threads of this process (see `pipeline`).
fn writer_threads() -> usize {
    fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "ferry-writer")
        .count()
}

/// An offer opens nothing and creates nothing: thousands of large offers with no data cost no
/// descriptor, no file and no writer thread.
#[test]
fn offers_without_data_cost_no_descriptor() {
    let (_tmp, store) = store();
    let mut held = Vec::new();
    for i in 0..2000 {
        let mut meta = offer(&format!("d/{i}"), b"");
        meta.size = Some(pipeline::MIN_SIZE);
        meta.hash = None;
        held.push(accepted(store.receive(&meta)));
    }
    // Only this store's descriptors count (other tests of this process run meanwhile).
    let added = fds_under(store.root());
    assert_eq!(
        added, 0,
        "2000 offers hold {added} descriptors in the store"
    );
    assert!(
        fs::read_dir(store.root().join("d"))
            .unwrap()
            .next()
            .is_none(),
        "an offer created a file"
    );
    for f in held {
        f.suspend();
    }
    assert!(
        fs::read_dir(store.root().join("d"))
            .unwrap()
            .next()
            .is_none()
    );
}

/// Files with data keep a descriptor only within the open-file budget, and a writer thread
/// only within the writer budget; the others still arrive whole.
#[test]
fn open_files_and_writer_threads_stay_within_their_budgets() {
    let (_tmp, store) = store();
    let budget = partial::open_budget();
    // Small files: one descriptor each while within the budget, none beyond it.
    let n = budget + 200;
    let mut small = Vec::new();
    for i in 0..n {
        let data = pattern(1000 + i);
        let mut f = accepted(store.receive(&offer(&format!("s/{i}"), &data)));
        f.write_at(0, &data[..500]).unwrap();
        small.push((f, data));
    }
    // Only this store's descriptors count (other tests of this process run meanwhile).
    let held = fds_under(store.root());
    assert!(held <= budget, "{n} files keep {held} descriptors");
    // Large files: a writer thread each while within the writer budget.
    let mut large = Vec::new();
    let len = pipeline::MIN_SIZE as usize;
    let data = pattern(len);
    for i in 0..2 * PIPELINES + 4 {
        let mut f = accepted(store.receive(&offer(&format!("l/{i}"), &data)));
        f.write_at(0, &data[..1 << 16]).unwrap();
        large.push(f);
    }
    // Writer threads are process-wide, like their budget (a released one may take a moment
    // to exit).
    let added = writer_threads();
    assert!(
        added <= PIPELINES + 2,
        "{} large files run {added} threads",
        2 * PIPELINES + 4
    );
    // Within the budget or beyond it, a file arrives whole (a sample: commits cost fsyncs).
    for (i, (mut f, data)) in small.into_iter().enumerate() {
        if i % 97 != 0 && i != n - 1 {
            f.discard();
            continue;
        }
        f.write_at(500, &data[500..]).unwrap();
        f.commit(data.len() as u64).unwrap();
        assert_eq!(fs::read(store.root().join(format!("s/{i}"))).unwrap(), data);
    }
    // The first (with a writer thread) and the last (without) arrive whole.
    let last = large.len() - 1;
    for (i, mut f) in large.into_iter().enumerate() {
        if i != 0 && i != last {
            f.discard();
            continue;
        }
        f.write_at(1 << 16, &data[1 << 16..]).unwrap();
        f.commit(len as u64).unwrap();
        assert_eq!(fs::read(store.root().join(format!("l/{i}"))).unwrap(), data);
    }
}

/// An offer that cannot fit is refused at once, clearly, and leaves nothing behind.
#[test]
fn an_offer_that_cannot_fit_is_refused() {
    let (_tmp, store) = store();
    let mut meta = offer("deep/huge", b"");
    meta.size = Some(4 << 60);
    match store.receive(&meta) {
        Ok(_) => panic!("a 4 EiB offer was accepted"),
        Err(p) => {
            assert_eq!(p.reason, Reason::NoSpace, "{p}");
            assert!(p.detail.contains("needs"), "{p}");
        }
    }
    assert!(fs::read_dir(store.root()).unwrap().next().is_none());
}

/// A FIFO planted at the sidecar or partial name does not block the store (it is opened
/// non-blocking, found not to be a file, and replaced).
#[test]
fn a_planted_fifo_does_not_block() {
    for planted in [".ferry-info.f", ".ferry-part.f", ".ferry-tmp.f"] {
        let (_tmp, store) = store();
        let fifo = store.root().join(planted);
        let made = Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let (tx, rx) = std::sync::mpsc::channel();
        let s = store.clone();
        std::thread::spawn(move || {
            let data = pattern(1000);
            let r = s.receive(&offer("f", &data)).and_then(|mut f| {
                f.write_at(0, &data)
                    .map_err(|e| Problem::new(Reason::Io, &e.to_string()))?;
                f.commit(data.len() as u64)
            });
            let _ = tx.send(r);
        });
        let r = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{planted}: the store blocked on a FIFO"));
        r.unwrap_or_else(|p| panic!("{planted}: {p}"));
        assert_eq!(fs::read(store.root().join("f")).unwrap(), pattern(1000));
    }
}

/// A hard link planted at the partial name (with a sidecar that matches the offer, so it would
/// be resumed) is not written through: the linked file outside the root stays as it was.
#[test]
fn a_planted_hard_link_is_not_written_through() {
    let (tmp, store) = store();
    let data = pattern(1000);
    let meta = offer("f", &data);
    // A real partial and sidecar for this offer, then the partial swapped for a hard link.
    let mut f = accepted(store.receive(&meta));
    f.write_at(0, &data[..100]).unwrap();
    f.suspend();
    let partial = store.root().join(".ferry-part.f");
    let outside = tmp.path().join("precious");
    fs::write(&outside, &data[..100]).unwrap();
    fs::remove_file(&partial).unwrap();
    fs::hard_link(&outside, &partial).unwrap();
    let mut f = accepted(store.receive(&meta));
    assert!(
        f.prefix().is_empty(),
        "resumed from a file the store did not make"
    );
    f.write_at(0, &data).unwrap();
    f.commit(data.len() as u64).unwrap();
    assert_eq!(fs::read(&outside).unwrap(), &data[..100]);
    assert_eq!(fs::read(store.root().join("f")).unwrap(), data);
}

/// A partial owned by another user is not reused (tested as root only).
#[test]
fn a_partial_of_another_owner_is_replaced() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("not root: cannot make a file of another owner; skipping");
        return;
    }
    let (_tmp, store) = store();
    let data = pattern(1000);
    let meta = offer("f", &data);
    let mut f = accepted(store.receive(&meta));
    f.write_at(0, &data[..100]).unwrap();
    f.suspend();
    let partial = store.root().join(".ferry-part.f");
    std::os::unix::fs::chown(&partial, Some(65534), Some(65534)).unwrap();
    let f = accepted(store.receive(&meta));
    assert!(f.prefix().is_empty());
    drop(f);
}

fn sealed_store() -> (tempfile::TempDir, FsStore) {
    let (tmp, store) = store();
    (
        tmp,
        store.sealed(proto::seal::SealKey::from_key_bytes(&[7; 32])),
    )
}

/// Store-sealed: the plaintext partial stays 0600 until it is gone, even when sealing fails,
/// and a failed seal leaves no copy.
#[test]
fn a_failed_seal_leaves_no_readable_plaintext() {
    use std::os::unix::fs::PermissionsExt;
    let (_tmp, store) = sealed_store();
    let data = pattern(1000);
    let mut meta = offer("f", &data);
    meta.mode = Some(0o644);
    // Something at the sealing name that cannot be replaced: the seal fails.
    fs::create_dir_all(store.root().join(".ferry-seal.f/x")).unwrap();
    let mut f = accepted(store.receive(&meta));
    f.write_at(0, &data).unwrap();
    f.commit(data.len() as u64).unwrap_err();
    let partial = store.root().join(".ferry-part.f");
    let mode = fs::metadata(&partial).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the plaintext partial is {mode:o}");
    assert!(!store.root().join("f").exists());
}

/// Store-sealed on a disk that fills up while sealing: the partial copy is removed.
#[test]
fn a_seal_that_fills_the_disk_leaves_no_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("small");
    let Some(_mount) = small_tmpfs(&root, "1m") else {
        eprintln!("cannot mount a tmpfs here (not root?); skipping the full-disk seal test");
        return;
    };
    let store = FsStore::new(&root)
        .unwrap()
        .sealed(proto::seal::SealKey::from_key_bytes(&[7; 32]));
    let data = pattern(300 << 10);
    let mut f = accepted(store.receive(&offer("f", &data)));
    f.write_at(0, &data).unwrap();
    // Someone else takes the room the sealed copy needed.
    let free = rustix::fs::statvfs(&root).unwrap();
    let room = free.f_bavail * free.f_frsize;
    let _ = fs::write(
        root.join("filler"),
        vec![0u8; (room - (100 << 10)) as usize],
    );
    let p = f.commit(data.len() as u64).unwrap_err();
    assert_eq!(p.reason, Reason::NoSpace, "{p}");
    let left: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["filler"]);
}

/// A large file whose writer thread is released mid-file (as when it sat idle and another file
/// needed the thread) goes on without one and arrives whole.
#[test]
fn a_released_writer_thread_is_transparent() {
    let (_tmp, store) = store();
    let len = pipeline::MIN_SIZE as usize + 5000;
    let data = pattern(len);
    let mut f = accepted(store.receive(&offer("big", &data)));
    let cut = 2 * pipeline::BUF_LEN + 65_536 * 3;
    for (i, piece) in data[..cut].chunks(65_536).enumerate() {
        f.write_at((i * 65_536) as u64, piece).unwrap();
    }
    super::writers::release_all();
    for (i, piece) in data[cut..].chunks(65_536).enumerate() {
        f.write_at((cut + i * 65_536) as u64, piece).unwrap();
    }
    f.commit(len as u64).unwrap();
    assert_eq!(fs::read(store.root().join("big")).unwrap(), data);
}
