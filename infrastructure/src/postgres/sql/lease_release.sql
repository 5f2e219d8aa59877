-- Gives a lease up at once, if this holder has it.
UPDATE lablet_leases SET expires_at = 'epoch' WHERE role = $1 AND holder = $2
