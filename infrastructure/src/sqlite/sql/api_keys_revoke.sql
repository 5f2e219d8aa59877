-- Revokes a key; a revoked key keeps its first revocation time.
UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1
