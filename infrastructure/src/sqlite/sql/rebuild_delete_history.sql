-- A swap: the live history of the collection goes.
DELETE FROM main.operation_history WHERE collection = ?1
