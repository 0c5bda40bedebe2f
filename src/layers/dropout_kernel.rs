//! The fast train-phase dropout kernel: the mask of [`crate::layers::dropout`],
//! computed window by window and applied with a branch-free select.
//!
//! Invariant served: for every seed, call, threshold and length the kernel's output
//! (and drop count) is bit-identical to [`reference_mask`](super::dropout::reference_mask)
//! followed by the plain select `drop ? +0.0 : x * scale`, and it depends only on
//! (seed, call, element index): never on chunking or thread count.
//!
//! How it is fast while staying exact:
//! - At rates whose threshold needs at most four bits (0.5; 0.25 and 0.75; the other
//!   multiples of 1/16) a cell draws one, two or four random bits and never ties:
//!   the submodule `packed` (an eighth of the keystream at rate 0.5). Its windows
//!   and parts work as below, with `bits / 8` of a byte per cell. The rest of this
//!   list is the byte path of every other rate.
//! - Work proceeds in windows of [`TIE_WINDOW`] cells. Window `w` reads primary bytes
//!   `w * 4096 ..` of ChaCha8 stream `2k`, i.e. words `w * 1024 ..` (4096 is a multiple
//!   of 4, so every window starts on a word boundary and the keystream can be sought
//!   there with `set_word_pos`). A part (a range of windows) seeks once, then reads on.
//! - One random byte per cell. On x86-64 with AVX-512 (F and BW) the primary
//!   keystream is computed here sixteen ChaCha8 blocks at a time, with AVX2 eight at a
//!   time (rand_chacha's `fill_bytes` elsewhere); it is the same keystream, checked
//!   byte for byte against rand_chacha in the unit tests.
//! - For `f32` with AVX-512 the keystream is not written out at all: the blocks are
//!   transposed in registers so one vector is the bytes of 64 consecutive cells, one
//!   byte compare gives their drop mask, and masked multiplies apply it. The select
//!   of one group of sixteen blocks is interleaved with the rounds of the next, so
//!   the memory traffic overlaps the keystream arithmetic instead of following it
//!   (measured sequentially the two simply added up, which is why the kernel ran at
//!   a third of a copy at cache-resident sizes).
//! - For `f32` with AVX2 only (no AVX-512), window `w`'s keystream is computed
//!   while window `w - 1`'s select runs in slices between its ChaCha rounds (two
//!   slices of 64 cells per double round), so here too the loads and stores overlap
//!   the arithmetic instead of following it. The window's bytes go through a 4 KiB
//!   buffer (there are only sixteen vector registers), read back from L1.
//! - The select is branch-free: the byte is compared with `t_hi` as a lane mask, and
//!   `x * scale` has its bits cleared under the mask ([`Element::zero_where`]), which
//!   is `+0.0` exactly. For `f64` the window loop is compiled a second time with
//!   AVX2 enabled and chosen at run time.
//! - Ties (`byte == t_hi`, probability 1/256) are fixed up afterwards. A tie can only
//!   drop when the low 24 bits of the threshold, `t_lo`, are non-zero (`r < t_lo`), so
//!   at rates such as 1/256 or 129/256 no tie is even looked for. Otherwise tie
//!   positions are collected with byte compares and move-masks, the `j`-th tie of
//!   window `w` reads word `j` of the window's tie run (stream `2k + 1`, words
//!   `w * 4096 ..`), and the result is applied with a mask, not a branch. The words
//!   come from rand_chacha sought once per window, except on the fused paths: with
//!   AVX-512 a four-block ChaCha8 per window, with AVX2 one eight-lane pass per
//!   block that gives the first 32 words of eight windows' runs at once (a window
//!   has 16 ties on average; the rare 33rd tie seeks rand_chacha). Seeking
//!   rand_chacha regenerates its four-block buffer and cost more than the whole
//!   byte select.
//! - Chunked execution ([`DropoutKernel::forward_into_chunked`]) splits the cells at
//!   window boundaries and seeks each part independently, so any split gives the same
//!   output. The parts run on their own threads (scoped threads, or the rayon pool
//!   with the cargo feature `rayon`).
//!
//! Throughput (single thread, this repository's `cargo bench --bench dropout`) of the
//! byte path is bounded by ChaCha8 itself. With AVX-512 (32 registers, so no spills, and a
//! rotate instruction) the keystream costs about what a copy does, and the fused,
//! pipelined select hides most of the memory traffic under it: at 1M f32
//! (cache-resident) the byte path ran at about 0.67 of a copy where no tie can drop
//! (rate 0.5, before that rate took the packed path) and 0.53 at rate 0.1, where
//! ties cost the difference (their tie bits, positions and fix-ups,
//! and one four-block tie-word computation per window). Folding the ties into the
//! drop masks before the select (deposit with `pdep`) was tried: a first version
//! measured slower at rate 0.1 than collecting positions after it, and a later one
//! (tie words a window ahead, about 0.56 of a copy at rate 0.1) was not kept: the
//! machines it could have been checked on again all lacked AVX-512.
//!
//! With AVX2 alone the vector pipes are most of the limit at cache-resident sizes.
//! The keystream by itself ([`DropoutKernel::primary_bytes_into`], the bench's
//! `keystream_into`) takes 1.1 to 1.4 times as long as a copy of the same cells
//! at 1M f32 (criterion means, and best-of timings) and keeps the pipes about 90%
//! busy (about 580 vector instructions per eight blocks, 2.6 per cycle where
//! independent ones reach 3.0 on the Zen 3 it was timed on). The select's five
//! instructions per eight cells therefore add to its time rather than hide under it:
//! selecting the same 4096 cells over and over (data in L1) while the keystream ran,
//! the loop took nearly as long as on 1M cells from L3. The pipes do not explain
//! everything: a select with the compare moved to transpose time (three instructions
//! per eight cells) should by that count have gained about a tenth, and measured no
//! faster. Fusing the select into the rounds and batching the tie words took the kernel
//! from 0.37 to 0.42 of a copy at rate 0.5 (then on the byte path) and from 0.26 to
//! 0.37 at rate 0.1 (criterion means, same machine, before and after), short of 0.6. At
//! 16M f32 both paths run at 0.73 to 1.16 of a copy, which memory bounds (the copy
//! itself took 10.9 to 14.6 ms on different days).
//!
//! The packed path needs an eighth of that keystream at rate 0.5, so its cost is
//! mostly the select's loads and stores: 0.73 to 0.82 of a copy at 1M f32 on the
//! AVX2 machine and 0.91 to 1.16 at 16M (criterion means over six runs), where the
//! byte path had measured 0.43 to 0.50 at 1M. Each window's bits are computed first
//! and then selected from L1, not fused: at rate 0.5 that is one group of eight
//! blocks per 4096 cells, little arithmetic to hide. AVX-512 machines run the same
//! AVX2 code for it; it has not been timed on one.

use crate::error::Result;
use crate::layers::dropout::{cell_bits, mask_rng, TIE_WINDOW};
use crate::tensor::{shape_mismatch, Element};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

mod packed;

/// Primary-stream words per tie window (one byte per cell, four bytes per word).
const WINDOW_WORDS: u128 = (TIE_WINDOW / 4) as u128;

/// Cells per tie-search block: ties are located through a 64-bit bit mask.
const TIE_BLOCK: usize = 64;

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
/// [`reference_mask`](super::dropout::reference_mask) and bit-identical to it.
///
/// ```
/// use nncheck::layers::dropout::{drop_threshold, reference_mask};
/// use nncheck::layers::dropout_kernel::DropoutKernel;
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
    /// The ChaCha key of `mask_rng(seed)` as little-endian words (AVX2 keystream).
    key: [u32; 8],
    call: u64,
    plan: Plan,
}

impl DropoutKernel {
    /// The kernel for call `call` of a layer seeded `seed`, dropping a cell with
    /// probability `threshold / 2^32` (see [`drop_threshold`](super::dropout::drop_threshold)).
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
        }
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
    /// use nncheck::layers::dropout_kernel::DropoutKernel;
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
        let part = part_len(out.len(), parts);
        Ok(run_parts(out, Some(x), part, |first_window, o, x| {
            self.run(first_window, x, o, scale)
        }))
    }

    /// [`forward_in_place`](Self::forward_in_place) split into `parts`, as
    /// [`forward_into_chunked`](Self::forward_into_chunked).
    pub fn forward_in_place_chunked<F: Element>(
        &self,
        x: &mut [F],
        scale: F,
        parts: usize,
    ) -> Result<u64> {
        let part = part_len(x.len(), parts);
        Ok(run_parts(x, None, part, |first_window, o, _| {
            self.run(first_window, None, o, scale)
        }))
    }

    /// The mask of the first `cells` cells, `true` where dropped: the same values as
    /// [`reference_mask`](super::dropout::reference_mask), computed window by window.
    ///
    /// ```
    /// use nncheck::layers::dropout::{drop_threshold, reference_mask};
    /// use nncheck::layers::dropout_kernel::DropoutKernel;
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
    /// [`reference_mask`](super::dropout::reference_mask)). At rate 0 and rate 1 the
    /// mask needs no random bytes and ignores these.
    ///
    /// For audits (a drop decision can be checked by hand from its byte or bit), and
    /// for the benchmark: at one byte per cell this keystream is the part of the
    /// kernel's work that no select can avoid, so its time is the kernel's floor.
    /// Computed the way the byte path computes it (AVX-512 or AVX2 where the CPU has
    /// them; the packed path uses AVX2 or rand_chacha); the bytes are the same on
    /// every machine and every path.
    ///
    /// ```
    /// use nncheck::layers::dropout::{drop_threshold, reference_mask};
    /// use nncheck::layers::dropout_kernel::DropoutKernel;
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
            avx2: avx2::detected(),
            avx512: avx512::detected(),
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
                select_dispatch(streams, x, out, scale, t_hi, t_lo)
            }
        }
    }
}

