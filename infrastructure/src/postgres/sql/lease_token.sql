-- A role's current fencing token, to check a write made under its lease; the shared row lock
-- holds off a new holder's acquire until the write's transaction ends.
SELECT token FROM lablet_leases WHERE role = $1 FOR SHARE
