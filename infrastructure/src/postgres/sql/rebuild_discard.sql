-- Deletes a rebuild's staging area.
DROP SCHEMA IF EXISTS {schema} CASCADE
