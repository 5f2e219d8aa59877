-- Every API key, newest first.
SELECT id, name, roles, secret_sha256, created_at, created_by, revoked_at FROM api_keys ORDER BY created_at DESC, id DESC