/// The two ChaCha8 streams of a call and the window the primary one stands at.
// Elsewhere than x86-64 only rand_chacha's generators are read.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Streams {
    /// rand_chacha's generator on the primary stream, sought to `first_window`.
    primary: ChaCha8Rng,
    /// rand_chacha's generator on the tie stream (sought per window on demand).
    ties: ChaCha8Rng,
    first_window: usize,
    /// The key and primary stream number, for the AVX2 keystream.
    key: [u32; 8],
    stream: u64,
    /// Whether the AVX2 keystream may be used (checked once, at run time).
    avx2: bool,
    /// Whether the AVX-512 keystream and fused select may be used (AVX-512F and BW).
    avx512: bool,
}

impl Streams {
    /// Fills `bytes` with the primary bytes of window `local` (relative to
    /// `first_window`); windows must be asked for in order, each once. Past the end
    /// of a short last window the bytes are simply the keystream that follows.
    #[inline(always)]
    fn fill_window(&mut self, local: usize, bytes: &mut [u8; TIE_WINDOW]) {
        #[cfg(target_arch = "x86_64")]
        if self.avx512 {
            let block = ((self.first_window + local) * (TIE_WINDOW / 64)) as u64;
            // SAFETY: `avx512` is only set when the CPU supports AVX-512F, BW and POPCNT.
            unsafe { avx512::keystream(&self.key, self.stream, block, bytes) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            let block = ((self.first_window + local) * (TIE_WINDOW / 64)) as u64;
            // SAFETY: `avx2` is only set when the CPU supports AVX2.
            unsafe { avx2::keystream(&self.key, self.stream, block, bytes) };
            return;
        }
        let _ = local;
        self.primary.fill_bytes(bytes);
    }

    /// Fills `out` with the primary bytes of its cells, window by window from
    /// `first_window` (the short last window through a buffer).
    fn fill_cells(&mut self, out: &mut [u8]) {
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

    /// Resolves the ties of window `local` (relative to `first_window`): for the
    /// `j`-th cell `i` of the window whose byte equals `t_hi`, calls
    /// `resolve(i, mask)` with `mask` all ones iff tie word `j` drops it
    /// (`word >> 8 < t_lo`), else zero. Returns how many ties dropped.
    ///
    /// Mostly branch-free, since ties are rare and unpredictable: tie positions are
    /// collected with byte compares and move-masks (a chunk's lowest tie is stored
    /// unconditionally; only chunks with two or more ties loop), then the window's
    /// tie words are read in order and applied with a mask.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)] // all per-window state, kept inline
    fn resolve_ties(
        &mut self,
        scan: impl TieScan,
        local: usize,
        bytes: &[u8],
        t_hi: u8,
        t_lo: u32,
        positions: &mut [u16; TIE_WINDOW],
        known: &[u32],
        resolve: impl FnMut(usize, u32),
    ) -> u32 {
        let mut n = 0usize;
        let mut collect = |mut ties: u64, block: usize| {
            let base = (block * TIE_BLOCK) as u16;
            // The slot at `n` is free (n < number of cells seen so far <= TIE_WINDOW).
            positions[n] = base + ties.trailing_zeros() as u16;
            n += usize::from(ties != 0);
            ties &= ties.wrapping_sub(1);
            while ties != 0 {
                positions[n] = base + ties.trailing_zeros() as u16;
                n += 1;
                ties &= ties - 1;
            }
        };
        let mut chunks = bytes.chunks_exact(TIE_BLOCK);
        for (block, chunk) in chunks.by_ref().enumerate() {
            let chunk: &[u8; TIE_BLOCK] = chunk.try_into().expect("exact chunk");
            collect(scan.bits64(chunk, t_hi), block);
        }
        if !chunks.remainder().is_empty() {
            collect(scan.bits(chunks.remainder(), t_hi), bytes.len() / TIE_BLOCK);
        }
        self.apply_ties(local, &positions[..n], t_lo, known, resolve)
    }

    /// The second half of [`resolve_ties`](Self::resolve_ties): `positions` are the
    /// window's tie cells in increasing order; the `j`-th reads tie word `j`, taken
    /// from `known` (the run's first words, when the caller computed them) or else
    /// from rand_chacha sought there.
    #[inline(always)]
    fn apply_ties(
        &mut self,
        local: usize,
        positions: &[u16],
        t_lo: u32,
        known: &[u32],
        mut resolve: impl FnMut(usize, u32),
    ) -> u32 {
        let mut dropped = 0u32;
        for (j, &i) in positions.iter().enumerate() {
            // The j-th tie of the window reads word j of the window's tie run.
            let word = match known.get(j) {
                Some(&word) => word,
                None => {
                    if j == known.len() {
                        let window = (self.first_window + local) as u128;
                        self.ties
                            .set_word_pos(window * TIE_WINDOW as u128 + j as u128);
                    }
                    self.ties.next_u32()
                }
            };
            let mask = 0u32.wrapping_sub(u32::from(word >> 8 < t_lo));
            resolve(usize::from(i), mask);
            dropped = dropped.wrapping_sub(mask);
        }
        dropped
    }
}

/// How tie bytes are found: bit `k` of the result is set iff `chunk[k] == t_hi`.
trait TieScan: Copy {
    /// The tie bits of one full block.
    fn bits64(self, chunk: &[u8; TIE_BLOCK], t_hi: u8) -> u64;

    /// The tie bits of a chunk of at most [`TIE_BLOCK`] bytes.
    #[inline(always)]
    fn bits(self, chunk: &[u8], t_hi: u8) -> u64 {
        match <&[u8; TIE_BLOCK]>::try_from(chunk) {
            Ok(full) => self.bits64(full, t_hi),
            Err(_) => {
                // A short last chunk: pad with a byte that is not a tie.
                let mut padded = [t_hi.wrapping_add(1); TIE_BLOCK];
                padded[..chunk.len()].copy_from_slice(chunk);
                self.bits64(&padded, t_hi)
            }
        }
    }
}

/// The baseline scan: SSE2 on x86-64, a plain loop elsewhere.
#[derive(Debug, Clone, Copy)]
struct BaseScan;

impl TieScan for BaseScan {
    #[inline(always)]
    fn bits64(self, chunk: &[u8; TIE_BLOCK], t_hi: u8) -> u64 {
        tie_bits64(chunk, t_hi)
    }
}

/// [`TieScan::bits64`] with four SSE2 byte compares and move-masks on x86-64.
#[inline(always)]
fn tie_bits64(chunk: &[u8; TIE_BLOCK], t_hi: u8) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        let mut bits = 0u64;
        for (k, part) in chunk.chunks_exact(16).enumerate() {
            // SAFETY: SSE2 is part of x86-64; `part` is 16 readable bytes.
            let m = unsafe {
                let v = _mm_loadu_si128(part.as_ptr().cast());
                _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(t_hi as i8)))
            };
            bits |= u64::from(m as u16) << (16 * k);
        }
        bits
    }
    #[cfg(not(target_arch = "x86_64"))]
    chunk
        .iter()
        .enumerate()
        .fold(0u64, |m, (k, &b)| m | (u64::from(b == t_hi) << k))
}

/// The per-window loop: draw the window's bytes, select, fix up ties.
#[inline(always)]
fn select_windows<F: Element>(
    scan: impl TieScan,
    mut streams: Streams,
    x: Option<&[F]>,
    out: &mut [F],
    scale: F,
    t_hi: u8,
    t_lo: u32,
) -> u64 {
    let mut window = [0u8; TIE_WINDOW];
    let mut positions = [0u16; TIE_WINDOW];
    let mut dropped = 0u64;
    for (w, o) in out.chunks_mut(TIE_WINDOW).enumerate() {
        streams.fill_window(w, &mut window);
        let bytes = &window[..o.len()];
        let xw = x.map(|x| &x[w * TIE_WINDOW..][..o.len()]);
        let count = select_window(
            &mut streams,
            scan,
            w,
            bytes,
            xw,
            o,
            scale,
            t_hi,
            t_lo,
            &mut positions,
        );
        dropped += u64::from(count);
    }
    dropped
}

/// One window (or a short last one) from its primary `bytes`: the select, then
/// the ties (read from rand_chacha); `x` is the window's input when it is not `o`
/// itself. Returns the drop count.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // all per-window state, kept inline
fn select_window<F: Element>(
    streams: &mut Streams,
    scan: impl TieScan,
    local: usize,
    bytes: &[u8],
    x: Option<&[F]>,
    o: &mut [F],
    scale: F,
    t_hi: u8,
    t_lo: u32,
    positions: &mut [u16; TIE_WINDOW],
) -> u32 {
    let mut count = match x {
        Some(x) => select_into(bytes, x, o, scale, t_hi),
        None => select_in_place(bytes, o, scale, t_hi),
    };
    if t_lo != 0 {
        count += streams.resolve_ties(scan, local, bytes, t_hi, t_lo, positions, &[], |i, m| {
            o[i] = o[i].zero_where(m);
        });
    }
    count
}

/// `out[i] = if bytes[i] < t_hi { +0.0 } else { x[i] * scale }`; the drop count.
///
/// Branch-free: the byte is widened and compared in 32 bits, giving an all-ones
/// lane mask where dropped; the product's bits are cleared under the mask (which
/// is `+0.0` exactly) and the mask's low bit is counted. This form vectorises to a
/// widen, a compare, a multiply and an and-not per vector.
#[inline(always)]
fn select_into<F: Element>(bytes: &[u8], x: &[F], out: &mut [F], scale: F, t_hi: u8) -> u32 {
    let mut dropped = 0u32;
    for ((o, &v), &b) in out.iter_mut().zip(x).zip(bytes) {
        let mask = drop_mask(b, t_hi);
        dropped = dropped.wrapping_sub(mask);
        *o = F::zero_where(v * scale, mask);
    }
    dropped
}

/// [`select_into`] on the buffer itself.
#[inline(always)]
fn select_in_place<F: Element>(bytes: &[u8], out: &mut [F], scale: F, t_hi: u8) -> u32 {
    let mut dropped = 0u32;
    for (o, &b) in out.iter_mut().zip(bytes) {
        let mask = drop_mask(b, t_hi);
        dropped = dropped.wrapping_sub(mask);
        *o = F::zero_where(*o * scale, mask);
    }
    dropped
}

