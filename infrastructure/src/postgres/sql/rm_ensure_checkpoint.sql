-- A projection that never committed gets its checkpoint row at 0, so that two first commits
-- lock one row instead of both finding none.
INSERT INTO lablet_rm_checkpoints (name, position, generation, updated_at)
    VALUES ($1, 0, 0, now())
    ON CONFLICT (name) DO NOTHING
