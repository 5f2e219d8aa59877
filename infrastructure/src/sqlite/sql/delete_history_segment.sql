DELETE FROM operation_history WHERE collection = ?1 AND entity_id = ?2 AND first_position = ?3
