-- Takes a lease that is free, expired at $3, or already $2's (a renewal keeps the token; a new
-- holder gets the next one). Answers the lease, or nothing if another replica holds it.
INSERT INTO lablet_leases AS held (role, holder, token, expires_at) VALUES ($1, $2, 1, $4)
ON CONFLICT (role) DO UPDATE SET
    token = CASE WHEN held.holder = excluded.holder THEN held.token ELSE held.token + 1 END,
    holder = excluded.holder,
    expires_at = excluded.expires_at
WHERE held.holder = excluded.holder OR held.expires_at <= $3
RETURNING role, holder, token, expires_at
