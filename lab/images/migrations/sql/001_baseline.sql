-- Baseline schema (platform 1.0.0). The lab database is seeded before any migration runs, so
-- everything here tolerates existing objects.
CREATE TABLE IF NOT EXISTS tools (
    id          serial PRIMARY KEY,
    name        text NOT NULL,
    service     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS sessions (
    id          bigserial PRIMARY KEY,
    user_name   text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    payload     jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE IF NOT EXISTS audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    action  text NOT NULL
);
