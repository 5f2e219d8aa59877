-- Why a projection is stuck, if it is: the error of the event it cannot apply, kept until the
-- projection commits again.
ALTER TABLE projection_checkpoints ADD COLUMN last_error TEXT;
ALTER TABLE projection_checkpoints ADD COLUMN error_position INTEGER;
ALTER TABLE projection_checkpoints ADD COLUMN error_at TEXT;
