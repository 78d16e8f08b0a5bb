//! The PostgreSQL ledger across a real network partition. The ledger reaches the server through
//! a forwarder on a port of its own, and `nft` drops every packet to and from that port: the
//! ledger's connection sees what a cut cable or a dead switch shows it — no answer, no reset, its
//! packets acknowledged by nobody — and nothing else on the machine is touched. A proxy that just
//! goes quiet cannot show this: its kernel still acknowledges every packet, so TCP never gives up
//! (tests/events_restart.rs uses one for RabbitMQ, whose heartbeats notice silence).
//!
//! Without the bounds of `pool_config` (src/ledger/postgres.rs) a call sent into a partition waits
//! for as long as TCP retransmits, about a quarter of an hour, and a call whose answer is cut off
//! waits two hours for the first keepalive probe. Here each is bounded, fails as
//! `PgUnavailable`, and the ledger works again, with nothing half-written, once the network heals.
//!
//! Needs `nft` (Debian package nftables, installed by `.ci/run`) and the right to change the
//! firewall (root, as CI runs).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use common::pg::PgSchema;
use disclose::ledger::{Ledger, LedgerError, Member, PgLedger};
use disclose::policy::GroupKind;

/// Forwards every connection made to its port to the PostgreSQL server, both ways.
struct Forwarder {
    port: u16,
}

impl Forwarder {
    fn start() -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect("127.0.0.1:5432") else {
                    continue;
                };
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Forwarder { port }
    }

    /// A ledger URL through the forwarder, on the schema, with more query parameters. Its
    /// connections carry the schema's name as their `application_name`, so that the server's
    /// view of them (`pg_stat_activity`) is told apart from other tests'.
    fn url(&self, schema: &PgSchema, params: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/test?options=-c search_path={s}&application_name={s}&pool_size=1{params}",
            self.port,
            s = schema.0
        )
    }
}

/// Copies `from` to `to` until either end closes, then closes both.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// A partition of one port: every packet to or from it dropped, until dropped itself.
struct Partition {
    table: String,
}

impl Partition {
    fn cut(port: u16) -> Partition {
        let table = format!("disclose_partition_{}_{port}", std::process::id());
        let partition = Partition { table };
        let t = &partition.table;
        nft(&format!("add table inet {t}"));
        nft(&format!(
            "add chain inet {t} out {{ type filter hook output priority 0; policy accept; }}"
        ));
        nft(&format!("add rule inet {t} out tcp dport {port} drop"));
        nft(&format!("add rule inet {t} out tcp sport {port} drop"));
        partition
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .arg(format!("delete table inet {}", self.table))
            .status();
    }
}

fn nft(command: &str) {
    let out = Command::new("nft")
        .arg(command)
        .output()
        .unwrap_or_else(|e| {
            panic!("nft (Debian package nftables, installed by .ci/run) cannot run: {e}")
        });
    assert!(
        out.status.success(),
        "nft {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn now() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2026-11-28T16:00:00+08:00").unwrap()
}

fn import(l: &PgLedger, group: &str) -> Result<u64, LedgerError> {
    let members = (0..3).map(|i| Member {
        id: format!("{group}-{i}"),
        name: format!("name-{i}"),
        phone: Some(format!("+86138000000{i:02}")),
        ..Member::default()
    });
    l.replace_group(group, GroupKind::Public, &mut members.map(Ok), now())
}

fn group_names(l: &PgLedger) -> Vec<String> {
    let mut names: Vec<String> = l.groups().unwrap().into_iter().map(|g| g.name).collect();
    names.sort();
    names
}

/// After the partition healed: the write it cut off left nothing, and the ledger writes again.
fn assert_healed(l: &PgLedger) {
    assert_eq!(group_names(l), ["before"], "the cut-off write left nothing");
    import(l, "after").unwrap();
    assert_eq!(group_names(l), ["after", "before"]);
}

/// How many of the schema's connections (by their `application_name`) the server shows in
/// `condition`.
fn connections(watcher: &mut postgres::Client, schema: &PgSchema, condition: &str) -> i64 {
    watcher
        .query_one(
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND {condition}"
            ),
            &[&schema.0],
        )
        .unwrap()
        .get(0)
}

/// Waits up to `within` for `done`; fails the test saying `what` after.
fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `f` on a thread of its own, with how long it took: a call that never returns fails the test
/// at `limit` instead of holding it forever.
fn timed<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> (T, Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    let out = rx
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("the ledger call was still waiting after {limit:?}"));
    let took = t.elapsed();
    eprintln!("the call returned after {took:?}");
    (out, took)
}

fn assert_unavailable<T: std::fmt::Debug>(r: Result<T, LedgerError>) {
    match r {
        Err(LedgerError::PgUnavailable(_)) => {}
        other => panic!("expected PgUnavailable, got {other:?}"),
    }
}

