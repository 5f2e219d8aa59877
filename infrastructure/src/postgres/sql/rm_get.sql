-- One document ({table} per collection).
SELECT body FROM {table} WHERE id = $1
