-- Each projection's generation: a rebuild that swaps a new read model in bumps it, and a runner
-- commits only while the generation it started from is still current.
ALTER TABLE projection_checkpoints ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
