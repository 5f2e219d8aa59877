INSERT OR REPLACE INTO operation_history (collection, entity_id, first_position, entries, body) VALUES (?1, ?2, ?3, ?4, ?5)
