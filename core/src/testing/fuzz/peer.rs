//! A scripted peer that holds the session keys: it runs a genuine handshake against the
//! session under test, then seals whatever frames the fuzz input asks for, and opens and checks
//! everything the session sends back.

use alloc::collections::btree_map::Entry;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::checked::FileEnds;
use super::handshake::content;
use crate::CHUNK;
use crate::compress::{Deflater, Inflater};
use crate::config::Config;
use crate::hash::{FileHasher, hash};
use crate::record::keys::DirectionKeys;
use crate::record::stream::{HEADER_LEN, MAX_PLAINTEXT, OVERHEAD, RecordOpener, RecordSealer};
use crate::session::handshake::{Established, Handshake, Transport};
use crate::testing::{MemApp, test_psk};
use crate::wire::{
    CONTROL_HEADER_LEN, Codec, Control, Frame, MAX_CONTROL_LEN, decode_frame, encode_control,
    encode_data_header,
};

/// The peer's session seed.
const PEER_SEED: [u8; 32] = [0x9A; 32];
/// Largest file size the peer computes real hashes for (bigger sizes get a made-up hash).
const HASHABLE: u64 = 1 << 20;

/// A file the peer offered.
struct MyFile {
    tag: u8,
    size: Option<u64>,
    next: u64,
    /// The session answered the offer (`Accept` or `Reject`).
    answered: bool,
    ended: bool,
}

/// A file the session under test offered.
struct TheirFile {
    id: u32,
    path: String,
    size: Option<u64>,
    hash: Option<[u8; 32]>,
    /// Our `Accept` went out, resuming at this offset.
    accepted: Option<u64>,
    /// Next DATA offset, once DATA started.
    next: Option<u64>,
    /// DATA started at offset 0: `hasher` holds the whole file so far.
    from_zero: bool,
    hasher: FileHasher,
    ended: bool,
}

/// The scripted peer.
pub(super) struct Peer {
    /// The session under test is a server (this peer is its client).
    target_is_server: bool,
    sealer: RecordSealer,
    opener: RecordOpener,
    /// What the session under test advertised.
    target_max_plaintext: usize,
    /// We advertised DEFLATE.
    we_inflate: bool,
    /// Bytes on their way to the session, not delivered yet.
    pub(super) wire: Vec<u8>,
    /// Frames of the record being built.
    pending: Vec<u8>,
    from_target: Vec<u8>,
    target_fin: bool,
    saw_first_frame: bool,
    my_files: BTreeMap<u32, MyFile>,
    /// Offers of ids still open when we sent them again (the session fails them as duplicates
    /// unless the first one is over by the time they arrive).
    queued_offers: BTreeMap<u32, VecDeque<MyFile>>,
    their_files: Vec<TheirFile>,
    /// Accepts we sent for ids the session had not offered yet (as far as we had seen): the
    /// offer may still arrive before them.
    early_accepts: BTreeMap<u32, u64>,
    /// Requests we made and the session has not finished answering.
    /// Our requests the session has not answered with `Done`, with how many times each id was
    /// sent (an id may be reused once its `Done` is on the way, so a second use can be open).
    my_reqs: BTreeMap<u32, u32>,
    /// Requests the session made (open until we send `Done`).
    their_reqs: Vec<u32>,
    /// Every FileEnd we sent.
    pub(super) file_ends: FileEnds,
    /// Bytes the bookkeeping does not know went to the session (raw frames, raw or tampered
    /// wire bytes: under the null AEAD they open). From then on only the structure of what
    /// the session sends is checked, not how it answers.
    pub(super) unscripted: bool,
    inflater: Inflater,
    scratch: Vec<u8>,
}

/// An id from a list the peer knows (`sel` indexes it), or a raw small id when `sel` is high or
/// the list is empty: unknown ids stay reachable.
fn pick(list: &[u32], sel: u8) -> u32 {
    if sel < 0xF0 && !list.is_empty() {
        list[usize::from(sel) % list.len()]
    } else {
        u32::from(sel & 0x0F)
    }
}

fn frame_bytes(msg: &Control) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; CONTROL_HEADER_LEN + MAX_CONTROL_LEN];
    let n = encode_control(msg, &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn whole_hash(tag: u8, size: u64) -> [u8; 32] {
    if size > HASHABLE {
        return [0xAB; 32];
    }
    let mut h = FileHasher::new();
    let mut buf = [0u8; 4096];
    let mut off = 0;
    while off < size {
        let n = (size - off).min(buf.len() as u64) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = content(tag, off + i as u64);
        }
        h.update(&buf[..n]);
        off += n as u64;
    }
    h.finalize()
}

