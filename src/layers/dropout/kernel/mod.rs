//! The fast train-phase dropout kernel: the mask of [`super::mask`], computed
//! window by window and applied with a branch-free select.
//!
//! Invariant served: for every seed, call, threshold and length the kernel's output
//! (and drop count) is bit-identical to
//! [`reference_mask`](super::mask::reference_mask) followed by the plain select
//! `drop ? +0.0 : x * scale`, and it depends only on (seed, call, element index):
//! never on chunking, thread count or instruction set.
//!
//! Design, one idea per module:
//! - `Plan` (here): what the threshold asks for. Keep all, drop all, a few random
//!   bits per cell with no ties (`packed`: rates 1/2, 1/4, 3/4, multiples of
//!   1/16), or the byte path of every other rate: one random byte per cell compared
//!   with the threshold's leading byte, ties decided from a second stream.
//! - Work proceeds in windows of [`TIE_WINDOW`] cells. A window starts on a
//!   ChaCha word boundary, so a part (a range of windows, `parts`) seeks once and
//!   reads on, and any split gives the same output.
//! - `streams`: the call's two ChaCha8 streams; their keystream comes from
//!   rand_chacha or from `keystream` (eight blocks at a time with AVX2, sixteen
//!   with AVX-512), the same bytes either way.
//! - `select`: the byte path's branch-free select, and the choice of driver by
//!   instruction set and element type. `ties`: finding the rare tie bytes
//!   (1/256) and deciding them with a mask, after the select.
//! - `fused`: for `f32`, drivers that run the select inside the keystream's
//!   rounds so the memory traffic overlaps the ChaCha arithmetic.
//! - [`isa`]: the instruction set is an [`Isa`] value that only CPU detection can
//!   create; the element type picks its select through `Element::as_f32_cells`,
//!   never by a cast.
//!
//! Every `unsafe` block here is a SIMD intrinsic, a raw pointer into the caller's
//! buffers, or a call that needs an instruction set, and states why it is sound.
//! Measurements and the history of the design are in `docs/KERNEL_NOTES.md`.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

use super::mask::{self, cell_bits, mask_rng, TIE_WINDOW};
use crate::error::Result;
use crate::tensor::{shape_mismatch, Element};
use streams::Streams;
use ties::BaseScan;

#[cfg(target_arch = "x86_64")]
mod driver;
mod fused;
pub mod isa;
#[cfg(target_arch = "x86_64")]
mod keystream;
mod packed;
mod parts;
mod select;
mod streams;
#[cfg(test)]
mod tests;
mod ties;

pub use isa::{Avx2, Avx512, Isa};

/// Primary-stream words per tie window (one byte per cell, four bytes per word).
const WINDOW_WORDS: u128 = (TIE_WINDOW / 4) as u128;

/// What a threshold means for the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// `threshold == 0`: no cell can drop.
    KeepAll,
    /// `threshold >= 2^32`: every cell drops.
    DropAll,
    /// Byte compare against `t_hi`; ties drop iff their 24-bit draw is below `t_lo`.
    Mixed { t_hi: u8, t_lo: u32 },
    /// `bits` (1, 2 or 4) random bits per cell compared with `threshold`, no ties
    /// (see [`packed`]).
    Packed { bits: u32, threshold: u32 },
}

/// The mask of one call of a seeded dropout layer, ready to be applied fast.
///
/// Built from the same (seed, call, threshold) as
/// [`reference_mask`](super::mask::reference_mask) and bit-identical to it.
///
/// ```
/// use nncheck::layers::dropout::{drop_threshold, reference_mask};
/// use nncheck::layers::dropout::kernel::DropoutKernel;
/// let x: Vec<f32> = (0..10_000).map(|i| i as f32).collect();
/// let mut out = vec![0.0f32; x.len()];
/// let kernel = DropoutKernel::new(7, 3, drop_threshold(0.1));
/// let dropped = kernel.forward_into(&x, &mut out, 1.0 / 0.9).unwrap();
/// let mask = reference_mask(7, 3, drop_threshold(0.1), x.len());
/// assert_eq!(dropped, mask.iter().filter(|&&d| d).count() as u64);
/// for ((&o, &v), &d) in out.iter().zip(&x).zip(&mask) {
///     assert_eq!(o.to_bits(), if d { 0.0f32 } else { v * (1.0 / 0.9f32) }.to_bits());
/// }
/// ```
#[derive(Debug, Clone)]
pub struct DropoutKernel {
    /// The layer seed: `mask_rng(seed)` is the generator whose streams are read.
    seed: u64,
    /// The ChaCha key of `mask_rng(seed)` as little-endian words (SIMD keystreams).
    key: [u32; 8],
    call: u64,
    plan: Plan,
    /// The instruction set the kernel runs on.
    isa: Isa,
}

