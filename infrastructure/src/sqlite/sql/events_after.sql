SELECT position, stream, version, hash FROM events WHERE position > ?1 ORDER BY position
