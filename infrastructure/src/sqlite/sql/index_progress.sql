SELECT position FROM stream_index_progress WHERE id = 1