impl Peer {
    /// Keys from a finished handshake. `max_plaintext` is what we advertised.
    fn from_established(
        target_is_server: bool,
        est: Established,
        interval: u64,
        max_plaintext: usize,
        we_inflate: bool,
        wire: Vec<u8>,
    ) -> Self {
        Peer {
            target_is_server,
            sealer: RecordSealer::new(DirectionKeys::new(*est.send_secret, interval)),
            opener: RecordOpener::new(
                DirectionKeys::new(*est.recv_secret, interval),
                max_plaintext,
            ),
            target_max_plaintext: est.peer.max_plaintext,
            we_inflate,
            wire,
            pending: Vec::new(),
            from_target: Vec::new(),
            target_fin: false,
            saw_first_frame: false,
            my_files: BTreeMap::new(),
            queued_offers: BTreeMap::new(),
            their_files: Vec::new(),
            early_accepts: BTreeMap::new(),
            my_reqs: BTreeMap::new(),
            their_reqs: Vec::new(),
            file_ends: BTreeMap::new(),
            unscripted: false,
            inflater: Inflater::new(),
            scratch: vec![0u8; CHUNK],
        }
    }

    /// A client peer for a server under test: its first flight is in `wire`; `finish` with the
    /// server's reply.
    pub(super) fn client_hello(cfg: &Config) -> (Handshake, Vec<u8>) {
        let mut hs = Handshake::client(Transport::Stream, &cfg.clamped(), &test_psk(), PEER_SEED)
            .expect("a client handshake with a valid config starts");
        let first = core::mem::take(&mut hs.out);
        (hs, first)
    }

    /// Complete a client peer's handshake with the server's reply.
    pub(super) fn client_finish(mut hs: Handshake, reply: &[u8], cfg: &Config) -> Self {
        let cfg = cfg.clamped();
        let (_, est) = hs
            .handle_input(reply)
            .expect("the server under test answers a genuine client");
        let est = est.expect("the server's reply completes the handshake");
        Self::from_established(
            true,
            est,
            cfg._internal_rekey_interval,
            cfg.max_plaintext,
            cfg.accept_compression,
            Vec::new(),
        )
    }

    /// A server peer answering a client under test's first flight.
    pub(super) fn server(cfg: &Config, client_first: &[u8]) -> Self {
        let cfg = cfg.clamped();
        let mut hs = Handshake::server(Transport::Stream, &cfg, &test_psk(), PEER_SEED);
        let (_, est) = hs
            .handle_input(client_first)
            .expect("the client under test starts a genuine handshake");
        let est = est.expect("message 1 completes the server's handshake");
        let reply = core::mem::take(&mut hs.out);
        Self::from_established(
            false,
            est,
            cfg._internal_rekey_interval,
            cfg.max_plaintext,
            cfg.accept_compression,
            reply,
        )
    }

    // ---- sending ------------------------------------------------------------------------

    /// Add raw frame bytes to the record being built (sealing the current one first if the
    /// frame would not fit the session's advertised limit).
    pub(super) fn push_frame(&mut self, frame: &[u8]) {
        let limit = self.target_max_plaintext.min(MAX_PLAINTEXT);
        if !self.pending.is_empty() && self.pending.len() + frame.len() > limit {
            self.seal(false);
        }
        let room = MAX_PLAINTEXT - self.pending.len();
        self.pending
            .extend_from_slice(&frame[..frame.len().min(room)]);
    }

    /// Seal the frames built so far into one record (no-op if none, or after our FINAL).
    pub(super) fn seal(&mut self, fin: bool) {
        if self.pending.is_empty() || self.sealer.is_finished() {
            return;
        }
        let n = self.pending.len();
        let mut buf = vec![0u8; n + OVERHEAD];
        buf[HEADER_LEN..HEADER_LEN + n].copy_from_slice(&self.pending);
        let len = self
            .sealer
            .seal(&mut buf, n, fin)
            .expect("fuzz inputs never reach the epoch cap");
        self.wire.extend_from_slice(&buf[..len]);
        self.pending.clear();
    }

    /// A CONTROL frame into the current record (dropped if it cannot be encoded).
    pub(super) fn control(&mut self, msg: &Control) {
        if let Some(f) = frame_bytes(msg) {
            self.push_frame(&f);
        }
    }

    fn their_ids(&self) -> Vec<u32> {
        self.their_files.iter().map(|f| f.id).collect()
    }

    fn their_file(&mut self, id: u32) -> Option<&mut TheirFile> {
        self.their_files.iter_mut().rev().find(|f| f.id == id)
    }

