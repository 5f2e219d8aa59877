-- Recounts the operations of documents whose old segments were trimmed ({table} per collection).
UPDATE {table} AS d SET history_count = (SELECT coalesce(sum(entries), 0)::integer
    FROM lablet_rm_history AS h WHERE h.collection = $1 AND h.entity_id = d.id)
WHERE d.id = ANY($2)
