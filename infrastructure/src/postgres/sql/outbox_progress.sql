-- Every sink with a mark or parked events: its mark and how many events it parked.
SELECT sink, max(position), max(read_position), max(outstanding), sum(parked)::bigint FROM (
    SELECT sink, position, read_position, outstanding, 0::bigint AS parked FROM lablet_outbox_checkpoints
    UNION ALL
    SELECT sink, 0, 0, 0, count(*) FROM lablet_outbox_parked GROUP BY sink) AS both_tables
GROUP BY sink ORDER BY sink
