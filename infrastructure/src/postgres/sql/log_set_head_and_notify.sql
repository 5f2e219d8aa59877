-- Moves the head, notifies followers, and fails (a division by zero) unless exactly the
-- batch's rows were stored, so that the COMMIT behind it rolls everything back.
WITH moved AS (UPDATE lablet_log_head SET position = $1)
SELECT pg_notify($2, $1::text)
FROM (SELECT count(*) AS stored FROM lablet_events WHERE position > $3) AS written
WHERE 1 / (CASE WHEN written.stored = $1 - $3 THEN 1 ELSE 0 END) = 1
