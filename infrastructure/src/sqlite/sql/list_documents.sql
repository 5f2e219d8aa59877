-- A page of documents by id ({table}, {where} and {limit} filled per query).
SELECT id, body FROM {table} {where} ORDER BY id LIMIT {limit}
