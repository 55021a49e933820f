-- Model versions: `<base>@v<N>`, v0 being the base model itself. Files are named by role
-- (gguf, adapter_gguf, peft) with their path, sha256 and size, as JSON.
CREATE TABLE model_versions (
    name         TEXT PRIMARY KEY,
    base         TEXT NOT NULL,
    number       INTEGER NOT NULL,
    parent       TEXT,
    run_id       TEXT,
    dataset_hash TEXT,
    files        TEXT NOT NULL,
    metrics      TEXT,
    created_at   REAL NOT NULL,
    UNIQUE (base, number)
);
-- A version's state for a workload ('*' = every workload without a state of its own):
-- candidate, active, retired or failed, with why it got there.
CREATE TABLE version_states (
    version    TEXT NOT NULL REFERENCES model_versions (name) ON DELETE CASCADE,
    workload   TEXT NOT NULL,
    state      TEXT NOT NULL,
    reason     TEXT,
    changed_at REAL NOT NULL,
    PRIMARY KEY (version, workload)
);
-- Every change of what serves a workload, in order; serving gateways watch max(id).
CREATE TABLE deployments (
    id       INTEGER PRIMARY KEY,
    at       REAL NOT NULL,
    workload TEXT NOT NULL,
    action   TEXT NOT NULL,
    version  TEXT NOT NULL,
    previous TEXT,
    reason   TEXT
);
