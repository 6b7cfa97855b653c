//! `switchboard`: parse the command line, run, exit with the documented code.

use clap::Parser;

/// mimalloc instead of glibc's allocator: ingestion allocates on one thread and frees on
/// another (batches cross from reading to loading to writing), where glibc's allocation was
/// about a tenth of the loader's time. Measured on the 5M-record benchmark file: 32–34 s with
/// glibc, 30.6 s with mimalloc, for about 40 MB more peak memory.
///
/// Built without transparent huge pages (`no_thp`): with them, each batch's freed and
/// re-allocated buffers came back as fresh 2 MiB pages for the kernel to zero (540 of them in
/// the benchmark's warm hour, a tenth of the loading thread's samples); without, that hour's
/// peak memory is about 100 MB lower and its time no worse.
///
/// mimalloc v2, not v3 (the crate's default in the version we use): v3 keeps freed pages a second
/// before it returns them, v2 10 ms, and ingestion frees batches of tens of MB many times a
/// second. Measured on two hours of a 2-million-line operator in one run: a peak of 983 MiB
/// with v3, 871 MiB with v2, in no more time (docs/ingest-speed.md, twenty-second round).
/// v2's own delay is too short the other way: see [`PURGE_DELAY_MS`].
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long mimalloc keeps freed pages before it gives them back to the system, unless the
/// environment sets `MIMALLOC_PURGE_DELAY` (which then wins). v2's 10 ms is shorter than the
/// time between two batches of a thread, so each batch's buffers came back as fresh pages for
/// the kernel to fault in and zero: a seventh of the benchmark's CPU time was the kernel's. At
/// 100 ms the cold benchmark hour took 18.1 s against 19.9 s (three interleaved pairs), its
/// system time fell from 4.9–6.9 s to 2.7–3.4 s, and its peak rose by about 70 MB; two hours
/// of a 2-million-line operator peaked at 915 MiB against 846 (docs/ingest-speed.md,
/// twenty-third round; ADR 0007 on why this is the project's one `unsafe` call).
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// `mi_option_purge_delay` in mimalloc v2's `mi_option_t` (`include/mimalloc.h`): the binding
/// does not name it. The test below checks that this option holds v2's default purge delay.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets mimalloc's options; called first in `main`, while no other thread exists.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: `mi_option_set` stores one option's value. mimalloc documents it as not thread
    // safe: it runs before the runtime or any other thread starts.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS)
    };
}

fn main() -> std::process::ExitCode {
    tune_allocator();
    let cli = switchboard::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(switchboard::EXIT_FAILED);
        }
    };
    std::process::ExitCode::from(runtime.block_on(switchboard::run(cli)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(unsafe_code)]
    fn purge_delay() -> std::ffi::c_long {
        // SAFETY: reads one option's value; this is the test binary's only test.
        unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
    }

    #[test]
    fn the_purge_delay_is_the_option_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // v2's default purge delay is 10 ms; the options beside it default to 1 and 0.
        assert_eq!(purge_delay(), 10, "option {MI_OPTION_PURGE_DELAY} is not mimalloc's purge delay");
        tune_allocator();
        assert_eq!(purge_delay(), PURGE_DELAY_MS);
    }
}
