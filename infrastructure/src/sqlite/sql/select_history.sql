SELECT entry FROM operation_history WHERE collection = ?1 AND entity_id = ?2 ORDER BY position DESC LIMIT ?3
