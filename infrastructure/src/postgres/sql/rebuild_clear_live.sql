-- A swap: the live documents of the collection ({table}) go.
DELETE FROM {table}
