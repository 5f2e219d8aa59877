-- One API key by id.
SELECT id, name, roles, secret_sha256, created_at, created_by, revoked_at FROM lablet_api_keys WHERE id = $1
