DELETE FROM operation_history
WHERE collection = ?1 AND entity_id = ?2 AND position <= (
    SELECT position FROM operation_history
    WHERE collection = ?1 AND entity_id = ?2
    ORDER BY position DESC LIMIT 1 OFFSET ?3
)
