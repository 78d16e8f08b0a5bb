//! A PostgreSQL schema of a test's own in this machine's database `test`, for the tests that run
//! the ledger on PostgreSQL: the ledger URL that selects it (`options=-c search_path=…`, created
//! by the ledger's migrations), dropped afterwards even when the test fails.
#![allow(dead_code)]

pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub struct PgSchema(pub String);

impl PgSchema {
    /// `TAG_<pid>`: unique per test binary run; tags keep the tests of one binary apart.
    pub fn new(tag: &str) -> PgSchema {
        PgSchema(format!("{tag}_{}", std::process::id()))
    }

    pub fn url(&self) -> String {
        format!("{PG_URL}?options=-c search_path={}", self.0)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        // The blocking client must not run on an async runtime, which a test may be inside of.
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(PG_URL, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"));
            }
        })
        .join();
    }
}
