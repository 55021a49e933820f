-- The dashboard walks interactions newest first with the id as tie-breaker (its page cursor),
-- and lists the versions and clients that answered.
CREATE INDEX interactions_newest ON interactions (created_at, id);
CREATE INDEX interactions_by_version ON interactions (version, created_at);
CREATE INDEX interactions_by_client ON interactions (client, created_at);
-- The review queue reads the newest failing verdicts and re-asks.
CREATE INDEX outcomes_failing ON outcomes (created_at) WHERE value < 0.5 AND kind NOT IN ('comment', 'reasked');
CREATE INDEX outcomes_reasked_by_time ON outcomes (created_at) WHERE kind = 'reasked';
