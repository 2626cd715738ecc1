//! The official IIIF Image API validator (PyPI `iiif-validator` 1.0.5, installed by
//! `scripts/setup.sh` into `target/iiif-venv`) against a running server: Image API 3.0 and 2.0
//! (its set for 2.x) at compliance level 2, with zero failures. It needs its own test image,
//! which lives outside the repository and is copied into the server's data folder here.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::server::TestServer;
use gigatile::config::SettingsLayer;

/// The validator's image: a 10×10 grid of coloured squares whose colours it knows.
const IMAGE: &str = "67352ccc-d1b0-11e1-89ae-279075081939.png";
const IMAGE_SOURCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/iiif-validator/67352ccc-d1b0-11e1-89ae-279075081939.png"
);

fn venv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/iiif-venv/bin")
}

/// Runs the validator for one version at level 2; returns (tests run, failures, output).
fn validate(server: &TestServer, prefix: &str, version: &str) -> (u32, u32, String) {
    let bin = venv();
    let script = bin.join("iiif-validate.py");
    assert!(
        script.exists(),
        "{} is missing: run scripts/setup.sh to install the IIIF validator",
        script.display()
    );
    let out = Command::new(bin.join("python3"))
        .arg(&script)
        .args(["-s", &server.addr.to_string(), "-p", prefix, "-i", IMAGE])
        .args(["--version", version, "--level", "2"])
        .output()
        .expect("the validator runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Its last line: "Done (N tests, M failures)".
    let summary = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Done ("))
        .and_then(|l| l.strip_suffix(" failures)"))
        .and_then(|l| l.split_once(" tests, "))
        .unwrap_or_else(|| panic!("no summary from the validator:\n{text}"));
    let tests = summary.0.parse().unwrap();
    let failures = summary.1.parse().unwrap();
    if failures == 0 {
        assert!(out.status.success(), "the validator failed:\n{text}");
    }
    (tests, failures, text)
}

#[test]
fn the_official_validator_passes_level_2() {
    let server = TestServer::start("iiif-validator", SettingsLayer::default(), |data| {
        std::fs::copy(IMAGE_SOURCE, data.path(IMAGE))
            .unwrap_or_else(|e| panic!("{IMAGE_SOURCE}: {e}"));
    });
    server.wait_ready(IMAGE, 60);
    for (prefix, version) in [("iiif/3", "3.0"), ("iiif/2", "2.0")] {
        let (tests, failures, output) = validate(&server, prefix, version);
        let passed = output.lines().filter(|l| l.ends_with(" PASS")).count() as u32;
        assert!(tests >= 20, "{version}: only {tests} tests ran:\n{output}");
        assert_eq!(failures, 0, "{version}: {failures} failures:\n{output}");
        assert_eq!(passed, tests, "{version}: not every test passed:\n{output}");
        println!("IIIF {version} level 2: {tests} tests, {passed} passed");
    }
}
