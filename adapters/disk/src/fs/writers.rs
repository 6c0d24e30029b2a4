//! The writer-thread budget, shared fairly: at most [`PIPELINES`] large files at once have a
//! [`Pipeline`] (a thread and up to 4 MiB of buffers). When a file needs one and none is free,
//! a pipeline whose file has had no write for [`IDLE_WRITER`] is flushed (its last block cut
//! back) and stopped, and its budget unit goes to the new file; the idle file simply goes on
//! without a writer thread when its bytes come back. Without an idle one, the new file is
//! written directly.

use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::claim::Gate;
use super::partial::{PIPELINES, Slot, WRITERS};
use super::pipeline::Pipeline;

/// A pipeline without a write for this long may be released for another file.
pub(crate) const IDLE_WRITER: Duration = Duration::from_secs(2);

enum State {
    Running {
        pipeline: Pipeline,
        /// For cutting the padded last block after a release.
        file: File,
        gate: Arc<Gate>,
        last_write: Instant,
        _slot: Slot,
    },
    /// Flushed and stopped: the data ends here (the file was cut there), or the flush failed.
    Released(Result<u64, io::ErrorKind>),
}

/// Every pipeline that may be released.
static ALL: Mutex<Vec<Weak<Mutex<State>>>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One file's writer thread, which another file may release while it is idle.
pub(crate) struct Writer {
    state: Arc<Mutex<State>>,
}

impl Writer {
    /// A writer thread for `file` from `offset` (see [`Pipeline::start`]), if the budget allows
    /// one, releasing an idle one if needed; `None` otherwise. The caller must not hold `gate`.
    pub(crate) fn start(file: &File, offset: u64, gate: Arc<Gate>) -> io::Result<Option<Writer>> {
        let slot = match WRITERS.try_take(PIPELINES) {
            Some(s) => s,
            None => {
                release_one_idle(Instant::now());
                match WRITERS.try_take(PIPELINES) {
                    Some(s) => s,
                    None => return Ok(None),
                }
            }
        };
        let state = Arc::new(Mutex::new(State::Running {
            pipeline: Pipeline::start(file, offset, Arc::clone(&gate))?,
            file: file.try_clone()?,
            gate,
            last_write: Instant::now(),
            _slot: slot,
        }));
        let mut all = lock(&ALL);
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&state));
        Ok(Some(Writer { state }))
    }

    /// Queue `data` if it is the next piece of a running pipeline; `None` when it is not (out
    /// of order, or the pipeline was released): then [`finish`](Self::finish) it.
    pub(crate) fn write(&self, offset: u64, data: &[u8]) -> Option<io::Result<()>> {
        let mut state = lock(&self.state);
        match &mut *state {
            State::Running {
                pipeline,
                last_write,
                ..
            } if pipeline.next() == offset => {
                let written = pipeline.write(data);
                *last_write = Instant::now();
                Some(written)
            }
            _ => None,
        }
    }

    /// Flush and stop: where the data ends (the caller cuts the file there).
    pub(crate) fn finish(self) -> io::Result<u64> {
        let mut state = lock(&self.state);
        match std::mem::replace(&mut *state, State::Released(Err(io::ErrorKind::Other))) {
            State::Running { pipeline, .. } => pipeline.finish(),
            State::Released(end) => end.map_err(io::Error::from),
        }
    }

    /// Stop without flushing (the file is being thrown away); no write lands after this.
    pub(crate) fn stop(self) {
        let mut state = lock(&self.state);
        *state = State::Released(Err(io::ErrorKind::Other));
    }
}

/// Release the pipeline idle the longest (at least [`IDLE_WRITER`]), if any.
fn release_one_idle(now: Instant) {
    let candidates: Vec<Arc<Mutex<State>>> = lock(&ALL).iter().filter_map(Weak::upgrade).collect();
    for candidate in candidates {
        // Busy right now (its owner is writing): not idle.
        let Ok(mut state) = candidate.try_lock() else {
            continue;
        };
        let idle = matches!(&*state, State::Running { last_write, .. }
            if now.saturating_duration_since(*last_write) >= IDLE_WRITER);
        if !idle {
            continue;
        }
        let State::Running {
            pipeline,
            file,
            gate,
            ..
        } = std::mem::replace(&mut *state, State::Released(Err(io::ErrorKind::Other)))
        else {
            continue;
        };
        let end = pipeline.finish().and_then(|end| {
            let _held = gate.hold()?;
            file.set_len(end)?;
            Ok(end)
        });
        tracing::debug!(?end, "released an idle writer thread");
        *state = State::Released(end.map_err(|e| e.kind()));
        return;
    }
}

/// Release every running pipeline now, idle or not (tests: a release must be transparent).
#[cfg(test)]
pub(crate) fn release_all() {
    let far = Instant::now() + IDLE_WRITER * 1000;
    let count = lock(&ALL).len();
    for _ in 0..count {
        release_one_idle(far);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With the budget taken, a new file gets the writer thread of one idle for
    /// [`IDLE_WRITER`]; the idle one's bytes are all on disk, its padding cut.
    #[test]
    fn an_idle_writer_is_released_for_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let gate = Gate::unclaimed();
        let mut ours = Vec::new();
        // Take whatever is left of the budget (other tests may hold some: free theirs first,
        // which they must not notice).
        release_all();
        for i in 0..=PIPELINES {
            let file = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(dir.path().join(format!("f{i}")))
                .unwrap();
            match Writer::start(&file, 0, Arc::clone(&gate)).unwrap() {
                Some(w) => {
                    w.write(0, &[i as u8; 5000]).unwrap().unwrap();
                    ours.push((w, file));
                }
                None => break,
            }
        }
        assert!(!ours.is_empty() && ours.len() <= PIPELINES);
        let extra = File::create(dir.path().join("extra")).unwrap();
        // Once ours are idle, a new file gets one.
        for (w, _) in &ours {
            if let State::Running { last_write, .. } = &mut *lock(&w.state) {
                *last_write = Instant::now().checked_sub(IDLE_WRITER).unwrap();
            }
        }
        let mut got = None;
        for _ in 0..5 {
            got = Writer::start(&extra, 0, Arc::clone(&gate)).unwrap();
            if got.is_some() {
                break;
            }
        }
        assert!(got.is_some(), "no idle writer was released");
        let released: Vec<_> = ours
            .into_iter()
            .filter(|(w, _)| matches!(&*lock(&w.state), State::Released(_)))
            .collect();
        assert!(!released.is_empty());
        for (w, file) in released {
            assert!(w.write(5000, b"more").is_none(), "a released writer wrote");
            assert_eq!(w.finish().unwrap(), 5000);
            assert_eq!(file.metadata().unwrap().len(), 5000, "padding not cut");
        }
    }
}
