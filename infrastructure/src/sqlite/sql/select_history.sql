SELECT first_position, entries, body FROM operation_history
WHERE collection = ?1 AND entity_id = ?2
ORDER BY first_position DESC
