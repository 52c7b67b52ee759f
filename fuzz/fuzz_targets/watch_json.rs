//! `watch_json`: see `windlass_testkit::fuzzing::watch_json` for the property checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| windlass_testkit::fuzzing::watch_json(data));
