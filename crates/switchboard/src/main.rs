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
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
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
