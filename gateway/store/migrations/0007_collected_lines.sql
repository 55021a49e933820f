-- Lines that collectors read from files outside the gateway (Continue's dev data, ...). Each
-- line is taken once: a restart or a second `loragate collect` finds its id and skips it.
-- status: joined (it judged a recorded answer), unmatched (it would have, but no answer was
-- found), ignored (an event that judges nothing), corrupt (not a JSON object).
CREATE TABLE collected_lines (
    id TEXT PRIMARY KEY,
    collector TEXT NOT NULL,
    event TEXT,
    status TEXT NOT NULL,
    created_at REAL NOT NULL
);
-- An accepted answer looks up the re-asks it settles (their `detail` names it) once per event:
-- without this index that was a scan of every outcome.
CREATE INDEX outcomes_reasked_by_answer ON outcomes (detail) WHERE kind = 'reasked';
