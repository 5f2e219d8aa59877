-- The new history segments of a commit.
INSERT INTO lablet_rm_history (collection, entity_id, first_position, entries, body)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::integer[], $5::text[])
    ON CONFLICT (collection, entity_id, first_position) DO NOTHING
