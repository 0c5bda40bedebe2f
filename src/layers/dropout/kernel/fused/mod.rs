//! The byte path's drivers for `f32` that fuse the select into the keystream: the
//! select of one window (or group of blocks) runs between the ChaCha rounds of the
//! next, so its loads and stores overlap the keystream's arithmetic instead of
//! following it. One module per instruction set; each takes its token, so it can
//! only be called where the CPU has it.

pub(crate) mod avx2;
pub(crate) mod avx512;
