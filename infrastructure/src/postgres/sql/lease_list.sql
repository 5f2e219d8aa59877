-- Every lease.
SELECT role, holder, token, expires_at FROM lablet_leases ORDER BY role
