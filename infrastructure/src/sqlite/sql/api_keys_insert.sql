-- A new API key (never revoked yet).
INSERT INTO api_keys (id, name, roles, secret_sha256, created_at, created_by, revoked_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)
