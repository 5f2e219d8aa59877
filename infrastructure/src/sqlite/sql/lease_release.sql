-- Gives a lease up at once, if this holder has it.
UPDATE leases SET expires_ms = 0 WHERE role = ?1 AND holder = ?2
