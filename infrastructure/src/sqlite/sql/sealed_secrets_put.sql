-- Stores a sealed secret, replacing the one of the same name.
INSERT INTO sealed_secrets (name, sealed, updated_at) VALUES (?1, ?2, ?3)
ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at
