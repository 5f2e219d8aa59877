-- A role's current fencing token.
SELECT token FROM lablet_leases WHERE role = $1
