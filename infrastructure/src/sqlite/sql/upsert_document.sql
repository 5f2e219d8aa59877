INSERT INTO {collection} (id, body, last_position) VALUES (?1, ?2, ?3)
ON CONFLICT (id) DO UPDATE SET body = excluded.body, last_position = excluded.last_position
