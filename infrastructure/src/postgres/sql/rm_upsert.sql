-- A batch of documents of one collection, by arrays, with its filter columns ({table},
-- {filter_columns}, {filter_arrays}, {filter_updates} are filled per collection). A document
-- that already applied a later position is left alone and not returned.
INSERT INTO {table} (id, body, last_position, history_count{filter_columns})
SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::integer[]{filter_arrays})
ON CONFLICT (id) DO UPDATE SET body = excluded.body, last_position = excluded.last_position,
    history_count = {table}.history_count + excluded.history_count{filter_updates}
WHERE {table}.last_position < excluded.last_position
RETURNING id, history_count
