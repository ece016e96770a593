-- Seed data of the lab database mcp_production (run it connected to that database; it does not
-- create the database). Idempotent: creates the tables if missing and fills each one only when it
-- is empty, so running it twice changes nothing. Deterministic (no random()), so row counts and
-- contents are the same on every lab machine:
--   tools 24 rows, sessions 600 rows, audit_log 400 rows.
BEGIN;

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

-- Serialise concurrent seeders (two lab-up runs at once) for the rest of the transaction.
LOCK TABLE tools, sessions, audit_log IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO tools (name, service, created_at)
SELECT t.name, t.service, timestamptz '2025-06-01 09:00:00+00' + (t.ord * interval '3 days 4 hours')
FROM (VALUES
    (1, 'list_files', 'filesystem'), (2, 'read_file', 'filesystem'), (3, 'write_file', 'filesystem'),
    (4, 'stat', 'filesystem'), (5, 'search_files', 'filesystem'), (6, 'move_file', 'filesystem'),
    (7, 'git_status', 'git'), (8, 'git_log', 'git'), (9, 'git_diff', 'git'), (10, 'git_show', 'git'),
    (11, 'git_branch', 'git'), (12, 'git_blame', 'git'),
    (13, 'query', 'postgres'), (14, 'list_tables', 'postgres'), (15, 'describe_table', 'postgres'),
    (16, 'fetch', 'web'), (17, 'search', 'web'), (18, 'screenshot', 'web'),
    (19, 'create_issue', 'tickets'), (20, 'list_issues', 'tickets'), (21, 'comment', 'tickets'),
    (22, 'ping', 'filesystem'), (23, 'ping', 'git'), (24, 'ping', 'postgres')
) AS t(ord, name, service)
WHERE NOT EXISTS (SELECT 1 FROM tools)
ORDER BY t.ord;

INSERT INTO sessions (user_name, started_at, payload)
SELECT (ARRAY['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy',
              'mallory', 'niaj', 'olivia', 'peggy', 'rupert', 'sybil', 'trent', 'victor', 'walter', 'ci-bot'])[1 + (g % 20)],
       timestamptz '2026-10-01 00:00:00+00' + (g * interval '77 minutes'),
       jsonb_build_object(
           'client', (ARRAY['claude-desktop', 'vscode', 'cursor', 'cli', 'ci'])[1 + (g % 5)],
           'client_version', format('%s.%s.%s', 1 + g % 3, g % 10, g % 7),
           'service', (ARRAY['filesystem', 'git', 'postgres', 'web'])[1 + (g % 4)],
           'protocol', (ARRAY['2025-06-18', '2025-11-25', '2026-07-28'])[1 + (g % 3)],
           'tool_calls', (g * 7) % 41,
           'duration_ms', 200 + (g * 131) % 90000,
           'ok', (g % 23) <> 0,
           'source_ip', format('10.%s.%s.%s', 20 + g % 4, (g / 7) % 250, 1 + g % 250))
FROM generate_series(1, 600) AS g
WHERE NOT EXISTS (SELECT 1 FROM sessions)
ORDER BY g;

INSERT INTO audit_log (at, actor, action)
SELECT timestamptz '2026-10-01 00:05:00+00' + (g * interval '113 minutes'),
       (ARRAY['alice', 'bob', 'carol', 'ops-automation', 'ci-bot', 'awx'])[1 + (g % 6)],
       (ARRAY['login', 'tool.call filesystem/read_file', 'tool.call git/git_log', 'session.close',
              'config.update gateway', 'deploy filesystem 1.0.0', 'backup.create', 'user.invite',
              'token.rotate', 'maintenance.enable', 'maintenance.disable', 'tool.call postgres/query'])[1 + (g % 12)]
FROM generate_series(1, 400) AS g
WHERE NOT EXISTS (SELECT 1 FROM audit_log)
ORDER BY g;

COMMIT;
