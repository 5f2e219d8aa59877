-- A role's current fencing token, to check a write made under its lease.
SELECT token FROM leases WHERE role = ?1
