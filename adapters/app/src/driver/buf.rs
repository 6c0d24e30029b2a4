//! A byte queue for socket input and output: bytes are appended at the end and consumed from
//! the front without shifting, and the room is zero-filled only when the buffer grows (not once
//! per read or record).

/// `data[start..end]` is pending; `data[end..]` is initialised room.
#[derive(Debug, Default)]
pub(crate) struct Buf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Buf {
    /// Whether the buffer holds memory (pending bytes or room).
    pub(crate) fn is_allocated(&self) -> bool {
        self.data.capacity() > 0
    }

    /// Pending bytes.
    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(crate) fn pending(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    pub(crate) fn pending_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.start..self.end]
    }

    /// Drop `n` pending bytes from the front.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n.min(self.len());
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// `want` bytes of room after the pending bytes, to fill and then [`commit`](Buf::commit).
    /// Pending bytes move to the front only when the room behind them is short, so the buffer
    /// never holds more than `len() + want` bytes.
    pub(crate) fn room(&mut self, want: usize) -> &mut [u8] {
        if self.data.len() < self.end + want && self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.data.len() < self.end + want {
            self.data.resize(self.end + want, 0);
        }
        &mut self.data[self.end..self.end + want]
    }

    /// `n` bytes of the room were filled: they are pending now.
    pub(crate) fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.data.len());
    }

    /// Take `data[at..end]` as the next pending bytes without copying them (a buffer filled
    /// elsewhere, with `at` bytes of initialised headroom): the bytes still pending here move
    /// into the headroom in front of them, and the buffer given up is returned for reuse. If
    /// they do not fit there, `data[at..end]` is copied in instead and `data` comes back.
    pub(crate) fn adopt(&mut self, mut data: Vec<u8>, at: usize, end: usize) -> Vec<u8> {
        let pending = self.len();
        if pending > at || at > end || end > data.len() {
            let bytes = &data[at.min(end)..end.min(data.len())];
            self.room(bytes.len()).copy_from_slice(bytes);
            self.commit(bytes.len());
            return data;
        }
        data[at - pending..at].copy_from_slice(self.pending());
        let old = core::mem::replace(&mut self.data, data);
        self.start = at - pending;
        self.end = end;
        old
    }

    /// Give the memory back if nothing is pending (an idle connection keeps no buffer).
    pub(crate) fn release_if_empty(&mut self) {
        if self.is_empty() {
            *self = Buf::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_consume_and_compact() {
        let mut b = Buf::default();
        b.room(4).copy_from_slice(b"abcd");
        b.commit(4);
        assert_eq!(b.pending(), b"abcd");
        b.consume(1);
        assert_eq!(b.pending(), b"bcd");
        // Room behind the pending bytes is short: they move to the front instead of growing.
        let cap = b.data.len();
        b.room(1)[0] = b'e';
        b.commit(1);
        assert_eq!(b.pending(), b"bcde");
        assert_eq!(b.data.len(), cap, "compacted, not grown");
        b.pending_mut()[0] = b'B';
        b.consume(2);
        assert_eq!(b.pending(), b"de");
        // A partly used room: only what was committed is pending.
        b.room(10)[..3].copy_from_slice(b"fgh");
        b.commit(3);
        assert_eq!(b.pending(), b"defgh");
        assert!(b.data.len() <= b.len() + 10);
        b.consume(100);
        assert!(b.is_empty());
        assert_eq!((b.start, b.end), (0, 0));
        assert!(b.is_allocated());
        b.release_if_empty();
        assert!(!b.is_allocated());
    }

    #[test]
    fn adopt_moves_pending_bytes_into_the_headroom() {
        let mut b = Buf::default();
        b.room(5).copy_from_slice(b"..abc");
        b.commit(5);
        b.consume(2);
        // 4 bytes of headroom, then 3 filled bytes and 2 of room.
        let mut filled = vec![0u8; 9];
        filled[4..7].copy_from_slice(b"def");
        let old = b.adopt(filled, 4, 7);
        assert_eq!(b.pending(), b"abcdef");
        assert_eq!(old.len(), 5, "the old buffer comes back for reuse");
        assert_eq!(b.data.len(), 9, "adopted, not copied");
        // Room after the adopted bytes is usable as before.
        b.room(2).copy_from_slice(b"gh");
        b.commit(2);
        assert_eq!(b.pending(), b"abcdefgh");
        // Too little headroom for what is pending: copied instead, the buffer comes back.
        let mut filled = vec![0u8; 4];
        filled[1..3].copy_from_slice(b"ij");
        let back = b.adopt(filled, 1, 3);
        assert_eq!(back.len(), 4);
        assert_eq!(b.pending(), b"abcdefghij");
        // An empty buffer adopts with no headroom at all.
        let mut e = Buf::default();
        let back = e.adopt(b"xyz".to_vec(), 0, 3);
        assert!(back.is_empty());
        assert_eq!(e.pending(), b"xyz");
    }

    #[test]
    fn release_keeps_pending_bytes() {
        let mut b = Buf::default();
        b.room(3).copy_from_slice(b"xyz");
        b.commit(3);
        b.release_if_empty();
        assert_eq!(b.pending(), b"xyz");
    }
}
