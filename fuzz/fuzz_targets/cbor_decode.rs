//! `cbor_decode`: see `windlass_testkit::fuzzing::cbor_decode` for the property checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| windlass_testkit::fuzzing::cbor_decode(data));
