-- Documents by id ({table} and {placeholders}, one ? per id, filled per call).
SELECT id, body, last_position FROM {table} WHERE id IN ({placeholders})
