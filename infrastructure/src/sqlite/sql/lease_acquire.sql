-- Takes a lease that is free, expired at ?3, or already ?2's (a renewal keeps the token; a new
-- holder gets the next one). Answers the lease, or nothing if another replica holds it.
INSERT INTO leases (role, holder, token, expires_ms) VALUES (?1, ?2, 1, ?4)
ON CONFLICT (role) DO UPDATE SET
    token = CASE WHEN leases.holder = excluded.holder THEN leases.token ELSE leases.token + 1 END,
    holder = excluded.holder,
    expires_ms = excluded.expires_ms
WHERE leases.holder = excluded.holder OR leases.expires_ms <= ?3
RETURNING role, holder, token, expires_ms
