//! Usage-file generation throughput, in records (rows) per second.
//!
//! `one_hour_to_sink` measures the record generator and formatter alone on one thread;
//! `day_of_files` measures what `switchboard demo generate` does for usage files: 24
//! hourly files written to disk on every available core, manifest included.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::io;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sb_sim::{GenerateConfig, Population, UsageModel, write_usage_files};

/// A 100 000-customer operator with about 200 000 records in its busiest hour.
fn config(out: &std::path::Path) -> GenerateConfig {
    let mut cfg = GenerateConfig::new(42, out);
    cfg.customers = 100_000;
    cfg.records = Some(3_500_000);
    cfg
}

fn usage(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let cfg = config(dir.path());
    let population = Population::generate(cfg.seed, cfg.customers, cfg.start).expect("a population");
    let model = UsageModel::new(&cfg, &population).expect("a usage model");

    let rows = model.write_hour(12, &mut io::sink(), &|_| {}).expect("an hour").rows();
    let mut group = c.benchmark_group("usage");
    group.throughput(Throughput::Elements(rows));
    group.bench_function(format!("one_hour_to_sink/{rows}_records"), |b| {
        b.iter(|| black_box(model.write_hour(black_box(12), &mut io::sink(), &|_| {}).expect("an hour")))
    });

    let day = write_usage_files(&cfg, &population, &|_| {}).expect("a day of files");
    group.throughput(Throughput::Elements(day.summary.rows));
    group.sample_size(10);
    group.bench_function(format!("day_of_files/{}_records/{}_threads", day.summary.rows, cfg.threads), |b| {
        b.iter(|| black_box(write_usage_files(&cfg, &population, &|_| {}).expect("a day of files")))
    });
    group.finish();
}

criterion_group!(benches, usage);
criterion_main!(benches);
