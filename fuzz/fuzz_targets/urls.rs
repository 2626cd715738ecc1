//! Fuzzes every protocol's URL parser (Gigaview, IIIF 3 and 2, Deep Zoom, Zoomify, imgserv) and
//! the mapping of what parses onto an image of arbitrary size.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gigatile::protocol::fuzzing::fuzz_one(data));
