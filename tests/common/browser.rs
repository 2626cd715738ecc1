//! Runs a browser test script (`tests/browser/*.mjs`, headless Chromium through playwright-core)
//! against a running test server, and fails with the script's output when the script fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where browser tests keep their screenshots: `target/browser-artifacts/{suite}`.
pub fn artifacts_dir(suite: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/browser-artifacts")
        .join(suite);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `node tests/browser/{script}` with `args` and asserts that it exits 0.
pub fn run_script(script: &str, args: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("node")
        .arg(root.join("tests/browser").join(script))
        .args(args)
        .current_dir(root)
        .output()
        .expect("node runs (scripts/setup.sh installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(
        output.status.success(),
        "browser test {script} failed:\n{stdout}\n{stderr}"
    );
}
