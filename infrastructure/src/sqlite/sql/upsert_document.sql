INSERT INTO {collection} (id, body, last_position, history_count{filter_columns})
VALUES (?1, ?2, ?3, ?4{filter_values})
ON CONFLICT (id) DO UPDATE SET
    body = excluded.body,
    last_position = excluded.last_position,
    history_count = {collection}.history_count + excluded.history_count{filter_updates}
RETURNING history_count
