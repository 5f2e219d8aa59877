SELECT i.version, e.hash
FROM stream_index i JOIN events e ON e.position = i.position
WHERE i.stream_key = ?1 AND e.stream = ?2
ORDER BY i.version DESC
LIMIT 1
