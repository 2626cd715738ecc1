//! cli::progress: progress bars (of a pyramid build, or of counted steps), on a terminal only.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gigatile::pyramid::build::Progress;
use indicatif::{ProgressBar, ProgressStyle};

/// Runs `work` while a bar on stderr follows `progress` (when stderr is a terminal).
pub fn with_bar<T>(label: &str, progress: &Progress, work: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return work();
    }
    let bar = bar(label, 1000);
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (bar, progress, done) = (bar.clone(), progress.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                bar.set_position((progress.fraction() * 1000.0) as u64);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let result = work();
    done.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    bar.finish_and_clear();
    result
}

/// A bar of `len` steps on stderr, hidden unless stderr is a terminal.
pub fn bar(label: &str, len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:40}] {percent:>3}% {elapsed_precise} (eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}
