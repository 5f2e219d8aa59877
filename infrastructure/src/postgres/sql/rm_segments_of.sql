-- The history segments of some documents of a collection, oldest first per document.
SELECT entity_id, body FROM lablet_rm_history
    WHERE collection = $1 AND entity_id = ANY($2) ORDER BY entity_id, first_position
