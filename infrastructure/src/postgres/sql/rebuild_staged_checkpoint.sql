-- The checkpoint a rebuild reached in its staging area ({schema}).
SELECT position FROM {schema}.lablet_rm_checkpoints WHERE name = $1
