//! Throughput of the vault's hot paths: tokens from the cache, known tokens the cache does not
//! hold, first-time tokens (vault inserts, batched, SQLite), and FF1. Run with
//! `cargo bench -p sb-privacy` or `bench/privacy.sh`.

#![allow(missing_docs)] // criterion_group! generates an undocumented function
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sb_privacy::{MasterKey, PiiKind, PrivacyConfig, Subject, Vault};
use sb_store::{Db, PoolOptions};

const MASTER: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const BATCH: usize = 10_000;

fn msisdn(i: u64) -> String {
    format!("3934{:08}", i % 100_000_000)
}

fn vault(rt: &tokio::runtime::Runtime, dir: &std::path::Path, config: PrivacyConfig) -> Vault {
    rt.block_on(async {
        let url = format!("sqlite://{}/vault.db", dir.display());
        let db = Db::connect_with(&url, &PoolOptions::default()).await.unwrap();
        Vault::open(db, MasterKey::parse(MASTER).unwrap(), config).await.unwrap()
    })
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let v = vault(&rt, dir.path(), PrivacyConfig::default());
    let subject = Subject::Customer("C1".into());

    let known: Vec<String> = (0..BATCH as u64).map(msisdn).collect();
    let items: Vec<(&str, &Subject)> = known.iter().map(|m| (m.as_str(), &subject)).collect();
    rt.block_on(v.tokenize_batch(PiiKind::Msisdn, &items)).unwrap();

    let mut g = c.benchmark_group("privacy");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("tokenize_cached", |b| {
        b.iter(|| rt.block_on(v.tokenize_batch(PiiKind::Msisdn, &items)).unwrap());
    });

    // Known values the token cache does not hold (an operator with more identifiers than
    // `privacy.cache_capacity`): each costs its fingerprint and a look in the vault's directory.
    let uncached = vault(&rt, dir.path(), PrivacyConfig { cache_capacity: 1, ..PrivacyConfig::default() });
    g.bench_function("tokenize_known_uncached", |b| {
        b.iter(|| rt.block_on(uncached.tokenize_batch(PiiKind::Msisdn, &items)).unwrap());
    });

    let next = AtomicU64::new(10_000_000);
    g.sample_size(10);
    g.bench_function("tokenize_first_time_sqlite", |b| {
        b.iter_batched(
            || {
                let start = next.fetch_add(BATCH as u64, Ordering::Relaxed);
                (start..start + BATCH as u64).map(msisdn).collect::<Vec<_>>()
            },
            |fresh| {
                let items: Vec<(&str, &Subject)> = fresh.iter().map(|m| (m.as_str(), &subject)).collect();
                rt.block_on(v.tokenize_batch(PiiKind::Msisdn, &items)).unwrap()
            },
            BatchSize::PerIteration,
        );
    });

    g.sample_size(20);
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("ff1_msisdn", |b| {
        b.iter(|| {
            for m in &known[..1_000] {
                std::hint::black_box(v.fpe_encrypt(PiiKind::Msisdn, "msisdn", m).unwrap());
            }
        });
    });
    g.finish();
}

criterion_group!(privacy, benches);
criterion_main!(privacy);
