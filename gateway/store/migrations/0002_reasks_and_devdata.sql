-- A user who asks again in the same context (the same request resent, or the last user turn
-- rephrased) rejects the earlier answer: interactions remember the context they answered.
ALTER TABLE interactions ADD COLUMN context_hash TEXT;
CREATE INDEX interactions_by_context ON interactions (context_hash, created_at);
-- Continue's dev-data events are matched to interactions by the completion text they carry.
CREATE INDEX interactions_by_response ON interactions (response_text) WHERE length(response_text) > 0;
