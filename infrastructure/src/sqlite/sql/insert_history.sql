INSERT OR IGNORE INTO operation_history (collection, entity_id, position, entry) VALUES (?1, ?2, ?3, ?4)
