-- Deletes segments whose newer ones already hold 50 operations.
DELETE FROM lablet_rm_history AS h USING (
    SELECT entity_id, first_position,
    coalesce(sum(entries) OVER (PARTITION BY entity_id ORDER BY first_position DESC
    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS newer
    FROM lablet_rm_history WHERE collection = $1 AND entity_id = ANY($2)) AS ranked
    WHERE h.collection = $1 AND h.entity_id = ranked.entity_id AND h.first_position = ranked.first_position
    AND ranked.newer >= $3
