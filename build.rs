//! With a Python bridge feature (`keras`, `torch`), the binaries, tests and
//! benches embed CPython: link them with an rpath to the libpython pyo3 found,
//! so that they start without `LD_LIBRARY_PATH`. Without it, nothing to do.

fn main() {
    #[cfg(feature = "python")]
    pyo3_build_config::add_libpython_rpath_link_args();
}
