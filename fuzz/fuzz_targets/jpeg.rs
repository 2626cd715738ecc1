//! Fuzzes the jpeg reader: header parsing, limits, and decoding every row and chunk.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gigatile::source::jpeg::fuzz_one(data));
