-- Every sink with a mark or parked events: its mark and how many events it parked.
SELECT sink, max(position), max(read_position), max(outstanding), sum(parked) FROM (
    SELECT sink, position, read_position, outstanding, 0 AS parked FROM outbox_checkpoints
    UNION ALL
    SELECT sink, 0, 0, 0, count(*) FROM outbox_parked GROUP BY sink)
GROUP BY sink ORDER BY sink
