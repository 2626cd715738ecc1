//! Fuzzes the tiff reader: header parsing, limits, and decoding every row and chunk.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gigatile::source::tiff::fuzz_one(data));
