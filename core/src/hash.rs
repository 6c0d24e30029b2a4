//! Whole-file and prefix hashing (BLAKE3).

/// A BLAKE3 hasher that also counts the bytes it has seen.
///
/// Adapters use it to hash the prefix of a file they already hold (the receiver's partial
/// file before `accept`, the sender's first `resume_from` bytes before `start`); the session
/// then keeps hashing the rest of the file through the same state, so the whole-file hash costs
/// one pass.
#[derive(Clone, Debug, Default)]
pub struct FileHasher {
    inner: blake3::Hasher,
    len: u64,
}

impl FileHasher {
    /// An empty hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
        self.len += data.len() as u64;
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes were fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The hash of the bytes fed so far (the hasher can keep going).
    pub fn finalize(&self) -> [u8; 32] {
        *self.inner.finalize().as_bytes()
    }
}

/// BLAKE3 of `data` in one call.
pub fn hash(data: &[u8]) -> [u8; 32] {
    *blake3::hash(data).as_bytes()
}
