-- The newest version and hash of each stream of a batch.
SELECT s.stream, e.version, e.hash
FROM unnest($1::text[]) AS s(stream)
CROSS JOIN LATERAL (
    SELECT version, hash FROM lablet_events
    WHERE stream = s.stream ORDER BY version DESC LIMIT 1
) AS e
