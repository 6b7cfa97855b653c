//! Writing the CRM source database of a 100 000-customer operator to SQLite.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sb_sim::{Population, default_start, sqlite_url, write_source_db};

fn source_db(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = sqlite_url(&dir.path().join("source.db"));
    let population = Population::generate(42, 100_000, default_start()).expect("a population");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");

    let mut group = c.benchmark_group("source_db");
    group.sample_size(10);
    group.throughput(Throughput::Elements(population.customers.len() as u64));
    group.bench_function("sqlite/100000_customers", |b| {
        b.iter(|| runtime.block_on(write_source_db(&url, &population)).expect("a source database"))
    });
    group.bench_function("population/100000_customers", |b| {
        b.iter(|| Population::generate(42, 100_000, default_start()).expect("a population"))
    });
    group.finish();
}

criterion_group!(benches, source_db);
criterion_main!(benches);
