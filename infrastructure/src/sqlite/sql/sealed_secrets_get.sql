-- One sealed secret by name.
SELECT sealed FROM sealed_secrets WHERE name = ?1
