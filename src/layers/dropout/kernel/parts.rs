//! Splitting a call's cells into parts that run on their own threads.
//!
//! Parts are whole windows, and each part seeks the keystream to its own first
//! window, so any split (and any thread count) gives the same output. The parts
//! run on scoped threads, or on the rayon pool with the `rayon` feature.

use super::mask::TIE_WINDOW;
use crate::tensor::Element;

/// Cells per part when `len` cells are split into `parts`: a whole number of
/// windows (at least one), so every part starts on a window boundary.
pub(super) fn part_len(len: usize, parts: usize) -> usize {
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
pub(super) fn run_parts<F, G>(out: &mut [F], x: Option<&[F]>, part: usize, f: G) -> u64
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

    #[test]
    fn part_lengths_are_whole_windows() {
        assert_eq!(part_len(0, 4), TIE_WINDOW);
        assert_eq!(part_len(10, 4), TIE_WINDOW);
        assert_eq!(part_len(3 * TIE_WINDOW + 1, 2), 2 * TIE_WINDOW);
        assert_eq!(part_len(8 * TIE_WINDOW, 0), 8 * TIE_WINDOW);
    }
}
