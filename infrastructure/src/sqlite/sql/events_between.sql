SELECT position, stream, version FROM events WHERE position > ?1 AND position <= ?2