impl DropoutKernel {
    /// The kernel for call `call` of a layer seeded `seed`, dropping a cell with
    /// probability `threshold / 2^32` (see [`drop_threshold`](super::mask::drop_threshold)).
    pub fn new(seed: u64, call: u64, threshold: u64) -> Self {
        let plan = if threshold == 0 {
            Plan::KeepAll
        } else if threshold >= 1 << 32 {
            Plan::DropAll
        } else if let bits @ (1 | 2 | 4) = cell_bits(threshold) {
            Plan::Packed {
                bits,
                threshold: threshold as u32,
            }
        } else {
            Plan::Mixed {
                t_hi: (threshold >> 24) as u8,
                t_lo: (threshold & 0x00ff_ffff) as u32,
            }
        };
        let seed_bytes = mask_rng(seed).get_seed();
        let key = std::array::from_fn(|i| {
            u32::from_le_bytes([
                seed_bytes[4 * i],
                seed_bytes[4 * i + 1],
                seed_bytes[4 * i + 2],
                seed_bytes[4 * i + 3],
            ])
        });
        DropoutKernel {
            seed,
            key,
            call,
            plan,
            isa: Isa::detect(),
        }
    }

    /// This kernel on `isa` instead of the widest set detected (for tests and
    /// audits: the output is the same on every set). Only detection creates the
    /// SIMD variants, so `isa` is always one this CPU supports.
    ///
    /// ```
    /// use nncheck::layers::dropout::drop_threshold;
    /// use nncheck::layers::dropout::kernel::{DropoutKernel, Isa};
    /// let kernel = DropoutKernel::new(7, 0, drop_threshold(0.1));
    /// let portable = kernel.clone().with_isa(Isa::Portable);
    /// assert_eq!(portable.isa(), Isa::Portable);
    /// assert_eq!(kernel.mask(10_000), portable.mask(10_000));
    /// ```
    pub fn with_isa(mut self, isa: Isa) -> Self {
        self.isa = isa;
        self
    }

    /// The instruction set this kernel runs on.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Writes the dropout of `x` into `out` (`+0.0` where dropped, `x * scale` where
    /// kept) and returns how many cells were dropped. Single thread.
    ///
    /// A length mismatch is an [`Error::ShapeMismatch`](crate::Error::ShapeMismatch)
    /// and writes nothing.
    pub fn forward_into<F: Element>(&self, x: &[F], out: &mut [F], scale: F) -> Result<u64> {
        self.forward_into_chunked(x, out, scale, 1)
    }

    /// [`forward_into`](Self::forward_into) on the buffer itself.
    pub fn forward_in_place<F: Element>(&self, x: &mut [F], scale: F) -> Result<u64> {
        self.forward_in_place_chunked(x, scale, 1)
    }

    /// [`forward_into`](Self::forward_into) split into `parts` independent parts at
    /// tie-window boundaries (`0` counts as 1; more parts than windows are merged).
    /// Each part seeks the keystream itself, so the output is the same for every
    /// `parts`. The parts run in parallel: one scoped thread each, or on the rayon pool
    /// with the `rayon` feature.
    ///
    /// ```
    /// use nncheck::layers::dropout::kernel::DropoutKernel;
    /// let x = vec![1.0f32; 50_000];
    /// let k = DropoutKernel::new(1, 0, 1 << 31);
    /// let (mut a, mut b) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    /// k.forward_into_chunked(&x, &mut a, 2.0, 1).unwrap();
    /// k.forward_into_chunked(&x, &mut b, 2.0, 5).unwrap();
    /// assert_eq!(a, b);
    /// ```
    pub fn forward_into_chunked<F: Element>(
        &self,
        x: &[F],
        out: &mut [F],
        scale: F,
        parts: usize,
    ) -> Result<u64> {
        if x.len() != out.len() {
            return Err(shape_mismatch(
                "dropout kernel output buffer",
                format!("[{}] (the input's length)", x.len()),
                &[out.len()],
            ));
        }
        let part = parts::part_len(out.len(), parts);
        Ok(parts::run_parts(
            out,
            Some(x),
            part,
            |first_window, o, x| self.run(first_window, x, o, scale),
        ))
    }

    /// [`forward_in_place`](Self::forward_in_place) split into `parts`, as
    /// [`forward_into_chunked`](Self::forward_into_chunked).
    pub fn forward_in_place_chunked<F: Element>(
        &self,
        x: &mut [F],
        scale: F,
        parts: usize,
    ) -> Result<u64> {
        let part = parts::part_len(x.len(), parts);
        Ok(parts::run_parts(x, None, part, |first_window, o, _| {
            self.run(first_window, None, o, scale)
        }))
    }

