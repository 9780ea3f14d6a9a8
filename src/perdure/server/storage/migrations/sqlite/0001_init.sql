-- Perdure SQLite schema, version 1.
--
-- Tables keyed by a composite primary key are WITHOUT ROWID: the row lives in the primary-key
-- B-tree itself, so an insert writes one tree instead of a rowid table plus an index. Single
-- text keys (invocations, timers) are WITHOUT ROWID for the same reason. Indexes exist only
-- where a query needs them; each one is an extra B-tree write on the hot path.

-- The columns a query filters or sorts on are real columns; the rest of InvocationRow is compact
-- JSON (defaults omitted) in `data`, and the outcome's value stays raw bytes in `outcome_value`.
CREATE TABLE invocations (
    id            TEXT    NOT NULL PRIMARY KEY,
    service       TEXT    NOT NULL,
    handler       TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    modified_at   INTEGER NOT NULL,
    data          TEXT    NOT NULL,
    outcome_value BLOB
) WITHOUT ROWID;

-- list_invocations: newest first, optionally for one service (and key).
CREATE INDEX invocations_by_created ON invocations (created_at);
CREATE INDEX invocations_by_service ON invocations (service, key, created_at);
-- list_active_invocations at start: a partial index holds only the invocations not completed,
-- so it stays small however many completed invocations are retained.
CREATE INDEX invocations_active ON invocations (created_at) WHERE status <> 'completed';

CREATE TABLE journal (
    invocation_id    TEXT    NOT NULL,
    idx              INTEGER NOT NULL,
    message_type     INTEGER NOT NULL,
    payload          BLOB    NOT NULL,
    notification_key TEXT,
    is_failure       INTEGER NOT NULL,
    PRIMARY KEY (invocation_id, idx)
) WITHOUT ROWID;

CREATE TABLE state (
    service TEXT NOT NULL,
    key     TEXT NOT NULL,
    name    BLOB NOT NULL,
    value   BLOB NOT NULL,
    PRIMARY KEY (service, key, name)
) WITHOUT ROWID;

CREATE TABLE locks (
    service       TEXT NOT NULL,
    key           TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    PRIMARY KEY (service, key)
) WITHOUT ROWID;

-- seq grows per (service, key): MAX(seq) + 1 at push, so the oldest entry has the lowest seq.
CREATE TABLE inbox (
    service       TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    invocation_id TEXT    NOT NULL,
    PRIMARY KEY (service, key, seq)
) WITHOUT ROWID;

CREATE TABLE timers (
    id            TEXT    NOT NULL PRIMARY KEY,
    fire_at       INTEGER NOT NULL,
    invocation_id TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    completion_id INTEGER
) WITHOUT ROWID;

-- list_timers sorts by (fire_at, id); the index carries the primary key, so it is (fire_at, id).
CREATE INDEX timers_by_fire_at ON timers (fire_at);

CREATE TABLE promises (
    service TEXT NOT NULL,
    key     TEXT NOT NULL,
    name    TEXT NOT NULL,
    data    TEXT NOT NULL,
    value   BLOB,
    PRIMARY KEY (service, key, name)
) WITHOUT ROWID;

CREATE TABLE idempotency (
    service       TEXT NOT NULL,
    key           TEXT NOT NULL,
    handler       TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    PRIMARY KEY (service, key, handler, idem_key)
) WITHOUT ROWID;

CREATE TABLE workflow_runs (
    service       TEXT NOT NULL,
    key           TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    PRIMARY KEY (service, key)
) WITHOUT ROWID;

CREATE TABLE deployments (
    id         TEXT    NOT NULL PRIMARY KEY,
    created_at INTEGER NOT NULL,
    data       TEXT    NOT NULL
) WITHOUT ROWID;

CREATE TABLE services (
    name          TEXT    NOT NULL PRIMARY KEY,
    revision      INTEGER NOT NULL,
    deployment_id TEXT    NOT NULL,
    service_type  TEXT    NOT NULL,
    definition    TEXT    NOT NULL,
    public        INTEGER NOT NULL
) WITHOUT ROWID;
