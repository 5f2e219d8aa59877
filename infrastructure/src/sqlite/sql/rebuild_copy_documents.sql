-- A swap: the rebuilt documents come in ({table}).
INSERT INTO main.{table} SELECT * FROM rebuilt.{table}
