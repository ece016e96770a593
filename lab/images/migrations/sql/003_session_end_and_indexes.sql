-- 1.1.0: sessions record when they ended; time-range queries on sessions and the audit log.
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS ended_at timestamptz;
-- Backfill from the payload's duration (seeded sessions carry duration_ms).
UPDATE sessions
   SET ended_at = started_at + ((payload ->> 'duration_ms')::bigint * interval '1 millisecond')
 WHERE ended_at IS NULL
   AND payload ? 'duration_ms'
   AND (payload ->> 'duration_ms') ~ '^[0-9]+$';
CREATE INDEX IF NOT EXISTS sessions_started_at_idx ON sessions (started_at);
CREATE INDEX IF NOT EXISTS sessions_user_name_idx ON sessions (user_name);
CREATE INDEX IF NOT EXISTS audit_log_at_idx ON audit_log (at);
