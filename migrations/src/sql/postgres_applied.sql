-- Whether a migration was applied ({table} of its store).
SELECT version FROM {table} WHERE version = $1
