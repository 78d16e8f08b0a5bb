//! Shared by the CLI tests: a scratch directory per test and a way to run the real binary in it.
#![allow(dead_code)]

pub mod engine;
pub mod pg;
pub mod service;
pub mod sms;
pub mod transport;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_disclose");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary directory, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("disclose-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    /// Run `disclose ARGS` in the repository (so the shipped keys/, channels/ and templates/ are
    /// the embedded defaults) with the ledger and outputs redirected here by the environment.
    pub fn disclose(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(repo())
            .args(args)
            .env("DISCLOSE_LEDGER_URL", self.path("ledger.db"))
            .env("DISCLOSE_PATHS_OUTPUT_DIR", self.path("out"))
            .env_remove("DISCLOSE_LOG");
        // A test with its own configuration file names its own channels.
        if !args.contains(&"--config") {
            c.env("DISCLOSE_PATHS_CHANNELS_DIR", daytime_channels(self));
        }
        c
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn lines(&self, rel: &str) -> Vec<serde_json::Value> {
        match std::fs::read_to_string(self.path(rel)) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            Err(_) => vec![],
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `disclose ARGS` in `s` with the process clock set to `clock` (`DISCLOSE_CLOCK`: no test waits
/// for a date).
pub fn at(s: &Scratch, clock: &str, args: &[&str]) -> Output {
    s.command(args)
        .env("DISCLOSE_CLOCK", clock)
        .output()
        .unwrap()
}

/// `disclose ARGS` at `clock`, which must succeed; its stdout.
pub fn ok(s: &Scratch, clock: &str, args: &[&str]) -> String {
    let out = at(s, clock, args);
    assert!(
        out.status.success(),
        "disclose {args:?} at {clock}: {:?}\n{}\n{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A directory CSV of `n` subscribers with distinct mainland mobile numbers.
pub fn subscribers_csv(n: usize) -> String {
    let mut csv = String::from("id,name,phone\n");
    for i in 0..n {
        csv.push_str(&format!("m{i:05},订阅者{i},+86139{i:08}\n"));
    }
    csv
}

/// `n` subscribers imported as the public group `subscribers` (by `import`, which runs
/// `disclose ARGS` the caller's way: its configuration, ledger, environment), and a release to
/// them over SMS only, signed; the signed file.
pub fn mass_sms_job(s: &Scratch, id: &str, n: usize, import: impl FnOnce(&[&str])) -> String {
    let csv = s.path("subscribers.csv");
    write(&csv, &subscribers_csv(n));
    import(&[
        "directory",
        "import",
        "--group",
        "subscribers",
        "--kind",
        "public",
        csv.to_str().unwrap(),
    ]);
    let mut job = example("01-pre-appointment-release.json");
    job["id"] = id.into();
    job["channels"] = serde_json::json!(["sms"]);
    job["audience"]["groups"] = serde_json::json!(["subscribers"]);
    sign(s, &job, id)
}

/// The shipped channel files, copied into `s/channels/` with SMS batches of 10 instead of 200,
/// so that a fan-out takes many small steps and a kill lands mid-way.
pub fn small_batch_channels(s: &Scratch) -> PathBuf {
    copy_channels(s, "channels", |t| {
        t.replace("batch_size = 200", "batch_size = 10")
    })
}

/// The shipped channel files without quiet hours and per-recipient limits, so that what a test
/// sends does not depend on the hour it runs at or on how many jobs went to one number before.
/// Tests of those two rules configure them themselves.
pub fn daytime_channels(s: &Scratch) -> PathBuf {
    let dir = s.path("daytime-channels");
    if !dir.join("policy.toml").exists() {
        copy_channels(s, "daytime-channels", |t| t.to_string());
    }
    dir
}

fn copy_channels(s: &Scratch, to: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    for entry in std::fs::read_dir(repo().join("channels")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("quiet_hours") && !l.starts_with("recipient_limits"))
            .map(|l| format!("{l}\n"))
            .collect();
        write(&s.path(&format!("{to}/{name}")), &edit(&text));
    }
    s.path(to)
}

/// An example job's source (unsigned) from `examples/jobs/src/`.
pub fn example(name: &str) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo().join("examples/jobs/src").join(name)).unwrap(),
    )
    .unwrap()
}

/// Sign `job` with the example key through `disclose sign`; the path of the signed file.
pub fn sign(s: &Scratch, job: &serde_json::Value, name: &str) -> String {
    let unsigned = s.path(&format!("{name}.unsigned.json"));
    write(&unsigned, &job.to_string());
    let out = s.disclose(&[
        "sign",
        "--key",
        "examples/keys/example-2026.key",
        unsigned.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let signed = s.path(&format!("{name}.json"));
    write(&signed, &stdout(&out));
    signed.to_str().unwrap().to_string()
}
