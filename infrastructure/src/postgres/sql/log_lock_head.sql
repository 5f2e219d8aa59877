-- Takes the log head row lock for the whole batch and reads the head.
UPDATE lablet_log_head SET position = position RETURNING position
