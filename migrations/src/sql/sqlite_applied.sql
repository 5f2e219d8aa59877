-- Whether a migration was applied.
SELECT version FROM schema_migrations WHERE version = ?1
