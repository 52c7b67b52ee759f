//! `watch_protobuf`: see `windlass_testkit::fuzzing::watch_protobuf` for the property checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| windlass_testkit::fuzzing::watch_protobuf(data));
