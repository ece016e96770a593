-- 1.2.0: per-call accounting of tool invocations, and a daily usage view.
CREATE TABLE IF NOT EXISTS tool_invocations (
    id           bigserial PRIMARY KEY,
    session_id   bigint REFERENCES sessions (id) ON DELETE CASCADE,
    tool_id      integer REFERENCES tools (id) ON DELETE SET NULL,
    called_at    timestamptz NOT NULL DEFAULT now(),
    duration_ms  integer CHECK (duration_ms IS NULL OR duration_ms >= 0),
    ok           boolean NOT NULL DEFAULT true,
    error        text
);
CREATE INDEX IF NOT EXISTS tool_invocations_called_at_idx ON tool_invocations (called_at);
CREATE INDEX IF NOT EXISTS tool_invocations_session_idx ON tool_invocations (session_id);

ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS details jsonb;

CREATE OR REPLACE VIEW daily_session_stats AS
SELECT date_trunc('day', started_at) AS day,
       count(*)                      AS sessions,
       count(DISTINCT user_name)     AS users
  FROM sessions
 GROUP BY 1;
