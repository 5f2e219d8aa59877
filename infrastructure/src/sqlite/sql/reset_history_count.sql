UPDATE {collection} SET history_count = ?2 WHERE id = ?1
