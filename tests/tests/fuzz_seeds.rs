//! Replays every fuzz target's seed corpus (built from the fixtures) and
//! every crash the fuzzers have found, through the same functions the
//! cargo-fuzz targets call.

use windlass_testkit::fixtures;
use windlass_testkit::fuzzing::{self, TARGETS};

#[test]
fn watch_and_cbor_fuzz_seeds_replay() {
    let Some(dir) = fixtures::dir() else { return };
    for target in TARGETS {
        let seeds = fuzzing::seeds(target, &dir);
        assert!(!seeds.is_empty(), "{target} has no seeds");
        for seed in &seeds {
            fuzzing::run(target, seed);
            // Every prefix too: a body cut anywhere must fail cleanly.
            for cut in (0..seed.len()).step_by(seed.len() / 64 + 1) {
                fuzzing::run(target, &seed[..cut]);
            }
        }
        if let Some(corpus) = std::env::var_os("WINDLASS_FUZZ_CORPUS") {
            let dir = std::path::Path::new(&corpus).join(target);
            std::fs::create_dir_all(&dir).expect("corpus folder");
            for (i, seed) in seeds.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i:03}")), seed).expect("seed file");
            }
        }
        println!("fuzz seeds {target}: {} replayed", seeds.len());
    }
}

/// Inputs the fuzzers once crashed on, kept in `fuzz/regressions/<target>/`.
#[test]
fn watch_and_cbor_fuzz_regressions_replay() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    for target in TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("regression entry").path();
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            let input = std::fs::read(&path).expect("regression input");
            fuzzing::run(target, &input);
        }
    }
}
