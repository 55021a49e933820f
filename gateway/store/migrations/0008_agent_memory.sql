-- The LibCST repair agent's success memory (`<project>/.agent_data/success_memory.jsonl`), one
-- row per line, with where its validated script was found. status: joined (the recorded answer
-- that wrote the script is marked a success), script_only (the script was found in
-- `.autopatches/`, no recorded answer wrote it), missing (no script hashes to the line's hash:
-- kept with the reason, never guessed).
CREATE TABLE agent_memory (
    id             TEXT PRIMARY KEY,
    project        TEXT NOT NULL,
    created_at     REAL NOT NULL,
    issue_id       TEXT,
    description    TEXT NOT NULL DEFAULT '',
    target_files   TEXT NOT NULL DEFAULT '[]',
    operations     TEXT NOT NULL DEFAULT '[]',
    diff_summary   TEXT NOT NULL DEFAULT '',
    script_hash    TEXT NOT NULL DEFAULT '',
    patch_source   TEXT NOT NULL DEFAULT '',
    script         TEXT,
    found_in       TEXT,
    hash_method    TEXT,
    interaction_id TEXT,
    status         TEXT NOT NULL,
    reason         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX agent_memory_by_interaction ON agent_memory (interaction_id);
