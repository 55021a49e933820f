-- Every training run, whatever its engine: what it trained on, how, where its files are, and
-- how it went (status: running, completed, interrupted, failed).
CREATE TABLE training_runs (
    id           TEXT PRIMARY KEY,
    created_at   REAL NOT NULL,
    finished_at  REAL,
    dataset_hash TEXT NOT NULL,
    base         TEXT NOT NULL,
    engine       TEXT NOT NULL,
    device       TEXT,
    recipe       TEXT NOT NULL,
    status       TEXT NOT NULL,
    path         TEXT NOT NULL,
    metrics      TEXT
);
CREATE INDEX training_runs_by_time ON training_runs (created_at);
