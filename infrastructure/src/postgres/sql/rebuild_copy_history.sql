-- A swap: the staged history ({schema}) comes in.
INSERT INTO lablet_rm_history SELECT * FROM {schema}.lablet_rm_history WHERE collection = $1
