//! Fuzzes the png reader: header parsing, limits, and decoding every row and chunk.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gigatile::source::png::fuzz_one(data));
