-- A swap: the staged documents ({schema}) come in.
INSERT INTO {table} SELECT * FROM {schema}.{table}
