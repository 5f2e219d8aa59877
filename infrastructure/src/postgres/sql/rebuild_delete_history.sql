-- A swap: the live history of the collection goes.
DELETE FROM lablet_rm_history WHERE collection = $1
