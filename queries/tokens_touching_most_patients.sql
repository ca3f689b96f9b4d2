-- Tokens that touched the most distinct patients: patient fan-out per token. A token with a
-- launch patient (token_patient) should touch one patient; many means the app read beyond its
-- launch context.
SELECT
  token_id,
  client_id,
  token_patient IS NOT NULL AS has_launch_patient,
  count(DISTINCT patient) AS distinct_patients,
  count(*) AS requests,
  min(time) AS first_access,
  max(time) AS last_access
FROM access
WHERE token_id IS NOT NULL AND patient IS NOT NULL
GROUP BY token_id, client_id, token_patient IS NOT NULL
ORDER BY distinct_patients DESC, requests DESC, token_id
LIMIT 20;
