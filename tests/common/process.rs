//! A real `gigatile serve` process, for tests about processes (SIGKILL, resident memory,
//! overload): started with a clean environment on a port the system picks (`PORT=0`, the
//! address read from its log), killed with SIGKILL and reaped on drop, the tail of its log
//! printed when the test failed.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a process may take to start listening.
const START_PATIENCE: Duration = Duration::from_secs(90);

/// A running `gigatile serve`.
pub struct ServerProcess {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl ServerProcess {
    /// Serves `data` with only `env` set beside the data folder, address and log settings,
    /// logging to `log`; returns once it listens.
    pub fn start(data: &Path, log: &Path, env: &[(&str, &str)]) -> ServerProcess {
        let log_file = std::fs::File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gigatile"))
            .arg("serve")
            .env_clear()
            .env("DATA_DIR", data)
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let mut server = ServerProcess {
            pid: child.id(),
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log: log.to_owned(),
        };
        server.addr = server.wait_for_address();
        server
    }

    /// Polls the log for the line that gives the address it listens on, failing if the
    /// process exits.
    fn wait_for_address(&mut self) -> SocketAddr {
        let until = Instant::now() + START_PATIENCE;
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let line = log.lines().find(|l| l.starts_with("gigatile: serving "));
            let addr = line.and_then(|l| l.rsplit_once("http://"));
            if let Some(Ok(addr)) = addr.map(|(_, a)| a.trim_end_matches('/').parse()) {
                return addr;
            }
            if let Some(status) = self.exited() {
                panic!("the server exited ({status})");
            }
            assert!(Instant::now() < until, "the server never started");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How the process ended, if it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Kills the process and reaps it, so that its pid no longer names a process (a zombie
    /// keeps `/proc/<pid>`).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A field of `/proc/PID/status` in KiB, e.g. `VmHWM:` (the peak resident set).
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- server log (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}