/// All ones when `b < t_hi` (the cell drops on its byte), else zero.
#[inline(always)]
fn drop_mask(b: u8, t_hi: u8) -> u32 {
    ((i32::from(b) - i32::from(t_hi)) >> 31) as u32
}

/// [`select_windows`], compiled for AVX2 where the CPU has it (the select loop then
/// runs eight lanes wide; the keystream choice is made in [`Streams::fill_window`]).
fn select_dispatch<F: Element>(
    streams: Streams,
    x: Option<&[F]>,
    out: &mut [F],
    scale: F,
    t_hi: u8,
    t_lo: u32,
) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if streams.avx512 && std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>() {
        // SAFETY: `F` is `f32` (same type id), so these are the same slices and value
        // reinterpreted at their own type; nothing outlives the borrows taken here.
        let (x, out, scale) = unsafe {
            (
                x.map(|x| std::slice::from_raw_parts(x.as_ptr().cast::<f32>(), x.len())),
                std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<f32>(), out.len()),
                std::mem::transmute_copy::<F, f32>(&scale),
            )
        };
        return select_windows_avx512_f32(streams, x, out, scale, t_hi, t_lo);
    }
    #[cfg(target_arch = "x86_64")]
    if streams.avx2 && std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>() {
        // SAFETY: as above.
        let (x, out, scale) = unsafe {
            (
                x.map(|x| std::slice::from_raw_parts(x.as_ptr().cast::<f32>(), x.len())),
                std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<f32>(), out.len()),
                std::mem::transmute_copy::<F, f32>(&scale),
            )
        };
        // SAFETY: `avx2` is only set when the CPU supports AVX2.
        return unsafe { select_windows_avx2_f32(streams, x, out, scale, t_hi, t_lo) };
    }
    #[cfg(target_arch = "x86_64")]
    if streams.avx2 {
        // SAFETY: `avx2` is only set when the CPU supports AVX2.
        return unsafe { select_windows_avx2(streams, x, out, scale, t_hi, t_lo) };
    }
    select_windows(BaseScan, streams, x, out, scale, t_hi, t_lo)
}

/// The window loop for `f32` with AVX-512: each full window's keystream is computed
/// in registers and consumed there (byte compares into mask registers, masked
/// multiplies), so the bytes never pass through memory. A short last window takes
/// the buffered path, whose keystream is the AVX-512 one too.
#[cfg(target_arch = "x86_64")]
fn select_windows_avx512_f32(
    mut streams: Streams,
    x: Option<&[f32]>,
    out: &mut [f32],
    scale: f32,
    t_hi: u8,
    t_lo: u32,
) -> u64 {
    let full = out.len() / TIE_WINDOW;
    let (head, tail) = out.split_at_mut(full * TIE_WINDOW);
    let dst = head.as_mut_ptr();
    let src = match x {
        Some(x) => x[..full * TIE_WINDOW].as_ptr(),
        None => dst.cast_const(),
    };
    let block = (streams.first_window * (TIE_WINDOW / 64)) as u64;
    // SAFETY: `avx512` is only set when the CPU supports AVX-512F, BW and POPCNT;
    // `src` and `dst` each address `full` whole windows of f32 (the same ones when
    // in place, which the function allows).
    let mut dropped = unsafe {
        avx512::select_windows_f32(
            &streams.key,
            streams.stream,
            block,
            full,
            src,
            dst,
            scale,
            t_hi,
            t_lo,
            streams.stream.wrapping_add(1),
        )
    };
    if !tail.is_empty() {
        // A short last window: the buffered path (on the AVX-512 keystream).
        let mut window = [0u8; TIE_WINDOW];
        let mut positions = [0u16; TIE_WINDOW];
        streams.fill_window(full, &mut window);
        let bytes = &window[..tail.len()];
        let xt = x.map(|x| &x[full * TIE_WINDOW..]);
        let count = select_window(
            &mut streams,
            BaseScan,
            full,
            bytes,
            xt,
            tail,
            scale,
            t_hi,
            t_lo,
            &mut positions,
        );
        dropped += u64::from(count);
    }
    dropped
}

/// The window loop for `f32` with AVX2: window `w`'s keystream is computed while
/// window `w - 1`'s select runs in slices between its rounds (so the memory
/// traffic overlaps the arithmetic), then window `w - 1`'s ties are fixed up.
///
/// # Safety
/// The CPU must support AVX2.
///
/// # Panics
/// When `x` is shorter than `out` (the public entry points check lengths first).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn select_windows_avx2_f32(
    mut streams: Streams,
    x: Option<&[f32]>,
    out: &mut [f32],
    scale: f32,
    t_hi: u8,
    t_lo: u32,
) -> u64 {
    // SAFETY: this function only runs where AVX2 is supported.
    let scan = unsafe { avx2::Avx2Scan::new() };
    let full = out.len() / TIE_WINDOW;
    let (head, tail) = out.split_at_mut(full * TIE_WINDOW);
    // Every access to `head` below goes through `dst` (or `src` when in place),
    // so no new borrow of `head` invalidates them while the loop runs.
    let dst = head.as_mut_ptr();
    let src = match x {
        Some(x) => x[..full * TIE_WINDOW].as_ptr(),
        None => dst.cast_const(),
    };
    let mut buffers = [[0u8; TIE_WINDOW]; 2];
    // The keystream of window `full` (computed in the loop's last pass, while the
    // last whole window, if any, is selected): the bytes of the short last window.
    let mut last = [0u8; TIE_WINDOW];
    let mut positions = [0u16; TIE_WINDOW];
    let mut dropped = 0u64;
    let first_block = (streams.first_window * (TIE_WINDOW / 64)) as u64;
    let mut known = [[0u32; avx2::KNOWN_TIE_WORDS]; 8];
    for w in 0..=full {
        let (a, b) = buffers.split_at_mut(1);
        let (this, prev) = if w % 2 == 0 {
            (&mut a[0], &b[0])
        } else {
            (&mut b[0], &a[0])
        };
        let job = (w > 0).then(|| avx2::WindowSelect {
            bytes: prev,
            src: src.wrapping_add((w - 1) * TIE_WINDOW),
            dst: dst.wrapping_add((w - 1) * TIE_WINDOW),
            scale,
            t_hi,
        });
        let next = if w < full { this } else { &mut last };
        let block = first_block.wrapping_add((w * (TIE_WINDOW / 64)) as u64);
        // SAFETY: AVX2 is enabled here; the job's pointers address window `w - 1`,
        // a whole window of `src` and of `dst`.
        let count = unsafe {
            avx2::keystream_selecting::<true, TIE_WINDOW>(
                &streams.key,
                streams.stream,
                block,
                next,
                job.as_ref(),
            )
        };
        dropped += u64::from(count);
        if w > 0 && t_lo != 0 {
            let local = w - 1;
            if local % 8 == 0 {
                let first = (streams.first_window + local) as u64;
                // SAFETY: AVX2 is enabled here.
                unsafe {
                    avx2::tie_words8(
                        &streams.key,
                        streams.stream.wrapping_add(1),
                        first,
                        &mut known,
                    )
                };
            }
            // SAFETY: window `local` of `head`, reached through `dst` (see above);
            // nothing else touches it while `o` lives.
            let o =
                unsafe { std::slice::from_raw_parts_mut(dst.add(local * TIE_WINDOW), TIE_WINDOW) };
            let count = streams.resolve_ties(
                scan,
                local,
                prev,
                t_hi,
                t_lo,
                &mut positions,
                &known[local % 8],
                |i, m| {
                    o[i] = o[i].zero_where(m);
                },
            );
            dropped += u64::from(count);
        }
    }
    if !tail.is_empty() {
        let bytes = &last[..tail.len()];
        let xt = x.map(|x| &x[full * TIE_WINDOW..]);
        let count = select_window(
            &mut streams,
            scan,
            full,
            bytes,
            xt,
            tail,
            scale,
            t_hi,
            t_lo,
            &mut positions,
        );
        dropped += u64::from(count);
    }
    dropped
}

/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn select_windows_avx2<F: Element>(
    streams: Streams,
    x: Option<&[F]>,
    out: &mut [F],
    scale: F,
    t_hi: u8,
    t_lo: u32,
) -> u64 {
    // SAFETY: this function only runs where AVX2 is supported.
    let scan = unsafe { avx2::Avx2Scan::new() };
    select_windows(scan, streams, x, out, scale, t_hi, t_lo)
}

/// ChaCha's four constant words ("expand 32-byte k"), shared by the SIMD keystreams.
#[cfg(target_arch = "x86_64")]
const CHACHA_CONSTANTS: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// The low and high words of the 64-bit block counters `block .. block + N`, one
/// lane per block, wrapping like rand_chacha's counter.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn counter_words<const N: usize>(block: u64) -> ([u32; N], [u32; N]) {
    let mut lo = [0u32; N];
    let mut hi = [0u32; N];
    for (l, (lo, hi)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
        let b = block.wrapping_add(l as u64);
        *lo = b as u32;
        *hi = (b >> 32) as u32;
    }
    (lo, hi)
}

