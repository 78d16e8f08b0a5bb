#!/usr/bin/env python3
"""The baseline of the fan-out benchmark: what SQLite alone costs for the writes the ledger's
design needs per delivery, with nothing else around them — N delivery rows inserted (planned),
then claimed and finished in batches of 200 (the shipped SMS channel's batch: sending with a
lease, then delivered), each batch its own transaction, with the ledger's pragmas (WAL,
synchronous=NORMAL, 64 MiB cache) and its partial indexes. (Whether a job still has open
deliveries is a per-job count the ledger updates once a batch, not an index: a partial index on
the open deliveries of a job doubled this floor, 16 µs a delivery against 7.4.) `disclose` also
renders, writes the outbox line, the audit chain and the events; the difference between the
two is what those cost.

    python3 benches/sqlite_floor.py N DB_PATH
"""
import sqlite3
import sys
import time

n = int(sys.argv[1])
path = sys.argv[2]
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute("PRAGMA cache_size=-65536")
db.executescript(
    """
CREATE TABLE deliveries (id INTEGER PRIMARY KEY, job_id TEXT NOT NULL, channel TEXT NOT NULL,
  recipient TEXT NOT NULL, address TEXT, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
  due_at INTEGER NOT NULL, lease_until INTEGER, updated_at INTEGER NOT NULL,
  UNIQUE (job_id, channel, recipient));
CREATE INDEX deliveries_pending ON deliveries (channel, due_at) WHERE state = 'pending';
CREATE INDEX deliveries_sending ON deliveries (lease_until) WHERE state = 'sending';
"""
)
t0 = time.perf_counter()
db.execute("BEGIN IMMEDIATE")
db.executemany(
    "INSERT INTO deliveries (job_id, channel, recipient, address, state, due_at, updated_at)"
    " VALUES ('bench', 'sms', ?, ?, 'pending', 0, 0)",
    ((f"s{i:07d}", f"+86139{i:08d}") for i in range(n)),
)
db.execute("COMMIT")
t1 = time.perf_counter()
done = 0
while True:
    db.execute("BEGIN IMMEDIATE")
    ids = [
        r[0]
        for r in db.execute(
            "UPDATE deliveries SET state = 'sending', lease_until = 1, attempts = attempts + 1"
            " WHERE id IN (SELECT id FROM deliveries WHERE channel = 'sms' AND state = 'pending'"
            " ORDER BY due_at LIMIT 200) RETURNING id"
        )
    ]
    db.execute("COMMIT")
    if not ids:
        break
    db.execute("BEGIN IMMEDIATE")
    db.executemany(
        "UPDATE deliveries SET state = 'delivered', lease_until = NULL, updated_at = 1 WHERE id = ?",
        ((i,) for i in ids),
    )
    db.execute("COMMIT")
    done += len(ids)
t2 = time.perf_counter()
assert done == n, (done, n)
print(
    f"sqlite floor (python sqlite3): plan {n} rows {t1 - t0:.2f} s, "
    f"claim + finish in batches of 200 {t2 - t1:.2f} s, total {t2 - t0:.2f} s "
    f"= {1e6 * (t2 - t0) / n:.1f} µs per delivery"
)
