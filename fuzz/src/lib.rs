//! Helpers shared by the fuzz targets (see `docs/fuzzing.md`).
//!
//! - [`Input`]: reads control bytes off the front of a fuzz input.
//! - [`stream`]: feeds bytes to a `tokio_util` decoder in arbitrary chunks and records what came
//!   out, so two chunkings of one input can be compared.
//! - [`fixup`]: recomputes the CRCs of WAL records and checkpoint headers, so that mutated inputs
//!   get past the checksums and reach the logic behind them.
//! - [`mem_fs`]: an in-memory [`rstmdb::checkpoint::StorageFs`] (the crate's `FaultFs` works on
//!   real files, too slow and too noisy for a fuzz loop).

pub mod fixup;
pub mod mem_fs;
pub mod stream;

/// A cursor over a fuzz input: control bytes first, then the data proper.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// The next byte, or 0 once the input is exhausted (short inputs still run).
    pub fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&first, rest)) => {
                self.bytes = rest;
                first
            }
            None => 0,
        }
    }

    /// A little-endian u16 from the next two bytes.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// Up to `len` bytes (fewer at the end of the input).
    pub fn take(&mut self, len: usize) -> &'a [u8] {
        let (head, rest) = self.bytes.split_at(len.min(self.bytes.len()));
        self.bytes = rest;
        head
    }

    /// Everything not read yet.
    pub fn rest(self) -> &'a [u8] {
        self.bytes
    }
}
