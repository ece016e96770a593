-- 1.0.0: tools can be switched off per service without deleting them; lookups by service.
ALTER TABLE tools ADD COLUMN IF NOT EXISTS enabled boolean NOT NULL DEFAULT true;
ALTER TABLE tools ADD COLUMN IF NOT EXISTS description text;
CREATE INDEX IF NOT EXISTS tools_service_idx ON tools (service);
