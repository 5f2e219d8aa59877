SELECT body, last_position FROM {collection} WHERE id = ?1