/// The primary keystream eight ChaCha8 blocks at a time with AVX2: the same bytes
/// as rand_chacha's `ChaCha8Rng` (key, 64-bit block counter in words 12-13, stream
/// in words 14-15), about 1.4x its speed here because eight blocks run in the
/// eight lanes of each vector. The tests compare it with rand_chacha byte for byte.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::TIE_WINDOW;
    use std::arch::x86_64::*;

    /// The tie scan with two 32-byte compares per block.
    #[derive(Debug, Clone, Copy)]
    pub(super) struct Avx2Scan(());

    impl Avx2Scan {
        /// # Safety
        /// The CPU must support AVX2.
        pub(super) unsafe fn new() -> Self {
            Avx2Scan(())
        }
    }

    impl super::TieScan for Avx2Scan {
        #[inline(always)]
        fn bits64(self, chunk: &[u8; super::TIE_BLOCK], t_hi: u8) -> u64 {
            // SAFETY: an `Avx2Scan` exists only where AVX2 is supported.
            unsafe { tie_bits64(chunk, t_hi) }
        }
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn tie_bits64(chunk: &[u8; super::TIE_BLOCK], t_hi: u8) -> u64 {
        let t = _mm256_set1_epi8(t_hi as i8);
        let lo = _mm256_cmpeq_epi8(_mm256_loadu_si256(chunk.as_ptr().cast()), t);
        let hi = _mm256_cmpeq_epi8(_mm256_loadu_si256(chunk.as_ptr().add(32).cast()), t);
        u64::from(_mm256_movemask_epi8(lo) as u32)
            | u64::from(_mm256_movemask_epi8(hi) as u32) << 32
    }

    /// True when the CPU supports AVX2 (cached by std after the first call).
    pub(super) fn detected() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// The byte-shuffle masks that rotate each 32-bit lane left by 16 and by 8.
    ///
    /// Hidden from the optimiser on purpose: when LLVM sees constant masks it
    /// rewrites the rotate by 16 as two word shuffles and pushes the rotate by 8
    /// through the xor before it (two shuffles again), and shuffles compete with the
    /// rounds' shifts for the same pipes. Measured here (Zen 3), the keystream ran
    /// a few percent faster with one shuffle per rotate.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn rotation_masks() -> (__m256i, __m256i) {
        let mut r16 = _mm256_setr_epi8(
            2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11,
            8, 9, 14, 15, 12, 13,
        );
        let mut r8 = _mm256_setr_epi8(
            3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14, 3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9,
            10, 15, 12, 13, 14,
        );
        // SAFETY: an empty asm block that only claims to change two registers.
        unsafe {
            std::arch::asm!(
                "/* {0} {1} */",
                inout(ymm_reg) r16,
                inout(ymm_reg) r8,
                options(pure, nomem, nostack, preserves_flags)
            );
        }
        (r16, r8)
    }

    /// One ChaCha quarter round on eight blocks; rotations by 16 and 8 are byte
    /// shuffles, by 12 and 7 two shifts and an or.
    macro_rules! quarter_round {
        ($x:ident, $a:literal, $b:literal, $c:literal, $d:literal, $r16:ident, $r8:ident) => {
            $x[$a] = _mm256_add_epi32($x[$a], $x[$b]);
            $x[$d] = _mm256_shuffle_epi8(_mm256_xor_si256($x[$d], $x[$a]), $r16);
            $x[$c] = _mm256_add_epi32($x[$c], $x[$d]);
            let t = _mm256_xor_si256($x[$b], $x[$c]);
            $x[$b] = _mm256_or_si256(_mm256_slli_epi32(t, 12), _mm256_srli_epi32(t, 20));
            $x[$a] = _mm256_add_epi32($x[$a], $x[$b]);
            $x[$d] = _mm256_shuffle_epi8(_mm256_xor_si256($x[$d], $x[$a]), $r8);
            $x[$c] = _mm256_add_epi32($x[$c], $x[$d]);
            let t = _mm256_xor_si256($x[$b], $x[$c]);
            $x[$b] = _mm256_or_si256(_mm256_slli_epi32(t, 7), _mm256_srli_epi32(t, 25));
        };
    }

    /// The first half of a ChaCha double round on eight blocks: the columns.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn column_round(x: &mut [__m256i; 16], r16: __m256i, r8: __m256i) {
        quarter_round!(x, 0, 4, 8, 12, r16, r8);
        quarter_round!(x, 1, 5, 9, 13, r16, r8);
        quarter_round!(x, 2, 6, 10, 14, r16, r8);
        quarter_round!(x, 3, 7, 11, 15, r16, r8);
    }

    /// The second half of a ChaCha double round on eight blocks: the diagonals.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn diagonal_round(x: &mut [__m256i; 16], r16: __m256i, r8: __m256i) {
        quarter_round!(x, 0, 5, 10, 15, r16, r8);
        quarter_round!(x, 1, 6, 11, 12, r16, r8);
        quarter_round!(x, 2, 7, 8, 13, r16, r8);
        quarter_round!(x, 3, 4, 9, 14, r16, r8);
    }

    /// Transposes eight words-across-blocks vectors (`r[w]` holds word `w` of blocks
    /// 0..8) into blocks and stores block `l`'s eight words at `out + 64 * l`.
    #[inline(always)]
    unsafe fn transpose_store(r: &[__m256i], out: *mut u8) {
        let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
        let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
        let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
        let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
        let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
        let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
        let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
        let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
        let u0 = _mm256_unpacklo_epi64(t0, t2);
        let u1 = _mm256_unpackhi_epi64(t0, t2);
        let u2 = _mm256_unpacklo_epi64(t1, t3);
        let u3 = _mm256_unpackhi_epi64(t1, t3);
        let u4 = _mm256_unpacklo_epi64(t4, t6);
        let u5 = _mm256_unpackhi_epi64(t4, t6);
        let u6 = _mm256_unpacklo_epi64(t5, t7);
        let u7 = _mm256_unpackhi_epi64(t5, t7);
        let o = out.cast::<__m256i>(); // a block is 64 bytes: two vectors
        _mm256_storeu_si256(o, _mm256_permute2x128_si256(u0, u4, 0x20));
        _mm256_storeu_si256(o.add(2), _mm256_permute2x128_si256(u1, u5, 0x20));
        _mm256_storeu_si256(o.add(4), _mm256_permute2x128_si256(u2, u6, 0x20));
        _mm256_storeu_si256(o.add(6), _mm256_permute2x128_si256(u3, u7, 0x20));
        _mm256_storeu_si256(o.add(8), _mm256_permute2x128_si256(u0, u4, 0x31));
        _mm256_storeu_si256(o.add(10), _mm256_permute2x128_si256(u1, u5, 0x31));
        _mm256_storeu_si256(o.add(12), _mm256_permute2x128_si256(u2, u6, 0x31));
        _mm256_storeu_si256(o.add(14), _mm256_permute2x128_si256(u3, u7, 0x31));
    }

    /// Tie words known ahead per window by [`tie_words8`]: two ChaCha blocks.
    pub(super) const KNOWN_TIE_WORDS: usize = 32;

    /// The first [`KNOWN_TIE_WORDS`] words of the tie runs of eight windows: word
    /// `j` of window `first + l`'s run (tie stream `stream`, words from
    /// `(first + l) * TIE_WINDOW`) is `out[l][j]`. One eight-lane ChaCha8 pass per
    /// block, with a different block counter in each lane, so the words of eight
    /// windows cost a quarter of one window's keystream (a thirty-second per window).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn tie_words8(
        key: &[u32; 8],
        stream: u64,
        first: u64,
        out: &mut [[u32; KNOWN_TIE_WORDS]; 8],
    ) {
        let (r16, r8) = rotation_masks();
        const BLOCKS_PER_RUN: u64 = (TIE_WINDOW / 16) as u64;
        for half in 0..KNOWN_TIE_WORDS / 16 {
            let mut lo = [0u32; 8];
            let mut hi = [0u32; 8];
            for l in 0..8 {
                let b = first
                    .wrapping_add(l as u64)
                    .wrapping_mul(BLOCKS_PER_RUN)
                    .wrapping_add(half as u64);
                lo[l] = b as u32;
                hi[l] = (b >> 32) as u32;
            }
            let init = initial_state(key, stream, &lo, &hi);
            let mut x = init;
            for _ in 0..4 {
                column_round(&mut x, r16, r8);
                diagonal_round(&mut x, r16, r8);
            }
            for (k, (v, i)) in x.iter().zip(init).enumerate() {
                let mut lanes = [0u32; 8];
                _mm256_storeu_si256(lanes.as_mut_ptr().cast(), _mm256_add_epi32(*v, i));
                for (window, &word) in out.iter_mut().zip(&lanes) {
                    window[16 * half + k] = word;
                }
            }
        }
    }

    /// ChaCha's initial state for eight blocks: counter words `lo`/`hi` per lane.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn initial_state(key: &[u32; 8], stream: u64, lo: &[u32; 8], hi: &[u32; 8]) -> [__m256i; 16] {
        let splat = |w: u32| _mm256_set1_epi32(w as i32);
        let [c0, c1, c2, c3] = super::CHACHA_CONSTANTS;
        // SAFETY: `lo` and `hi` are eight readable words each.
        let (lo, hi) = unsafe {
            (
                _mm256_loadu_si256(lo.as_ptr().cast()),
                _mm256_loadu_si256(hi.as_ptr().cast()),
            )
        };
        [
            splat(c0),
            splat(c1),
            splat(c2),
            splat(c3),
            splat(key[0]),
            splat(key[1]),
            splat(key[2]),
            splat(key[3]),
            splat(key[4]),
            splat(key[5]),
            splat(key[6]),
            splat(key[7]),
            lo,
            hi,
            splat(stream as u32),
            splat((stream >> 32) as u32),
        ]
    }

    /// Writes the ChaCha8 keystream of `stream` from block `block` on into `out`:
    /// `N / 64` blocks, a whole number of eight-block groups (`N = TIE_WINDOW` is one
    /// tie window of primary bytes).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn keystream<const N: usize>(
        key: &[u32; 8],
        stream: u64,
        block: u64,
        out: &mut [u8; N],
    ) {
        // SAFETY: AVX2 is enabled here; no select job, so no pointers are used.
        unsafe { keystream_selecting::<false, N>(key, stream, block, out, None) };
    }

    /// The byte select of one whole earlier window of `f32` cells, done in slices
    /// between the rounds of the next window's keystream so its loads and stores
    /// overlap that arithmetic.
    pub(super) struct WindowSelect<'a> {
        /// The window's primary bytes.
        pub(super) bytes: &'a [u8; TIE_WINDOW],
        /// `TIE_WINDOW` readable cells (may equal `dst`).
        pub(super) src: *const f32,
        /// `TIE_WINDOW` writable cells.
        pub(super) dst: *mut f32,
        pub(super) scale: f32,
        pub(super) t_hi: u8,
    }

    /// Eight cells of a [`WindowSelect`], from cell `i`: `dst = bytes < t_hi ? +0.0 :
    /// src * scale`, with the dropped lanes subtracted from `count` (all ones is -1).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn select8(job: &WindowSelect, i: usize, count: &mut __m256i) {
        // SAFETY: `i + 8 <= TIE_WINDOW`; the caller vouches for `src` and `dst`.
        unsafe {
            let b = _mm_loadl_epi64(job.bytes.as_ptr().add(i).cast());
            let drop = _mm256_cmpgt_epi32(
                _mm256_set1_epi32(i32::from(job.t_hi)),
                _mm256_cvtepu8_epi32(b),
            );
            let v = _mm256_mul_ps(_mm256_loadu_ps(job.src.add(i)), _mm256_set1_ps(job.scale));
            _mm256_storeu_ps(
                job.dst.add(i),
                _mm256_andnot_ps(_mm256_castsi256_ps(drop), v),
            );
            *count = _mm256_sub_epi32(*count, drop);
        }
    }

    /// [`keystream`], and when `SELECT` the whole of `job` in slices between the
    /// rounds; returns `job`'s drop count.
    ///
    /// # Safety
    /// The CPU must support AVX2; with `SELECT`, `job.src` must be readable and
    /// `job.dst` writable for `TIE_WINDOW` cells.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn keystream_selecting<const SELECT: bool, const N: usize>(
        key: &[u32; 8],
        stream: u64,
        mut block: u64,
        out: &mut [u8; N],
        job: Option<&WindowSelect>,
    ) -> u32 {
        const { assert!(N.is_multiple_of(8 * 64) && (!SELECT || N == TIE_WINDOW)) };
        let (r16, r8) = rotation_masks();
        // Cells selected per slice: two slices per double round, 8 groups x 4
        // double rounds x 2 slices x 64 cells = one window. Measured here: slices of
        // 16 cells after every quarter round ran about 8% slower (more spills
        // between the rounds' registers and the select's).
        const SLICE: usize = TIE_WINDOW / (8 * 4 * 2);
        let mut count = _mm256_setzero_si256();
        let mut cell = 0usize;
        macro_rules! slice {
            () => {
                if SELECT {
                    if let Some(job) = job {
                        // SAFETY: `cell + 8 * k + 8 <= TIE_WINDOW` (see `SLICE`);
                        // the caller vouches for the job's pointers.
                        for k in 0..SLICE / 8 {
                            unsafe { select8(job, cell + 8 * k, &mut count) };
                        }
                        cell += SLICE;
                    }
                }
            };
        }
        for group in out.chunks_exact_mut(8 * 64) {
            let (lo, hi) = super::counter_words::<8>(block);
            let init = initial_state(key, stream, &lo, &hi);
            let mut x = init;
            for _ in 0..4 {
                column_round(&mut x, r16, r8);
                slice!();
                diagonal_round(&mut x, r16, r8);
                slice!();
            }
            for (v, i) in x.iter_mut().zip(init) {
                *v = _mm256_add_epi32(*v, i);
            }
            transpose_store(&x[..8], group.as_mut_ptr());
            transpose_store(&x[8..], group.as_mut_ptr().add(32));
            block = block.wrapping_add(8);
        }
        drop_count(count)
    }

    /// The sum of the eight lanes of a drop counter (each lane counts its drops,
    /// having had all-ones masks, i.e. -1, subtracted from it).
    #[target_feature(enable = "avx2")]
    pub(super) fn drop_count(count: __m256i) -> u32 {
        let mut lanes = [0u32; 8];
        // SAFETY: `lanes` is 32 writable bytes.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), count) };
        lanes.iter().fold(0u32, |a, &l| a.wrapping_add(l))
    }
}