    pub(super) fn start(&mut self) {
        self.control(&Control::Start);
    }

    pub(super) fn ping(&mut self) {
        self.control(&Control::Ping);
    }

    pub(super) fn close(&mut self, code: crate::wire::CloseCode) {
        self.control(&Control::Close { code });
    }

    /// Offer file `id`: content tag `tag`, at `path`.
    pub(super) fn offer(&mut self, mut offer: crate::wire::Offer, tag: u8, with_hash: bool) {
        if with_hash {
            offer.hash = Some(match offer.size {
                Some(s) => whole_hash(tag, s),
                None => [0x11; 32],
            });
        }
        let file = MyFile {
            tag,
            size: offer.size,
            next: 0,
            answered: false,
            ended: false,
        };
        match self.my_files.entry(offer.id) {
            Entry::Occupied(_) => self
                .queued_offers
                .entry(offer.id)
                .or_default()
                .push_back(file),
            Entry::Vacant(v) => {
                v.insert(file);
            }
        }
        self.control(&Control::Offer(offer));
    }

    /// The request id `sel` of ours, for an `Offer` answering it.
    pub(super) fn their_request(&self, sel: u8) -> u32 {
        pick(&self.their_reqs, sel)
    }

    /// DATA for our file `id`: `len` bytes (0: a whole chunk, or what is left) at `offset`
    /// (default: where the file stands; nothing if the file is complete).
    pub(super) fn data(
        &mut self,
        id: u32,
        offset: Option<u64>,
        len: u16,
        deflate: bool,
        corrupt: bool,
    ) {
        let (tag, size, next) = self
            .my_files
            .get(&id)
            .map_or((0, None, 0), |f| (f.tag, f.size, f.next));
        let off = offset.unwrap_or(next);
        let mut plain_len = if len == 0 {
            CHUNK as u64
        } else {
            u64::from(len)
        };
        if offset.is_none()
            && let Some(left) = size.map(|s| s.saturating_sub(off))
        {
            // Where the file stands: nothing left is nothing sent (explicit offsets and
            // lengths still reach past the end).
            if left == 0 {
                return;
            }
            plain_len = plain_len.min(left);
        }
        let plain: Vec<u8> = (0..plain_len).map(|i| content(tag, off + i)).collect();
        let (codec, mut body) = if deflate {
            let mut out = vec![0u8; CHUNK];
            let body = match Deflater::new(crate::compress::LEVEL).compress(&plain, &mut out) {
                Some(n) => out[..n].to_vec(),
                None => miniz_oxide::deflate::compress_to_vec(&plain, 1),
            };
            (Codec::Deflate, body)
        } else {
            (Codec::Stored, plain)
        };
        if corrupt && !body.is_empty() {
            let i = body.len() / 2;
            body[i] ^= 0x55;
        }
        let mut f = vec![0u8; crate::wire::DATA_HEADER_LEN];
        let _ = encode_data_header(&mut f, id, off, codec, plain_len as u32, body.len() as u32);
        f.extend_from_slice(&body);
        self.push_frame(&f);
        if let Some(file) = self.my_files.get_mut(&id) {
            file.next = off.saturating_add(plain_len);
        }
    }

    /// FileEnd for our file `id` (default size: where the file stands), with the true hash of
    /// its content or a wrong one.
    pub(super) fn file_end(&mut self, id: u32, size: Option<u64>, good_hash: bool) {
        let (tag, next) = self.my_files.get(&id).map_or((0, 0), |f| (f.tag, f.next));
        let size = size.unwrap_or(next);
        let mut hash = whole_hash(tag, size);
        if !good_hash {
            hash[0] ^= 1;
        }
        self.file_ends.entry(id).or_default().push((size, hash));
        if let Some(f) = self.my_files.get_mut(&id) {
            f.ended = true;
        }
        self.control(&Control::FileEnd { id, size, hash });
    }

    /// Accept the session's file `sel`, resuming at `resume_from` with the true prefix hash
    /// (from the session's own application) or a wrong one.
    pub(super) fn accept(&mut self, sel: u8, resume_from: u64, good_prefix: bool, app: &MemApp) {
        let id = pick(&self.their_ids(), sel);
        let mut prefix_hash = [1u8; 32];
        if let Some(f) = self.their_file(id) {
            if good_prefix
                && let Some(data) = app.files.get(&f.path)
                && let Some(prefix) = data.get(..resume_from as usize)
            {
                prefix_hash = hash(prefix);
            }
            if f.accepted.is_none() {
                f.accepted = Some(resume_from);
            }
        } else {
            self.early_accepts.entry(id).or_insert(resume_from);
        }
        self.control(&Control::Accept {
            id,
            resume_from,
            prefix_hash,
        });
    }

