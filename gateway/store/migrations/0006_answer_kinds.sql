-- What became of an answer: `served` (the client got it), `retried` (it failed an automatic
-- check and the validation-gated fallback answered instead: `fallback_of` on that answer names
-- it), `shadow` (a candidate's answer generated in the background, never shown).
ALTER TABLE interactions ADD COLUMN kind TEXT NOT NULL DEFAULT 'served';
ALTER TABLE interactions ADD COLUMN fallback_of TEXT;
