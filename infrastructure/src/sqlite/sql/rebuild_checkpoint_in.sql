-- A projection's checkpoint in the live ({schema} = main) or the rebuilt file.
SELECT position FROM {schema}.projection_checkpoints WHERE name = ?1
