//! `protobuf_envelope`: see `windlass_testkit::fuzzing::protobuf_envelope` for the property checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| windlass_testkit::fuzzing::protobuf_envelope(data));
