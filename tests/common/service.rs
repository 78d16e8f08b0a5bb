//! A running `disclose serve` for the tests that start, signal and kill the service (spool
//! intake): its log in a file, polling with the log's end in every failure, and killed when
//! dropped so that no test leaves a process behind.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Service {
    child: Child,
    log: PathBuf,
}

impl Service {
    /// Spawn `cmd` (a `disclose … serve` command) with its log in `log`, and wait until it takes
    /// jobs from the spool directory.
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Service {
        let child = cmd
            .env("DISCLOSE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut svc = Service { child, log };
        svc.until("the service to start", 30, |svc| {
            svc.log().contains("intake from the spool directory")
        });
        svc
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Poll `done` every 20 ms for at most `secs`; fail with the service's log if it never
    /// holds, or at once if the service exits meanwhile.
    pub fn until(&mut self, what: &str, secs: u64, mut done: impl FnMut(&mut Service) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done(self) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the service exited ({status}) while waiting for {what}:\n{}",
                    self.tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "waited {secs} s for {what}; the end of the service log:\n{}",
                self.tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last lines of the log, for failure messages.
    pub fn tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -s {name}");
    }

    /// SIGKILL: no handler, no flush, no goodbye.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status, which must come within `secs`.
    pub fn terminate(&mut self, secs: u64) -> ExitStatus {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running {secs} s after SIGTERM; the end of the log:\n{}",
                self.tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
