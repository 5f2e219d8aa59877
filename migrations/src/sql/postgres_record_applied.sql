-- Records an applied migration ({table} of its store).
INSERT INTO {table} (version, name) VALUES ($1, $2)
