-- The subjects a sink delivered beyond its checkpoint.
SELECT d.subject, d.position
FROM outbox_delivered AS d
WHERE d.sink = ?1
  AND d.position > coalesce((SELECT position FROM outbox_checkpoints WHERE sink = ?1), 0)
