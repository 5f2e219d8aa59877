-- Every lease.
SELECT role, holder, token, expires_ms FROM leases ORDER BY role
