//! Making received files durable: [`commit_batch`] commits a group of files with two
//! filesystem syncs instead of three fsyncs each.

use proto::{Problem, RecvId};

use crate::{Incoming, Staged};

/// A finished commit: which file, and how it went.
pub type CommitDone = (RecvId, Result<(), Problem>);

/// Files to commit together: id, file, final size.
pub type Batch = Vec<(RecvId, Box<dyn Incoming>, u64)>;

/// Commit `batch`, answering for every file (in order).
///
/// One file commits alone ([`Incoming::commit`]: fsync, rename, directory fsync). More are
/// grouped: each is staged ([`Incoming::stage`]: length, mode, mtime), then one `syncfs` per
/// filesystem makes all their data durable, then each is renamed into place, then a second
/// `syncfs` makes the renames durable. A file is renamed only after its data is on disk, so a
/// crash at any point leaves published files whole and verified (at worst a finished file
/// still under its partial name). The price: `syncfs` also flushes other dirty data of that
/// filesystem, which is why single files keep the targeted fsyncs.
pub fn commit_batch(batch: Batch) -> Vec<CommitDone> {
    if batch.len() == 1 {
        return batch
            .into_iter()
            .map(|(id, file, size)| (id, file.commit(size)))
            .collect();
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut pending = Vec::new();
    for (id, file, size) in batch {
        match file.stage(size) {
            Staged::Done(result) => answers.push((id, result)),
            Staged::Pending(p) => pending.push((id, p)),
        }
    }
    if pending.is_empty() {
        return answers;
    }
    // First sync: the data (and the metadata set while staging) of every pending file. One
    // handle per filesystem is kept for the second.
    let mut filesystems: Vec<(u64, std::fs::File)> = Vec::new();
    for (_, p) in &pending {
        if let Err(e) = add_filesystem(&mut filesystems, p.handle(), p.device()) {
            let problem = crate::problem_from_io(&e, "cannot flush the files to disk");
            answers.extend(
                pending
                    .into_iter()
                    .map(|(id, _)| (id, Err(problem.clone()))),
            );
            return answers;
        }
    }
    let mut published = Vec::with_capacity(pending.len());
    for (id, p) in pending {
        match p.publish() {
            Ok(()) => published.push(id),
            Err(problem) => answers.push((id, Err(problem))),
        }
    }
    // Second sync: the renames.
    let second = filesystems
        .iter()
        .try_for_each(|(_, f)| rustix::fs::syncfs(f))
        .map_err(|e| crate::problem_from_io(&e.into(), "cannot flush the directory to disk"));
    answers.extend(published.into_iter().map(|id| (id, second.clone())));
    answers
}

/// `syncfs` the filesystem `dev` of `file` unless `seen` has it already (then remember it).
fn add_filesystem(
    seen: &mut Vec<(u64, std::fs::File)>,
    file: &std::fs::File,
    dev: u64,
) -> std::io::Result<()> {
    if !seen.iter().any(|(d, _)| *d == dev) {
        rustix::fs::syncfs(file)?;
        seen.push((dev, file.try_clone()?));
    }
    Ok(())
}
