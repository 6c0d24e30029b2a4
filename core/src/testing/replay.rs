//! Replaying a recorded client byte stream into a fresh server (hostile-input tests, fuzzing).

use alloc::string::String;
use alloc::vec::Vec;

use crate::testing::{MemApp, START};
use crate::{Config, MAX_RECORD, Psk, Session, SessionError};

/// Client preamble plus Noise message 1 with its length prefix.
const HANDSHAKE_LEN: usize = 8 + 2 + 32 + 27 + 16;

/// What a server did with a replayed stream.
pub struct Replay {
    /// The first error (from `handle_input`, `read` or `handle_eof`).
    pub error: Option<SessionError>,
    /// Files the server committed, each with the input offset whose processing completed it.
    pub committed: Vec<(String, usize)>,
    /// The server application (its files, log...).
    pub app: MemApp,
}

impl core::fmt::Debug for Replay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Replay")
            .field("error", &self.error)
            .field("committed", &self.committed)
            .finish_non_exhaustive()
    }
}

/// Feed `stream` to a new server session built from `cfg`, `psk` and `seed`, cut into pieces
/// ending at the offsets in `cuts` (and at the end), then signal end of stream. The server's
/// own output is produced and discarded; its application is a default [`MemApp`].
pub fn replay_server(
    cfg: &Config,
    psk: &Psk,
    seed: [u8; 32],
    stream: &[u8],
    cuts: &[usize],
) -> Replay {
    let now = START;
    let mut s = Session::server(cfg, psk, seed, now);
    let mut app = MemApp::new();
    let mut out = alloc::vec![0u8; MAX_RECORD];
    let mut inbox: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut consumed_total = 0;
    let mut committed = Vec::new();
    let mut error = None;
    let mut ends: Vec<usize> = cuts.iter().copied().filter(|&c| c < stream.len()).collect();
    ends.push(stream.len());
    'feed: for end in ends {
        if end < fed {
            continue;
        }
        inbox.extend_from_slice(&stream[fed..end]);
        fed = end;
        loop {
            // One record at a time, so the application reacts between records as it would
            // have live (an honest client sends DATA only after the server's Accept left).
            let limit = if consumed_total < HANDSHAKE_LEN {
                inbox.len().min(HANDSHAKE_LEN - consumed_total)
            } else if inbox.len() < 4 {
                inbox.len()
            } else {
                let len = u32::from_be_bytes([0, inbox[1], inbox[2], inbox[3]]) as usize;
                inbox.len().min(4 + len)
            };
            let r = s.handle_input(now, &mut inbox[..limit]);
            let n = match r {
                Ok(n) => n,
                Err(e) => {
                    error = Some(e);
                    break 'feed;
                }
            };
            inbox.drain(..n);
            consumed_total += n;
            let before = app.committed.len();
            let progress = app.pump(&mut s);
            for p in &app.committed[before..] {
                committed.push((p.clone(), consumed_total));
            }
            while let Ok(k) = s.poll_transmit(now, &mut out) {
                if k == 0 {
                    break;
                }
            }
            if let Some(e) = s.error() {
                error = Some(e);
                break 'feed;
            }
            if n == 0 && !progress {
                break;
            }
        }
    }
    if error.is_none() {
        error = s.handle_eof(now).err();
    }
    Replay {
        error,
        committed,
        app,
    }
}
