-- A swap: the rebuilt history comes in.
INSERT INTO main.operation_history SELECT * FROM rebuilt.operation_history WHERE collection = ?1
