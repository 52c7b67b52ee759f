//! `watch_cbor`: see `windlass_testkit::fuzzing::watch_cbor` for the property checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| windlass_testkit::fuzzing::watch_cbor(data));
