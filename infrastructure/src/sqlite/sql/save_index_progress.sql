UPDATE stream_index_progress SET position = ?1 WHERE id = 1
