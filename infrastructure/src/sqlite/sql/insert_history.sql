INSERT OR REPLACE INTO operation_history (collection, entity_id, position, entry) VALUES (?1, ?2, ?3, ?4)