    /// The mask of the first `cells` cells, `true` where dropped: the same values as
    /// [`reference_mask`](super::mask::reference_mask), computed window by window.
    ///
    /// ```
    /// use nncheck::layers::dropout::{drop_threshold, reference_mask};
    /// use nncheck::layers::dropout::kernel::DropoutKernel;
    /// let t = drop_threshold(0.3);
    /// assert_eq!(DropoutKernel::new(5, 2, t).mask(9000), reference_mask(5, 2, t, 9000));
    /// ```
    pub fn mask(&self, cells: usize) -> Vec<bool> {
        let mut mask = vec![false; cells];
        match self.plan {
            Plan::KeepAll => {}
            Plan::DropAll => mask.fill(true),
            Plan::Packed { bits, threshold } => packed::mask(self, bits, threshold, &mut mask),
            Plan::Mixed { t_hi, t_lo } => {
                let mut streams = self.streams(0);
                let mut window = [0u8; TIE_WINDOW];
                let mut positions = [0u16; TIE_WINDOW];
                for (w, cells) in mask.chunks_mut(TIE_WINDOW).enumerate() {
                    streams.fill_window(w, &mut window);
                    let bytes = &window[..cells.len()];
                    for (m, &b) in cells.iter_mut().zip(bytes.iter()) {
                        *m = b < t_hi;
                    }
                    if t_lo != 0 {
                        streams.resolve_ties(
                            BaseScan,
                            w,
                            bytes,
                            t_hi,
                            t_lo,
                            &mut positions,
                            &[],
                            |i, m| {
                                cells[i] |= m != 0;
                            },
                        );
                    }
                }
            }
        }
        mask
    }

    /// Writes the first `out.len()` primary random bytes of this call into `out`:
    /// the bytes the mask is drawn from. At most rates a cell takes one byte: cell
    /// `i` drops when `out[i]` is below the threshold's leading byte
    /// (`threshold >> 24`), stays when above, and on a tie reads a word of the tie
    /// stream. At rates whose threshold needs fewer bits ([`cell_bits`] 1, 2 or 4,
    /// e.g. 0.5) cell `i` takes bits `i * bits ..` of the same bytes (see
    /// [`reference_mask`](super::mask::reference_mask)). At rate 0 and rate 1 the
    /// mask needs no random bytes and ignores these.
    ///
    /// For audits (a drop decision can be checked by hand from its byte or bit), and
    /// for the benchmark: at one byte per cell this keystream is the part of the
    /// kernel's work that no select can avoid, so its time is the kernel's floor.
    /// Computed the way the byte path computes it, on the kernel's [`Isa`]; the
    /// bytes are the same on every machine, instruction set and path.
    ///
    /// ```
    /// use nncheck::layers::dropout::{drop_threshold, reference_mask};
    /// use nncheck::layers::dropout::kernel::DropoutKernel;
    /// let mut bytes = vec![0u8; 10_000];
    ///
    /// // Rate 0.3: a byte per cell, compared with the threshold's leading byte.
    /// let t = drop_threshold(0.3);
    /// DropoutKernel::new(3, 1, t).primary_bytes_into(&mut bytes);
    /// let mask = reference_mask(3, 1, t, bytes.len());
    /// let t_hi = (t >> 24) as u8;
    /// for (&b, &dropped) in bytes.iter().zip(&mask) {
    ///     if b != t_hi {
    ///         assert_eq!(dropped, b < t_hi);
    ///     }
    /// }
    ///
    /// // Rate 0.5: a bit per cell, least significant first; a zero bit drops.
    /// let t = drop_threshold(0.5);
    /// DropoutKernel::new(3, 1, t).primary_bytes_into(&mut bytes);
    /// let mask = reference_mask(3, 1, t, 8 * bytes.len());
    /// for (i, &dropped) in mask.iter().enumerate() {
    ///     assert_eq!(dropped, bytes[i / 8] >> (i % 8) & 1 == 0);
    /// }
    /// ```
    pub fn primary_bytes_into(&self, out: &mut [u8]) {
        self.streams(0).fill_cells(out);
    }

    /// The two keystreams of this call, sought to the start of window `first_window`.
    fn streams(&self, first_window: usize) -> Streams {
        let mut primary = mask_rng(self.seed);
        primary.set_stream(self.call.wrapping_mul(2));
        primary.set_word_pos(first_window as u128 * WINDOW_WORDS);
        let mut ties = mask_rng(self.seed);
        ties.set_stream(self.call.wrapping_mul(2).wrapping_add(1));
        Streams {
            primary,
            ties,
            first_window,
            key: self.key,
            stream: self.call.wrapping_mul(2),
            isa: self.isa,
        }
    }

    /// One part: the cells of `out` start at window `first_window`; `x` is the input
    /// when it is not `out` itself. Returns the drop count.
    fn run<F: Element>(
        &self,
        first_window: usize,
        x: Option<&[F]>,
        out: &mut [F],
        scale: F,
    ) -> u64 {
        match self.plan {
            Plan::KeepAll => {
                match x {
                    Some(x) => out.iter_mut().zip(x).for_each(|(o, &v)| *o = v * scale),
                    None => out.iter_mut().for_each(|o| *o *= scale),
                }
                0
            }
            Plan::DropAll => {
                out.fill(F::zero());
                out.len() as u64
            }
            Plan::Packed { bits, threshold } => {
                packed::run(self, bits, threshold, first_window, x, out, scale)
            }
            Plan::Mixed { t_hi, t_lo } => {
                let streams = self.streams(first_window);
                driver::dispatch(streams, x, out, scale, t_hi, t_lo)
            }
        }
    }
}
