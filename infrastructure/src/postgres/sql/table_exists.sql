-- Whether a table exists (the migrations have run).
SELECT to_regclass($1) IS NOT NULL
