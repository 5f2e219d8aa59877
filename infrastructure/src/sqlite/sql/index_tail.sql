INSERT INTO stream_index (stream_key, version, position) VALUES (?1, ?2, ?3)