/// The primary keystream sixteen ChaCha8 blocks at a time with AVX-512, and the
/// `f32` select fused with it.
///
/// Why: at cache-resident sizes the AVX2 keystream alone costs more than a copy, so
/// the 0.6-of-a-copy goal needs a cheaper keystream. AVX-512 has 32 registers (the
/// sixteen state vectors and the constants fit, no spills) and a rotate instruction
/// (one op where AVX2 needs a shuffle or two shifts and an or). The blocks come out
/// word-major and are transposed in registers (four shuffle stages), after which a
/// vector is one 64-byte block, i.e. the bytes of 64 consecutive cells: one unsigned
/// byte compare gives the 64-cell drop mask straight into a mask register, which
/// then zero-masks four 16-lane multiplies. Same bytes as rand_chacha's
/// `ChaCha8Rng`; the tests compare them byte for byte.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::TIE_WINDOW;
    use std::arch::x86_64::*;

    /// True when the CPU has everything the functions here are compiled for.
    pub(super) fn detected() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("popcnt")
    }

    /// One ChaCha quarter round on sixteen blocks.
    macro_rules! quarter_round {
        ($x:ident, $a:literal, $b:literal, $c:literal, $d:literal) => {
            $x[$a] = _mm512_add_epi32($x[$a], $x[$b]);
            $x[$d] = _mm512_rol_epi32::<16>(_mm512_xor_si512($x[$d], $x[$a]));
            $x[$c] = _mm512_add_epi32($x[$c], $x[$d]);
            $x[$b] = _mm512_rol_epi32::<12>(_mm512_xor_si512($x[$b], $x[$c]));
            $x[$a] = _mm512_add_epi32($x[$a], $x[$b]);
            $x[$d] = _mm512_rol_epi32::<8>(_mm512_xor_si512($x[$d], $x[$a]));
            $x[$c] = _mm512_add_epi32($x[$c], $x[$d]);
            $x[$b] = _mm512_rol_epi32::<7>(_mm512_xor_si512($x[$b], $x[$c]));
        };
    }

    /// The initial state of blocks `block .. block + 16` of `stream`, word-major
    /// (vector `w` holds word `w` of each block; the 64-bit counter wraps like
    /// rand_chacha's).
    ///
    /// # Safety
    /// The CPU must support AVX-512F; only called from functions compiled for it.
    #[inline(always)]
    unsafe fn init16(key: &[u32; 8], stream: u64, block: u64) -> [__m512i; 16] {
        let splat = |w: u32| _mm512_set1_epi32(w as i32);
        let (lo, hi) = super::counter_words::<16>(block);
        let [c0, c1, c2, c3] = super::CHACHA_CONSTANTS;
        [
            splat(c0),
            splat(c1),
            splat(c2),
            splat(c3),
            splat(key[0]),
            splat(key[1]),
            splat(key[2]),
            splat(key[3]),
            splat(key[4]),
            splat(key[5]),
            splat(key[6]),
            splat(key[7]),
            // SAFETY (of the loads): `lo` and `hi` are sixteen u32 each.
            _mm512_loadu_si512(lo.as_ptr().cast()),
            _mm512_loadu_si512(hi.as_ptr().cast()),
            splat(stream as u32),
            splat((stream >> 32) as u32),
        ]
    }

    /// One ChaCha double round (a column and a diagonal round) on sixteen blocks.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; only called from functions compiled for it.
    #[inline(always)]
    unsafe fn double_round(x: &mut [__m512i; 16]) {
        quarter_round!(x, 0, 4, 8, 12);
        quarter_round!(x, 1, 5, 9, 13);
        quarter_round!(x, 2, 6, 10, 14);
        quarter_round!(x, 3, 7, 11, 15);
        quarter_round!(x, 0, 5, 10, 15);
        quarter_round!(x, 1, 6, 11, 12);
        quarter_round!(x, 2, 7, 8, 13);
        quarter_round!(x, 3, 4, 9, 14);
    }

    /// The keystream of sixteen blocks after the rounds: the feed-forward add, then
    /// a transpose so that element `l` of the result is block `l`'s 64 bytes.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; only called from functions compiled for it.
    #[inline(always)]
    unsafe fn finish16(mut x: [__m512i; 16], init: &[__m512i; 16]) -> [__m512i; 16] {
        for (v, i) in x.iter_mut().zip(init) {
            *v = _mm512_add_epi32(*v, *i);
        }
        // Words 4a..4a+4 of each block, 4x4-transposed inside 128-bit lanes:
        // v[a][c] holds, in lane g, words 4a..4a+4 of block 4g + c.
        let mut v = [[_mm512_setzero_si512(); 4]; 4];
        for (a, v) in v.iter_mut().enumerate() {
            let t0 = _mm512_unpacklo_epi32(x[4 * a], x[4 * a + 1]);
            let t1 = _mm512_unpackhi_epi32(x[4 * a], x[4 * a + 1]);
            let t2 = _mm512_unpacklo_epi32(x[4 * a + 2], x[4 * a + 3]);
            let t3 = _mm512_unpackhi_epi32(x[4 * a + 2], x[4 * a + 3]);
            v[0] = _mm512_unpacklo_epi64(t0, t2);
            v[1] = _mm512_unpackhi_epi64(t0, t2);
            v[2] = _mm512_unpacklo_epi64(t1, t3);
            v[3] = _mm512_unpackhi_epi64(t1, t3);
        }
        // Then the 128-bit lanes: block 4g + c is lane g of v[0][c], .., v[3][c].
        let mut out = [_mm512_setzero_si512(); 16];
        for c in 0..4 {
            let p0 = _mm512_shuffle_i32x4::<0x44>(v[0][c], v[1][c]);
            let p1 = _mm512_shuffle_i32x4::<0xee>(v[0][c], v[1][c]);
            let p2 = _mm512_shuffle_i32x4::<0x44>(v[2][c], v[3][c]);
            let p3 = _mm512_shuffle_i32x4::<0xee>(v[2][c], v[3][c]);
            out[c] = _mm512_shuffle_i32x4::<0x88>(p0, p2);
            out[4 + c] = _mm512_shuffle_i32x4::<0xdd>(p0, p2);
            out[8 + c] = _mm512_shuffle_i32x4::<0x88>(p1, p3);
            out[12 + c] = _mm512_shuffle_i32x4::<0xdd>(p1, p3);
        }
        out
    }

    /// Writes the ChaCha8 keystream of `stream` from block `block` on (64 blocks,
    /// one tie window) into `out`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn keystream(
        key: &[u32; 8],
        stream: u64,
        block: u64,
        out: &mut [u8; TIE_WINDOW],
    ) {
        for (g, group) in out.chunks_exact_mut(16 * 64).enumerate() {
            // SAFETY: AVX-512F is enabled here; `group` is 16 blocks of 64 bytes.
            unsafe {
                let init = init16(key, stream, block.wrapping_add(16 * g as u64));
                let mut x = init;
                for _ in 0..4 {
                    double_round(&mut x);
                }
                for (l, b) in finish16(x, &init).iter().enumerate() {
                    _mm512_storeu_si512(group.as_mut_ptr().add(64 * l).cast(), *b);
                }
            }
        }
    }

    /// Words `16 * block ..` of `stream`: four blocks, computed row-wise (one block
    /// per 128-bit lane), for the few tie words a window reads. Four blocks cover the
    /// ties of almost every window (sixteen on average at rate 0.1), at a fraction of
    /// the cost of seeking rand_chacha, which regenerates its buffer on every seek.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn words64(key: &[u32; 8], stream: u64, block: u64) -> [u32; 64] {
        let mut r3 = [0u32; 16];
        for (l, lane) in r3.chunks_exact_mut(4).enumerate() {
            let b = block.wrapping_add(l as u64);
            lane.copy_from_slice(&[
                b as u32,
                (b >> 32) as u32,
                stream as u32,
                (stream >> 32) as u32,
            ]);
        }
        let row = |w: [u32; 4]| {
            _mm512_setr_epi32(
                w[0] as i32,
                w[1] as i32,
                w[2] as i32,
                w[3] as i32,
                w[0] as i32,
                w[1] as i32,
                w[2] as i32,
                w[3] as i32,
                w[0] as i32,
                w[1] as i32,
                w[2] as i32,
                w[3] as i32,
                w[0] as i32,
                w[1] as i32,
                w[2] as i32,
                w[3] as i32,
            )
        };
        let init = [
            row(super::CHACHA_CONSTANTS),
            row([key[0], key[1], key[2], key[3]]),
            row([key[4], key[5], key[6], key[7]]),
            // SAFETY: `r3` is sixteen u32.
            unsafe { _mm512_loadu_si512(r3.as_ptr().cast()) },
        ];
        let [mut a, mut b, mut c, mut d] = init;
        macro_rules! round {
            () => {
                a = _mm512_add_epi32(a, b);
                d = _mm512_rol_epi32::<16>(_mm512_xor_si512(d, a));
                c = _mm512_add_epi32(c, d);
                b = _mm512_rol_epi32::<12>(_mm512_xor_si512(b, c));
                a = _mm512_add_epi32(a, b);
                d = _mm512_rol_epi32::<8>(_mm512_xor_si512(d, a));
                c = _mm512_add_epi32(c, d);
                b = _mm512_rol_epi32::<7>(_mm512_xor_si512(b, c));
            };
        }
        for _ in 0..4 {
            round!();
            // Diagonals into columns, and back after the round.
            b = _mm512_shuffle_epi32::<0x39>(b);
            c = _mm512_shuffle_epi32::<0x4e>(c);
            d = _mm512_shuffle_epi32::<0x93>(d);
            round!();
            b = _mm512_shuffle_epi32::<0x93>(b);
            c = _mm512_shuffle_epi32::<0x4e>(c);
            d = _mm512_shuffle_epi32::<0x39>(d);
        }
        let r = [
            _mm512_add_epi32(a, init[0]),
            _mm512_add_epi32(b, init[1]),
            _mm512_add_epi32(c, init[2]),
            _mm512_add_epi32(d, init[3]),
        ];
        // Lane l of the four rows is block l: a 4x4 transpose of 128-bit lanes.
        let p0 = _mm512_shuffle_i32x4::<0x44>(r[0], r[1]);
        let p1 = _mm512_shuffle_i32x4::<0xee>(r[0], r[1]);
        let p2 = _mm512_shuffle_i32x4::<0x44>(r[2], r[3]);
        let p3 = _mm512_shuffle_i32x4::<0xee>(r[2], r[3]);
        let blocks = [
            _mm512_shuffle_i32x4::<0x88>(p0, p2),
            _mm512_shuffle_i32x4::<0xdd>(p0, p2),
            _mm512_shuffle_i32x4::<0x88>(p1, p3),
            _mm512_shuffle_i32x4::<0xdd>(p1, p3),
        ];
        let mut words = [0u32; 64];
        for (l, v) in blocks.iter().enumerate() {
            // SAFETY: `words[16 * l ..]` has room for sixteen u32.
            unsafe { _mm512_storeu_si512(words.as_mut_ptr().add(16 * l).cast(), *v) };
        }
        words
    }

    /// Keystream groups (of sixteen blocks, 1024 cells) per tie window.
    const GROUPS: usize = TIE_WINDOW / (16 * 64);

    /// `windows` full windows from block `block` of `stream` on:
    /// `dst[i] = if byte i < t_hi { +0.0 } else { src[i] * scale }`, then the ties.
    /// Returns the drop count.
    ///
    /// Software-pipelined: the select of group `g - 1` is interleaved with the
    /// rounds of group `g` (a quarter of its blocks after each double round), so the
    /// loads and stores run under the keystream's vector arithmetic instead of after
    /// it (done in sequence, the two costs simply added up). A group leaves behind
    /// only its sixteen 64-bit drop masks. When `t_lo != 0`, once the select of a
    /// window is complete its ties are decided from `tie_stream` ([`words64`]) and
    /// applied. `block` must be `64 * first_window`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, AVX-512BW and POPCNT; `src` must be readable
    /// and `dst` writable for `windows * TIE_WINDOW` f32. They may be equal (in
    /// place: every vector is loaded before it is stored) but must not otherwise
    /// overlap.
    #[target_feature(enable = "avx512f,avx512bw,popcnt")]
    #[allow(clippy::too_many_arguments)] // the whole state of the run, kept inline
    pub(super) unsafe fn select_windows_f32(
        key: &[u32; 8],
        stream: u64,
        block: u64,
        windows: usize,
        src: *const f32,
        dst: *mut f32,
        scale: f32,
        t_hi: u8,
        t_lo: u32,
        tie_stream: u64,
    ) -> u64 {
        let find_ties = t_lo != 0;
        let t = _mm512_set1_epi8(t_hi as i8);
        let s = _mm512_set1_ps(scale);
        let mut positions = [0u16; TIE_WINDOW];
        let mut tie_masks = [0u32; TIE_WINDOW];
        let mut masks = [0u64; 16];
        // The window's tie bits (bit k of word i: cell 64 i + k is a tie), turned into
        // positions once the window is selected, away from the pipelined loop.
        let mut tie_bits = [0u64; TIE_WINDOW / 64];
        let mut dropped = 0u64;
        let groups = windows * GROUPS;
        for g in 0..=groups {
            let next = g < groups;
            // SAFETY (this block and the next): AVX-512F is enabled here; every
            // pointer offset is below `windows * TIE_WINDOW` (the previous group's
            // cells), and each vector is loaded before the same cells are stored.
            let init = if next {
                unsafe { init16(key, stream, block.wrapping_add(16 * g as u64)) }
            } else {
                [_mm512_setzero_si512(); 16]
            };
            let mut x = init;
            for r in 0..4 {
                if next {
                    unsafe { double_round(&mut x) };
                }
                if g > 0 {
                    for (l, &drop) in masks.iter().enumerate().skip(4 * r).take(4) {
                        let base = ((g - 1) * 16 + l) * 64;
                        let keep = !drop;
                        for j in 0..4 {
                            unsafe {
                                let v = _mm512_loadu_ps(src.add(base + 16 * j));
                                let m = (keep >> (16 * j)) as u16;
                                let o = _mm512_maskz_mul_ps(m, v, s);
                                _mm512_storeu_ps(dst.add(base + 16 * j), o);
                            }
                        }
                    }
                }
            }
            if g > 0 && g % GROUPS == 0 {
                // Window `w` is selected: its ties can be decided and applied.
                let w = g / GROUPS - 1;
                let mut n = 0usize;
                if find_ties {
                    // Most words are zero (a tie is 1/256 per cell): a summary bit per
                    // non-zero word, from eight vector tests, lets the scan skip them.
                    let mut words = 0u64;
                    for (q, eight) in tie_bits.chunks_exact(8).enumerate() {
                        // SAFETY: `eight` is eight u64 (64 bytes); AVX-512F is enabled.
                        let v = unsafe { _mm512_loadu_si512(eight.as_ptr().cast()) };
                        words |= u64::from(_mm512_test_epi64_mask(v, v)) << (8 * q);
                    }
                    while words != 0 {
                        let k = words.trailing_zeros() as usize;
                        words &= words - 1;
                        let base = (64 * k) as u32;
                        let mut ties = tie_bits[k];
                        while ties != 0 {
                            // n < cells before this one in the window < TIE_WINDOW.
                            positions[n] = (base + ties.trailing_zeros()) as u16;
                            n += 1;
                            ties &= ties - 1;
                        }
                    }
                }
                if n > 0 {
                    // Tie j of window W reads word j of block run W * 256 of the
                    // tie stream (W * TIE_WINDOW words in).
                    let run = (block / 64)
                        .wrapping_add(w as u64)
                        .wrapping_mul(TIE_WINDOW as u64 / 16);
                    for (c, chunk) in tie_masks[..n].chunks_mut(64).enumerate() {
                        // SAFETY: AVX-512F is enabled here.
                        let words =
                            unsafe { words64(key, tie_stream, run.wrapping_add(4 * c as u64)) };
                        for (m, &word) in chunk.iter_mut().zip(&words) {
                            *m = 0u32.wrapping_sub(u32::from(word >> 8 < t_lo));
                        }
                    }
                    for (&i, &m) in positions[..n].iter().zip(&tie_masks[..n]) {
                        // SAFETY: `i < TIE_WINDOW`, so the cell is in window `w`.
                        unsafe {
                            let cell = dst.add(w * TIE_WINDOW + usize::from(i));
                            *cell = f32::from_bits((*cell).to_bits() & !m);
                        }
                        dropped += u64::from(m & 1);
                    }
                }
            }
            if next {
                // SAFETY: AVX-512F is enabled here.
                let blocks = unsafe { finish16(x, &init) };
                let first = (g % GROUPS) * 16 * 64;
                for (l, (bytes, mask)) in blocks.iter().zip(masks.iter_mut()).enumerate() {
                    *mask = _mm512_cmplt_epu8_mask(*bytes, t);
                    dropped += u64::from(mask.count_ones());
                    if find_ties {
                        tie_bits[first / 64 + l] = _mm512_cmpeq_epu8_mask(*bytes, t);
                    }
                }
            }
        }
        dropped
    }
}

