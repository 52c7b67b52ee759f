//! `response_classify`: see `windlass_testkit::fuzzing::response_classify` for the property checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| windlass_testkit::fuzzing::response_classify(data));
