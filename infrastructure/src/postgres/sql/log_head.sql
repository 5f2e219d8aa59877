-- The position of the last committed event.
SELECT position FROM lablet_log_head
