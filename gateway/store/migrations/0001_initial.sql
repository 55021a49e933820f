-- Interactions, the outcomes that judge them, and the corrections users made.
CREATE TABLE interactions (
    id                TEXT PRIMARY KEY,
    created_at        REAL NOT NULL,
    api               TEXT NOT NULL,
    client            TEXT,
    workload          TEXT NOT NULL,
    model_requested   TEXT NOT NULL,
    version           TEXT NOT NULL,
    propensity        REAL NOT NULL DEFAULT 1.0,
    conversation_id   TEXT,
    request           TEXT NOT NULL,
    response_text     TEXT NOT NULL DEFAULT '',
    tool_calls        TEXT,
    finish_reason     TEXT,
    status            TEXT NOT NULL,
    error             TEXT,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    latency_ms        REAL,
    ttft_ms           REAL,
    redactions        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX interactions_by_time ON interactions (created_at);
CREATE INDEX interactions_by_workload ON interactions (workload, created_at);
CREATE INDEX interactions_by_conversation ON interactions (conversation_id, created_at);

CREATE TABLE tool_calls (
    call_id        TEXT PRIMARY KEY,
    interaction_id TEXT NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
    name           TEXT NOT NULL
);
CREATE INDEX tool_calls_by_interaction ON tool_calls (interaction_id);

CREATE TABLE outcomes (
    id             INTEGER PRIMARY KEY,
    interaction_id TEXT NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    value          REAL NOT NULL,
    source         TEXT NOT NULL,
    detail         TEXT NOT NULL DEFAULT '',
    created_at     REAL NOT NULL,
    UNIQUE (interaction_id, kind, source, detail)
);
CREATE INDEX outcomes_by_interaction ON outcomes (interaction_id);

CREATE TABLE corrections (
    id             INTEGER PRIMARY KEY,
    interaction_id TEXT NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
    content        TEXT NOT NULL,
    source         TEXT NOT NULL,
    created_at     REAL NOT NULL
);
CREATE INDEX corrections_by_interaction ON corrections (interaction_id);
