//! Any seed and any small configuration give consistent output.

use proptest::prelude::*;
use sb_core::{Imei, Imsi, Msisdn};
use sb_sim::{Population, write_usage_files};

use crate::common::{assert_manifest_matches_files, small_config, valid_rows};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn any_seed_gives_a_consistent_manifest_and_valid_identifiers(
        seed in any::<u64>(),
        customers in 0u32..60,
        hours in 1u32..4,
        duplicate_record_rate in 0.0..0.05f64,
        malformed_rate in 0.0..0.05f64,
        duplicate_file_rate in 0.0..1.0f64,
        gzip in any::<bool>(),
        threads in 1usize..4,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = small_config(seed, dir.path());
        cfg.customers = customers;
        cfg.hours = hours;
        cfg.records = None;
        cfg.duplicate_record_rate = duplicate_record_rate;
        cfg.malformed_rate = malformed_rate;
        cfg.duplicate_file_rate = duplicate_file_rate;
        cfg.gzip = gzip;
        cfg.threads = threads;
        let population = Population::generate(seed, customers, cfg.start).unwrap();
        let manifest = write_usage_files(&cfg, &population, &|_| {}).unwrap();

        assert_manifest_matches_files(&cfg.mediation_dir(), &manifest);
        prop_assert_eq!(manifest.files.len() as u32, hours);
        for r in valid_rows(&cfg.mediation_dir(), &manifest) {
            prop_assert!(Msisdn::parse(&r.msisdn).is_ok());
            prop_assert!(Imsi::parse(&r.imsi).is_ok() && r.imsi.starts_with("222"));
            prop_assert!(r.imei.is_empty() || Imei::parse(&r.imei).is_ok());
        }
        prop_assert!(population.lines.iter().all(|l| l.imsi.as_str().starts_with("22253")));
    }
}