/// A write sent into the partition is bounded by `tcp_user_timeout` (here 2 s); connecting again
/// while it lasts, by `connect_timeout`; once it heals the next call connects again and works,
/// and the write cut off left nothing behind.
#[test]
fn a_write_sent_into_a_partition_fails_within_tcp_user_timeout_and_the_ledger_recovers() {
    let schema = PgSchema::new("partition_sent");
    let fwd = Forwarder::start();
    let l = std::sync::Arc::new(
        PgLedger::open(&fwd.url(&schema, "&tcp_user_timeout=2&connect_timeout=2")).unwrap(),
    );
    import(&l, "before").unwrap();

    let cut = Partition::cut(fwd.port);
    let l2 = l.clone();
    let (r, took) = timed(Duration::from_secs(60), move || import(&l2, "during"));
    assert_unavailable(r);
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(15),
        "the write failed after {took:?}, not about tcp_user_timeout's 2 s"
    );
    // Its connection is gone; the next call's connecting is bounded in turn.
    let l2 = l.clone();
    let (r, took) = timed(Duration::from_secs(60), move || l2.groups());
    assert_unavailable(r);
    assert!(
        took < Duration::from_secs(10),
        "connecting failed after {took:?}, not about connect_timeout's 2 s"
    );

    drop(cut);
    assert_healed(&l);
}

/// A write whose answer never comes — sent and acknowledged, waiting on a lock, when the network
/// is cut — has nothing unacknowledged for `tcp_user_timeout` to time: the keepalive probes find
/// the partition (here after 1 s idle, 1 s apart), and the call fails. The server's transaction,
/// never committed, is rolled back when the connection's end reaches it.
#[test]
fn a_write_waiting_for_its_answer_when_the_partition_comes_fails_by_keepalive() {
    let schema = PgSchema::new("partition_waiting");
    let fwd = Forwarder::start();
    let l = std::sync::Arc::new(
        PgLedger::open(&fwd.url(
            &schema,
            "&tcp_user_timeout=3&keepalives_idle=1&keepalives_interval=1&keepalives_retries=2&connect_timeout=2",
        ))
        .unwrap(),
    );
    import(&l, "before").unwrap();

    // The members table locked from a connection of the test's own, not through the forwarder.
    let mut locker = postgres::Client::connect(
        &format!("{}?options=-c search_path={}", common::pg::PG_URL, schema.0),
        postgres::NoTls,
    )
    .unwrap();
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE members IN ACCESS EXCLUSIVE MODE")
        .unwrap();

    let l2 = l.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(import(&l2, "during"));
    });
    // The import has reached the lock: the server shows its connection waiting on it.
    let mut watcher = postgres::Client::connect(common::pg::PG_URL, postgres::NoTls).unwrap();
    wait_until(
        Duration::from_secs(20),
        "the import never waited on the lock",
        || connections(&mut watcher, &schema, "wait_event_type = 'Lock'") > 0,
    );
    let cut = Partition::cut(fwd.port);
    let cut_at = Instant::now();
    let r = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the import was still waiting a minute after the partition");
    let took = cut_at.elapsed();
    eprintln!("the import failed {took:?} after the partition");
    assert_unavailable(r);
    assert!(
        took < Duration::from_secs(15),
        "the import failed {took:?} after the partition, not within the keepalive's few seconds"
    );

    lock.rollback().unwrap();
    drop(cut);
    // The server learns of the connection's end once packets pass again; its transaction
    // (never committed) is rolled back.
    wait_until(
        Duration::from_secs(30),
        "the cut-off transaction stayed open on the server",
        || connections(&mut watcher, &schema, "state = 'idle in transaction'") == 0,
    );
    assert_healed(&l);
}

/// With nothing said in the URL, `pool_config`'s own bounds hold: a write sent into a
/// partition fails after about `tcp_user_timeout`'s 30 s, not the quarter of an hour TCP would
/// retransmit for.
#[test]
fn without_settings_in_the_url_a_partition_is_bounded_by_the_ledgers_defaults() {
    let schema = PgSchema::new("partition_defaults");
    let fwd = Forwarder::start();
    let l = std::sync::Arc::new(PgLedger::open(&fwd.url(&schema, "")).unwrap());
    import(&l, "before").unwrap();

    let cut = Partition::cut(fwd.port);
    let l2 = l.clone();
    let (r, took) = timed(Duration::from_secs(120), move || import(&l2, "during"));
    assert_unavailable(r);
    assert!(
        took >= Duration::from_secs(25) && took < Duration::from_secs(60),
        "the write failed after {took:?}, not about the default tcp_user_timeout of 30 s"
    );
    drop(cut);
    assert_healed(&l);
}
