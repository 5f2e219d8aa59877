-- A subject delivered up to a position; it only moves forward.
INSERT INTO outbox_delivered (sink, subject, position) VALUES (?1, ?2, ?3)
ON CONFLICT (sink, subject) DO UPDATE SET position = max(position, excluded.position)
