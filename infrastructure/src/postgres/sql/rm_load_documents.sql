-- Documents by id, with the last position applied to each ({table} per collection).
SELECT id, body, last_position FROM {table} WHERE id = ANY($1)