    /// An answer about the session's file `sel` (`Reject`, `Ack`, `CommitFailed`).
    pub(super) fn answer(&mut self, sel: u8, make: impl FnOnce(u32) -> Control) {
        let id = pick(&self.their_ids(), sel);
        self.control(&make(id));
    }

    /// A request of ours.
    pub(super) fn request(&mut self, req: u32, kind: crate::wire::RequestKind) {
        *self.my_reqs.entry(req).or_default() += 1;
        self.control(&Control::Request { req, kind });
    }

    /// An answer to the session's request `sel` (`Listing`, `Done`).
    pub(super) fn answer_request(&mut self, sel: u8, make: impl FnOnce(u32) -> Control) {
        let req = pick(&self.their_reqs, sel);
        let msg = make(req);
        if matches!(msg, Control::Done { .. }) {
            self.their_reqs.retain(|r| *r != req);
        }
        self.control(&msg);
    }

    pub(super) fn raw_frame(&mut self, bytes: &[u8]) {
        self.unscripted |= !bytes.is_empty();
        self.push_frame(bytes);
    }

    // ---- receiving ----------------------------------------------------------------------

    /// Bytes the session under test sent: every record must open and hold valid frames that
    /// an honest peer would send.
    pub(super) fn receive(&mut self, bytes: &[u8]) {
        assert!(!self.target_fin, "bytes after the session's FINAL record");
        self.from_target.extend_from_slice(bytes);
        loop {
            let mut buf = core::mem::take(&mut self.from_target);
            let opened = match self.opener.open(&mut buf) {
                Ok(Some(o)) => o,
                Ok(None) => {
                    self.from_target = buf;
                    return;
                }
                Err(e) => panic!("the session sent a record that does not open: {e:?}"),
            };
            let pt = buf[opened.plaintext.clone()].to_vec();
            self.from_target = buf[opened.consumed..].to_vec();
            self.check_record(&pt, opened.fin);
            if opened.fin {
                self.target_fin = true;
                assert!(
                    self.from_target.is_empty(),
                    "bytes after the session's FINAL"
                );
                return;
            }
        }
    }

    fn check_record(&mut self, pt: &[u8], fin: bool) {
        assert!(!pt.is_empty(), "empty record");
        let mut pos = 0;
        let mut ends_with_close = false;
        while pos < pt.len() {
            let (frame, n) = decode_frame(&pt[pos..])
                .unwrap_or_else(|e| panic!("the session sent a bad frame: {e:?}"))
                .expect("the session sent a frame cut by its record");
            pos += n;
            let last = pos == pt.len();
            ends_with_close = matches!(frame, Frame::Control(Control::Close { .. }));
            let first = !self.saw_first_frame;
            self.saw_first_frame = true;
            if !self.target_is_server && first {
                assert_eq!(
                    frame,
                    Frame::Control(Control::Start),
                    "client did not start with Start"
                );
                continue;
            }
            match frame {
                Frame::Control(Control::Start) => panic!("Start from the wrong side or twice"),
                Frame::Control(Control::Ping) => {}
                Frame::Control(Control::Close { .. }) => {
                    assert!(fin && last, "Close outside the end of a FINAL record");
                }
                Frame::Data(d) => {
                    self.their_data(d.file_id, d.offset, d.codec, d.plain_len, d.body)
                }
                Frame::Control(_) if self.unscripted => {}
                Frame::Control(msg) => self.their_control(msg),
            }
        }
        assert!(
            !fin || ends_with_close,
            "a FINAL record does not end with Close"
        );
    }

    fn their_data(&mut self, id: u32, offset: u64, codec: Codec, plain_len: u32, body: &[u8]) {
        let we_inflate = self.we_inflate;
        let plain_len = plain_len as usize;
        let plain: Vec<u8> = match codec {
            Codec::Stored => body.to_vec(),
            Codec::Deflate => {
                assert!(
                    we_inflate,
                    "deflated DATA although we did not advertise DEFLATE"
                );
                let out = &mut self.scratch[..plain_len];
                self.inflater.inflate(body, out).unwrap_or_else(|e| {
                    panic!("the session sent a chunk that does not inflate: {e:?}")
                });
                out.to_vec()
            }
        };
        if self.unscripted {
            return;
        }
        let f = self
            .their_file(id)
            .unwrap_or_else(|| panic!("DATA for file {id} the session never offered"));
        let from = f
            .accepted
            .unwrap_or_else(|| panic!("DATA for file {id} before our Accept"));
        assert!(!f.ended, "DATA for file {id} after its FileEnd");
        match f.next {
            None => {
                assert!(
                    offset == from || offset == 0,
                    "first DATA of {id} at {offset}, resume {from}"
                );
                f.from_zero = offset == 0;
            }
            Some(next) => assert_eq!(offset, next, "non-contiguous DATA for {id}"),
        }
        let end = offset + plain.len() as u64;
        if let Some(size) = f.size {
            assert!(end <= size, "DATA for {id} past its size");
        }
        f.next = Some(end);
        if f.from_zero {
            f.hasher.update(&plain);
        }
    }

