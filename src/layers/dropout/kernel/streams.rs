//! The two ChaCha8 streams of one call: the primary stream, read a window of
//! bytes at a time, and the tie stream (see [`super::ties`]).
//!
//! The primary keystream of a window is the same bytes from every source: the
//! AVX-512 or AVX2 keystream when the kernel's [`Isa`] has it, else rand_chacha's
//! generator, which stands sought to the part's first window.

use super::mask::TIE_WINDOW;
use super::Isa;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The two ChaCha8 streams of a call and the window the primary one stands at.
// Elsewhere than x86-64 only rand_chacha's generators are read.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(super) struct Streams {
    /// rand_chacha's generator on the primary stream, sought to `first_window`.
    pub(super) primary: ChaCha8Rng,
    /// rand_chacha's generator on the tie stream (sought per window on demand).
    pub(super) ties: ChaCha8Rng,
    pub(super) first_window: usize,
    /// The key and primary stream number, for the SIMD keystreams.
    pub(super) key: [u32; 8],
    pub(super) stream: u64,
    /// The instruction set the keystream and selects may use.
    pub(super) isa: Isa,
}

impl Streams {
    /// Fills `bytes` with the primary bytes of window `local` (relative to
    /// `first_window`); windows must be asked for in order, each once. Past the end
    /// of a short last window the bytes are simply the keystream that follows.
    #[inline(always)]
    pub(super) fn fill_window(&mut self, local: usize, bytes: &mut [u8; TIE_WINDOW]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(avx512) = self.isa.avx512() {
            let block = ((self.first_window + local) * (TIE_WINDOW / 64)) as u64;
            super::keystream::avx512::keystream(avx512, &self.key, self.stream, block, bytes);
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(avx2) = self.isa.avx2() {
            let block = ((self.first_window + local) * (TIE_WINDOW / 64)) as u64;
            super::keystream::avx2::keystream(avx2, &self.key, self.stream, block, bytes);
            return;
        }
        let _ = local;
        self.primary.fill_bytes(bytes);
    }

    /// Fills `out` with the primary bytes of its cells, window by window from
    /// `first_window` (the short last window through a buffer).
    pub(super) fn fill_cells(&mut self, out: &mut [u8]) {
        let (windows, tail) = out.as_chunks_mut::<TIE_WINDOW>();
        for (local, window) in windows.iter_mut().enumerate() {
            self.fill_window(local, window);
        }
        if !tail.is_empty() {
            let mut last = [0u8; TIE_WINDOW];
            self.fill_window(windows.len(), &mut last);
            tail.copy_from_slice(&last[..tail.len()]);
        }
    }
}