/// Stand-in where AVX-512 does not exist.
#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    pub(super) fn detected() -> bool {
        false
    }
}

/// Stand-in where AVX2 does not exist: rand_chacha's keystream is used instead.
#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    pub(super) fn detected() -> bool {
        false
    }
}

/// Cells per part when `len` cells are split into `parts`: a whole number of
/// windows (at least one), so every part starts on a window boundary.
fn part_len(len: usize, parts: usize) -> usize {
    let windows = len.div_ceil(TIE_WINDOW).max(1);
    windows.div_ceil(parts.clamp(1, windows)) * TIE_WINDOW
}

/// Most threads [`run_parts`] starts without rayon: more parts than this are merged.
#[cfg(not(feature = "rayon"))]
const MAX_SCOPED_THREADS: usize = 64;

/// Runs `f(first_window, out_part, x_part)` on consecutive parts of `part` cells and
/// sums the drop counts. The parts run in parallel: on the rayon pool with the
/// `rayon` feature, else one scoped thread per part, so asking for two parts is
/// running on two threads whichever way the crate was built (the thread-independence
/// tests rely on it).
fn run_parts<F, G>(out: &mut [F], x: Option<&[F]>, part: usize, f: G) -> u64
where
    F: Element,
    G: Fn(usize, &mut [F], Option<&[F]>) -> u64 + Sync,
{
    if out.len() <= part {
        return f(0, out, x);
    }
    let windows_per_part = part / TIE_WINDOW;
    let x_part = |j: usize| x.map(|x| &x[j * part..((j + 1) * part).min(x.len())]);
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(part)
            .enumerate()
            .map(|(j, o)| f(j * windows_per_part, o, x_part(j)))
            .sum()
    }
    #[cfg(not(feature = "rayon"))]
    {
        let parts = out.len().div_ceil(part);
        if parts > MAX_SCOPED_THREADS {
            // Merge whole parts so each thread still starts on a window boundary.
            let merged = part * parts.div_ceil(MAX_SCOPED_THREADS);
            return run_parts(out, x, merged, f);
        }
        let f = &f;
        std::thread::scope(|scope| {
            let handles: Vec<_> = out
                .chunks_mut(part)
                .enumerate()
                .map(|(j, o)| {
                    let xj = x_part(j);
                    scope.spawn(move || f(j * windows_per_part, o, xj))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a dropout kernel part panicked"))
                .sum()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::dropout::{drop_threshold, reference_mask};

    #[test]
    fn part_lengths_are_whole_windows() {
        assert_eq!(part_len(0, 4), TIE_WINDOW);
        assert_eq!(part_len(10, 4), TIE_WINDOW);
        assert_eq!(part_len(3 * TIE_WINDOW + 1, 2), 2 * TIE_WINDOW);
        assert_eq!(part_len(8 * TIE_WINDOW, 0), 8 * TIE_WINDOW);
    }

    #[test]
    fn tie_bits_finds_every_tie() {
        let chunk: Vec<u8> = (0..64).map(|i| if i % 7 == 0 { 9 } else { 3 }).collect();
        let bits = BaseScan.bits(&chunk, 9);
        for (k, &b) in chunk.iter().enumerate() {
            assert_eq!(bits >> k & 1 == 1, b == 9);
        }
        assert_eq!(BaseScan.bits(&chunk[..5], 9), 1);
        #[cfg(target_arch = "x86_64")]
        if avx2::detected() {
            // SAFETY: AVX2 was detected.
            let scan = unsafe { avx2::Avx2Scan::new() };
            assert_eq!(scan.bits(&chunk, 9), bits);
            assert_eq!(scan.bits(&chunk[..5], 9), 1);
        }
    }

    /// `count` words of rand_chacha's ChaCha8 for `seed`, on `stream`, from word
    /// `word`: the definition the SIMD tie words are checked against.
    fn rand_chacha_words(seed: u64, stream: u64, word: u128, count: usize) -> Vec<u32> {
        let mut rng = mask_rng(seed);
        rng.set_stream(stream);
        rng.set_word_pos(word);
        (0..count).map(|_| rng.next_u32()).collect()
    }

    /// `len` bytes of rand_chacha's ChaCha8 for `mask_rng(seed)` on `stream`, from
    /// word `word`.
    fn rand_chacha_bytes(seed: u64, stream: u64, word: u128, len: usize) -> Vec<u8> {
        let mut rng = mask_rng(seed);
        rng.set_stream(stream);
        rng.set_word_pos(word);
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        bytes
    }

    /// Asserts that `keystream(key, stream, block, out)` writes the same window of
    /// bytes as rand_chacha's ChaCha8 at that stream and block, for several seeds.
    fn assert_keystream_is_rand_chachas(
        blocks: &[u64],
        streams: &[u64],
        keystream: impl Fn(&[u32; 8], u64, u64, &mut [u8; TIE_WINDOW]),
    ) {
        for seed in [0u64, 1, 0xdead_beef, u64::MAX] {
            let kernel = DropoutKernel::new(seed, 0, 1);
            for &stream in streams {
                for &block in blocks {
                    let want = rand_chacha_bytes(seed, stream, u128::from(block) * 16, TIE_WINDOW);
                    let mut got = [0u8; TIE_WINDOW];
                    keystream(&kernel.key, stream, block, &mut got);
                    assert!(want == got, "seed {seed} stream {stream} block {block}");
                }
            }
        }
    }

    /// The AVX2 keystream equals rand_chacha's, including across the 2^32 and 2^64
    /// block-counter boundaries and at extreme stream numbers.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_keystream_is_rand_chachas() {
        if !avx2::detected() {
            return;
        }
        let blocks = [0u64, 64, 1 << 20, (1 << 32) - 3, u64::MAX - 5];
        let streams = [0u64, 1, 2, 0x1234_5678_9abc_def0, u64::MAX];
        // SAFETY: AVX2 was detected above.
        assert_keystream_is_rand_chachas(&blocks, &streams, |key, stream, block, out| unsafe {
            avx2::keystream(key, stream, block, out)
        });
    }

    /// The AVX-512 keystream equals rand_chacha's, at odd and even block offsets,
    /// across the 2^32 and 2^64 block-counter boundaries (which fall inside a
    /// sixteen-block group at some of these offsets) and at extreme stream numbers.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_keystream_is_rand_chachas() {
        if !avx512::detected() {
            return;
        }
        let blocks = [
            0u64,
            1,
            7,
            64,
            1 << 20,
            (1 << 32) - 3,
            (1 << 32) - 17,
            u64::MAX - 5,
            u64::MAX - 40,
        ];
        let streams = [0u64, 1, 2, 3, 0x1234_5678_9abc_def0, u64::MAX];
        // SAFETY: AVX-512F was detected above.
        assert_keystream_is_rand_chachas(&blocks, &streams, |key, stream, block, out| unsafe {
            avx512::keystream(key, stream, block, out)
        });
    }

    /// The fused, pipelined AVX-512 windows (keystream, select, tie positions, tie
    /// words, tie fix-ups) agree with the buffered definition over several windows
    /// deep into the stream, in place and not.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_fused_windows_match_buffered() {
        if !avx512::detected() {
            return;
        }
        const WINDOWS: usize = 3;
        let n = WINDOWS * TIE_WINDOW;
        let x: Vec<f32> = (0..n).map(|i| (i as f32 - 5000.5) * 0.37).collect();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        let cases = [
            (3u64, 0u64, 0u64),
            (9, 7, 64 * 5),
            (1, u64::MAX, u64::MAX - 63),
        ];
        for (seed, stream, block) in cases {
            let kernel = DropoutKernel::new(seed, 0, 1);
            for t_hi in [0u8, 1, 25, 128, 255] {
                let scale = 1.7f32;
                // Buffered: keystream, plain select, then each tie from rand_chacha's
                // tie stream, window by window as in the definition.
                let t_lo = 0x0080_0000u32;
                let tie_stream = stream.wrapping_add(1);
                let mut ties = mask_rng(seed);
                ties.set_stream(tie_stream);
                let mut want = vec![0.0f32; n];
                let mut want_count = 0u64;
                for w in 0..WINDOWS {
                    let mut bytes = [0u8; TIE_WINDOW];
                    let b = block.wrapping_add(64 * w as u64);
                    // SAFETY: AVX-512F was detected above.
                    unsafe { avx512::keystream(&kernel.key, stream, b, &mut bytes) };
                    let cells = w * TIE_WINDOW..(w + 1) * TIE_WINDOW;
                    let (xw, ow) = (&x[cells.clone()], &mut want[cells]);
                    want_count += u64::from(select_into(&bytes, xw, ow, scale, t_hi));
                    let window = u128::from(block / 64 + w as u64) % (1u128 << 58);
                    ties.set_word_pos(window * TIE_WINDOW as u128);
                    for (i, _) in bytes.iter().enumerate().filter(|(_, &b)| b == t_hi) {
                        if ties.next_u32() >> 8 < t_lo {
                            ow[i] = 0.0;
                            want_count += 1;
                        }
                    }
                }
                for in_place in [false, true] {
                    let mut got = if in_place { x.clone() } else { vec![0.0f32; n] };
                    let dst = got.as_mut_ptr();
                    let src = if in_place {
                        dst.cast_const()
                    } else {
                        x.as_ptr()
                    };
                    // SAFETY: AVX-512F/BW and POPCNT were detected; both buffers hold
                    // WINDOWS whole windows (the same ones when in place).
                    let count = unsafe {
                        avx512::select_windows_f32(
                            &kernel.key,
                            stream,
                            block,
                            WINDOWS,
                            src,
                            dst,
                            scale,
                            t_hi,
                            t_lo,
                            tie_stream,
                        )
                    };
                    assert_eq!(count, want_count, "t_hi {t_hi}");
                    assert_eq!(bits(&got), bits(&want), "t_hi {t_hi}");
                }
            }
        }
    }

    /// The four-block tie words equal rand_chacha's, at odd block offsets, across the
    /// 2^32 and 2^64 counter boundaries and at extreme stream numbers.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_tie_words_are_rand_chachas() {
        if !avx512::detected() {
            return;
        }
        let blocks = [0u64, 1, 3, 256, (1 << 32) - 2, u64::MAX - 1, u64::MAX];
        for seed in [0u64, 7, u64::MAX] {
            let kernel = DropoutKernel::new(seed, 0, 1);
            for stream in [1u64, 5, 0x1234_5678_9abc_def1, u64::MAX] {
                for block in blocks {
                    let want = rand_chacha_words(seed, stream, u128::from(block) * 16, 64);
                    // SAFETY: AVX-512F was detected above.
                    let got = unsafe { avx512::words64(&kernel.key, stream, block) };
                    assert_eq!(
                        &got[..],
                        &want[..],
                        "seed {seed} stream {stream} block {block}"
                    );
                }
            }
        }
    }

    /// The eight-window tie words equal rand_chacha's tie runs, including where
    /// the block counter wraps and at extreme stream numbers.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_tie_words_are_rand_chachas() {
        if !avx2::detected() {
            return;
        }
        let firsts = [0u64, 1, 13, (1 << 24) + 5, (1 << 56) - 3, u64::MAX - 4];
        for seed in [0u64, 7, u64::MAX] {
            let kernel = DropoutKernel::new(seed, 0, 1);
            for stream in [1u64, 0x1234_5678_9abc_def1, u64::MAX] {
                for first in firsts {
                    let mut got = [[0u32; avx2::KNOWN_TIE_WORDS]; 8];
                    // SAFETY: AVX2 was detected above.
                    unsafe { avx2::tie_words8(&kernel.key, stream, first, &mut got) };
                    for (l, words) in got.iter().enumerate() {
                        let window = u128::from(first.wrapping_add(l as u64));
                        let run = window * TIE_WINDOW as u128;
                        let want = rand_chacha_words(seed, stream, run, words.len());
                        assert_eq!(
                            &words[..],
                            &want[..],
                            "seed {seed} stream {stream} window {window}"
                        );
                    }
                }
            }
        }
    }

    /// Tie words past the known ones come from rand_chacha sought to the right
    /// word: a window with more ties than [`avx2::KNOWN_TIE_WORDS`] (impossible to
    /// provoke through the keystream on demand) decides every tie as the plain path.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn known_tie_words_then_rand_chacha() {
        if !avx2::detected() {
            return;
        }
        let kernel = DropoutKernel::new(21, 3, drop_threshold(0.3));
        let Plan::Mixed { t_lo, .. } = kernel.plan else {
            panic!("0.3 has ties")
        };
        let positions: Vec<u16> = (0..300).map(|i| i * 13).collect();
        for local in [0usize, 5, 9] {
            let mut plain = kernel.streams(2);
            let mut want = Vec::new();
            plain.apply_ties(local, &positions, t_lo, &[], |i, m| want.push((i, m)));
            let mut batch = [[0u32; avx2::KNOWN_TIE_WORDS]; 8];
            let first = (2 + local - local % 8) as u64;
            let tie_stream = kernel.call.wrapping_mul(2).wrapping_add(1);
            // SAFETY: AVX2 was detected above.
            unsafe { avx2::tie_words8(&kernel.key, tie_stream, first, &mut batch) };
            let mut fast = kernel.streams(2);
            let mut got = Vec::new();
            fast.apply_ties(local, &positions, t_lo, &batch[local % 8], |i, m| {
                got.push((i, m))
            });
            assert_eq!(got, want, "window {local}");
            assert!(want.iter().any(|&(_, m)| m != 0) && want.iter().any(|&(_, m)| m == 0));
        }
    }

    /// The fused AVX2 `f32` loop (the path of CPUs without AVX-512) equals the
    /// reference select bit for bit, in place and not, across eight-window tie
    /// batches and a short last window, whichever SIMD the test machine has.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_fused_windows_match_reference() {
        if !avx2::detected() {
            return;
        }
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        for n in [0, 5, TIE_WINDOW, TIE_WINDOW + 1, 17 * TIE_WINDOW + 333] {
            let x: Vec<f32> = (0..n).map(|i| (i as f32 - 5000.5) * 0.37).collect();
            // 129/256: a byte per cell and no ties (rate 0.5 takes the packed path).
            for rate in [0.1, 129.0 / 256.0, 0.3, 1e-9, 0.999] {
                for (seed, call, first_window) in
                    [(3u64, 0u64, 0usize), (9, 7, 6), (1, u64::MAX, 1)]
                {
                    let t = drop_threshold(rate);
                    let kernel = DropoutKernel::new(seed, call, t);
                    let Plan::Mixed { t_hi, t_lo } = kernel.plan else {
                        panic!("rate {rate} is mixed")
                    };
                    let mask = reference_mask(seed, call, t, first_window * TIE_WINDOW + n);
                    let mask = &mask[first_window * TIE_WINDOW..];
                    let scale = 1.7f32;
                    let want: Vec<f32> = x
                        .iter()
                        .zip(mask)
                        .map(|(&v, &d)| if d { 0.0 } else { v * scale })
                        .collect();
                    let want_count = mask.iter().filter(|&&d| d).count() as u64;
                    for in_place in [false, true] {
                        let mut streams = kernel.streams(first_window);
                        streams.avx512 = false;
                        let mut got = if in_place {
                            x.clone()
                        } else {
                            vec![f32::NAN; n]
                        };
                        let input = (!in_place).then_some(&x[..]);
                        // SAFETY: AVX2 was detected above.
                        let count = unsafe {
                            select_windows_avx2_f32(streams, input, &mut got, scale, t_hi, t_lo)
                        };
                        let case = format!("n {n} rate {rate} seed {seed} in place {in_place}");
                        assert_eq!(count, want_count, "{case}");
                        assert_eq!(bits(&got), bits(&want), "{case}");
                    }
                }
            }
        }
    }

    /// A window with more ties than the fused AVX2 path knows words for, where the
    /// ties past the known words both drop and stay (found by search: about one
    /// window in a hundred), is decided exactly like the reference, through the
    /// rand_chacha fallback.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_fused_window_with_many_ties_matches_reference() {
        if !avx2::detected() {
            return;
        }
        let seed = 17u64;
        // A tie drops iff its word's top 24 bits are below 2^23: probability 1/2.
        let t_lo = 0x0080_0000u32;
        let (window, value) = (0..4096usize)
            .find_map(|w| {
                let mut rng = mask_rng(seed);
                rng.set_word_pos((w * TIE_WINDOW / 4) as u128);
                let mut bytes = [0u8; TIE_WINDOW];
                rng.fill_bytes(&mut bytes);
                let mut histogram = [0usize; 256];
                bytes.iter().for_each(|&b| histogram[usize::from(b)] += 1);
                let (value, &ties) = histogram.iter().enumerate().max_by_key(|(_, &c)| c)?;
                let known = avx2::KNOWN_TIE_WORDS;
                let from = (w * TIE_WINDOW + known) as u128;
                let late: Vec<bool> = rand_chacha_words(seed, 1, from, ties.saturating_sub(known))
                    .iter()
                    .map(|&word| word >> 8 < t_lo)
                    .collect();
                (late.contains(&true) && late.contains(&false)).then_some((w, value))
            })
            .expect("such a window exists");
        let threshold = (value as u64) << 24 | u64::from(t_lo);
        let kernel = DropoutKernel::new(seed, 0, threshold);
        let n = (window + 2) * TIE_WINDOW;
        let x: Vec<f32> = (0..n).map(|i| i as f32 + 0.5).collect();
        let mask = reference_mask(seed, 0, threshold, n);
        let want: Vec<u32> = x
            .iter()
            .zip(&mask)
            .map(|(&v, &d)| if d { 0 } else { (v * 2.0).to_bits() })
            .collect();
        let mut streams = kernel.streams(0);
        streams.avx512 = false;
        let mut got = vec![f32::NAN; n];
        // SAFETY: AVX2 was detected above.
        let count =
            unsafe { select_windows_avx2_f32(streams, Some(&x), &mut got, 2.0, value as u8, t_lo) };
        assert_eq!(count, mask.iter().filter(|&&d| d).count() as u64);
        assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want);
    }

    #[test]
    fn primary_bytes_are_rand_chachas() {
        for (seed, call) in [(9u64, 4u64), (0, 0), (u64::MAX, u64::MAX / 2)] {
            let kernel = DropoutKernel::new(seed, call, drop_threshold(0.3));
            for n in [0, 1, TIE_WINDOW - 1, TIE_WINDOW, 3 * TIE_WINDOW + 17] {
                let theirs = rand_chacha_bytes(seed, call.wrapping_mul(2), 0, n);
                let mut ours = vec![0u8; n];
                kernel.primary_bytes_into(&mut ours);
                assert_eq!(ours, theirs, "seed {seed}, call {call}, {n} cells");
                // The paths the CPU picks less often: AVX2 (where it has it), then
                // rand_chacha's own.
                for avx2 in [true, false] {
                    let mut streams = kernel.streams(0);
                    streams.avx512 = false;
                    streams.avx2 &= avx2;
                    let mut ours = vec![0u8; n];
                    streams.fill_cells(&mut ours);
                    assert_eq!(
                        ours, theirs,
                        "seed {seed}, call {call}, {n} cells, avx2 {avx2}"
                    );
                }
            }
        }
    }

    #[test]
    fn mask_matches_reference_across_windows() {
        for rate in [0.1, 0.5, 129.0 / 256.0, 0.999, 1e-3] {
            let t = drop_threshold(rate);
            let n = 3 * TIE_WINDOW + 17;
            assert_eq!(
                DropoutKernel::new(9, 4, t).mask(n),
                reference_mask(9, 4, t, n)
            );
        }
    }
}