    fn their_control(&mut self, msg: Control) {
        match msg {
            Control::Offer(o) => {
                if let Some(r) = o.request {
                    assert!(
                        self.my_reqs.contains_key(&r),
                        "Offer answers request {r} we never made"
                    );
                }
                let accepted = self.early_accepts.remove(&o.id);
                self.their_files.push(TheirFile {
                    id: o.id,
                    path: o.path,
                    size: o.size,
                    hash: o.hash,
                    accepted,
                    next: None,
                    from_zero: false,
                    hasher: FileHasher::new(),
                    ended: false,
                });
            }
            Control::FileEnd { id, size, hash } => {
                let f = self
                    .their_file(id)
                    .unwrap_or_else(|| panic!("FileEnd for file {id} never offered"));
                let from = f
                    .accepted
                    .unwrap_or_else(|| panic!("FileEnd for {id} before Accept"));
                assert!(!f.ended, "two FileEnds for {id}");
                f.ended = true;
                assert_eq!(size, f.next.unwrap_or(from), "FileEnd size of {id}");
                if let Some(s) = f.size {
                    assert_eq!(size, s, "FileEnd size of {id} differs from its offer");
                }
                if f.from_zero || (from == 0 && f.next.is_none()) {
                    assert_eq!(
                        hash,
                        f.hasher.finalize(),
                        "FileEnd hash of {id} is not its bytes"
                    );
                }
                if let Some(h) = f.hash {
                    assert_eq!(hash, h, "FileEnd hash of {id} differs from its offer");
                }
            }
            Control::Abort { id, .. } => {
                if let Some(f) = self.their_file(id) {
                    f.ended = true;
                }
            }
            Control::Accept {
                id, resume_from, ..
            } => {
                let f = self.my_file(id, "Accept");
                assert!(!f.answered, "second answer to our offer {id}");
                f.answered = true;
                // Resume blindly where the session says it holds the prefix (its partial
                // may be wrong: then the whole-file hash must catch it). An explicit
                // offset 0 restarts.
                if f.next == 0 {
                    f.next = resume_from;
                }
            }
            Control::Reject { id, .. } => {
                let f = self.my_file(id, "Reject");
                assert!(!f.answered, "second answer to our offer {id}");
                self.offer_over(id);
            }
            Control::Ack { id } => {
                // The bytes behind the Ack are checked on the session's side: `Received`
                // only with the hash of the bytes read, and only a FileEnd's hash.
                let f = self.my_file(id, "Ack");
                assert!(f.answered && f.ended, "Ack for {id} before its FileEnd");
                assert!(self.file_ends.contains_key(&id));
                self.offer_over(id);
            }
            Control::CommitFailed { id, .. } => {
                let f = self.my_file(id, "CommitFailed");
                assert!(f.answered, "CommitFailed for {id} before Accept");
                self.offer_over(id);
            }
            Control::Request { req, .. } => self.their_reqs.push(req),
            Control::Listing { req, .. } => {
                assert!(
                    self.my_reqs.contains_key(&req),
                    "Listing for request {req} not open"
                );
            }
            Control::Done { req, .. } => {
                let open = self.my_reqs.get_mut(&req);
                let open = open.unwrap_or_else(|| panic!("Done for request {req} not open"));
                *open -= 1;
                if *open == 0 {
                    self.my_reqs.remove(&req);
                }
            }
            Control::Start | Control::Ping | Control::Close { .. } => {}
        }
    }

    /// Our offer `id` got its last answer; a later offer of the same id takes its place.
    fn offer_over(&mut self, id: u32) {
        self.my_files.remove(&id);
        if let Some(next) = self
            .queued_offers
            .get_mut(&id)
            .and_then(VecDeque::pop_front)
        {
            self.my_files.insert(id, next);
        }
    }

    fn my_file(&mut self, id: u32, what: &str) -> &mut MyFile {
        self.my_files
            .get_mut(&id)
            .unwrap_or_else(|| panic!("{what} for {id}, which we did not offer (or it ended)"))
    }
}
