-- Offline evaluations of model versions: one row per (version, suite) run, with its metrics
-- and each item's score, so that two versions' runs on the same items can be paired.
CREATE TABLE eval_runs (
    id         TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    version    TEXT NOT NULL,
    suite      TEXT NOT NULL,
    items_hash TEXT NOT NULL,
    n          INTEGER NOT NULL,
    metrics    TEXT NOT NULL,
    items      TEXT NOT NULL
);
CREATE INDEX eval_runs_by_version ON eval_runs (version, suite, created_at);
