-- The statements that made the live file's tables, indexes and triggers, tables first, to give
-- a rebuild's scratch file the same shape.
SELECT sql FROM main.sqlite_master
WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'
ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, name
