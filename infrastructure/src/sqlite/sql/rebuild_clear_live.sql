-- A swap: the live documents of the collection go ({table}).
DELETE FROM main.{table}
