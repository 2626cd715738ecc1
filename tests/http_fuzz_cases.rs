//! The HTTP fuzz target's kept inputs (`tests/fuzz_cases/http/`: the seed corpus, one request
//! per route and kind of upload, and every crasher found) replayed through the router in
//! process, and a short deterministic mutation run over them, so that CI checks the router's
//! answers even without cargo-fuzz.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use gigatile::http::fuzzing::fuzz_one;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_cases/http")
}

/// The kept inputs, in name order.
fn cases() -> Vec<(String, Vec<u8>)> {
    let mut cases: Vec<(String, Vec<u8>)> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    cases.sort();
    cases
}

#[test]
fn kept_http_cases_get_well_formed_answers() {
    let cases = cases();
    assert!(cases.len() >= 20, "the seed corpus is missing");
    let failures: Vec<String> = cases
        .iter()
        .filter(|(_, data)| catch_unwind(AssertUnwindSafe(|| fuzz_one(data))).is_err())
        .map(|(name, _)| name.clone())
        .collect();
    assert!(failures.is_empty(), "failing cases: {failures:?}");
}

/// Each kept input with a few bytes flipped, inserted or cut, by a fixed generator; a failing
/// one is saved as `crash-*` beside the others, to be fixed and kept.
#[test]
fn mutated_http_cases_get_well_formed_answers() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let noise: &[u8] = b"\xff\x00%/|.:;,\r\n-0123456789{}\"*?&=@ ";
    let mut crashes = Vec::new();
    for (_, seed) in cases() {
        for _ in 0..8 {
            let mut data = seed.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % (data.len() as u64 + 1)) as usize;
                let byte = noise[(next() % noise.len() as u64) as usize];
                match next() % 3 {
                    0 if at < data.len() => data[at] = byte,
                    1 => data.insert(at, byte),
                    _ => data.truncate(at.max(1)),
                }
            }
            if catch_unwind(AssertUnwindSafe(|| fuzz_one(&data))).is_err() {
                let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                });
                let path = cases_dir().join(format!("crash-{hash:016x}"));
                std::fs::write(&path, &data).unwrap();
                crashes.push(path.display().to_string());
            }
        }
    }
    assert!(crashes.is_empty(), "failing inputs saved: {crashes:?}");
}
