-- One sealed secret by name.
SELECT sealed FROM lablet_sealed_secrets WHERE name = $1
