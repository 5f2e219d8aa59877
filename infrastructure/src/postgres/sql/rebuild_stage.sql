-- A rebuild's staging area: a schema of its own ({schema}) with empty tables shaped like the
-- live checkpoints, history and collection ({table}).
CREATE SCHEMA {schema};
CREATE TABLE {schema}.lablet_rm_checkpoints (LIKE lablet_rm_checkpoints INCLUDING ALL);
CREATE TABLE {schema}.lablet_rm_history (LIKE lablet_rm_history INCLUDING ALL);
CREATE TABLE {schema}.{table} (LIKE {table} INCLUDING ALL);
