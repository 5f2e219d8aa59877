-- Secrets Lablet must be able to read back (CML credentials), sealed with AES-256-GCM under the
-- key of LABLET_SECRET_KEY; the plaintext is never stored.
CREATE TABLE sealed_secrets (
    name       TEXT PRIMARY KEY,
    sealed     TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
