-- Secrets Lablet must be able to read back (CML credentials), sealed with AES-256-GCM under the
-- key of LABLET_SECRET_KEY; the plaintext is never stored.
CREATE TABLE lablet_sealed_secrets (
    name       text COLLATE "C" PRIMARY KEY,
    sealed     text        NOT NULL,
    updated_at timestamptz NOT NULL
);
