//! Fuzzes every route's request handling through the real router in process: method, path,
//! query, headers and body (multipart included); see `gigatile::http::fuzzing`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gigatile::http::fuzzing::fuzz_one(data));
