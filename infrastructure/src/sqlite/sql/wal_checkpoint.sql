-- Copies what it can of the WAL into the database without waiting for readers.
PRAGMA wal_checkpoint(PASSIVE)
