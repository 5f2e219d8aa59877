-- The channel the log writer notifies on every commit (EVENTS_CHANNEL).
LISTEN lablet_events
