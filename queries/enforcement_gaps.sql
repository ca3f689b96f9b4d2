-- Enforcement gaps: accesses answered 2xx whose resource type and interaction the token's
-- granted scopes do not cover (the server or a gateway is not enforcing SMART scopes).
-- Only accesses whose token was seen in the same history can be checked (granted_scopes set).
SELECT
  client_id,
  date,
  resource_type,
  interaction,
  count(*) AS served_requests,
  count(DISTINCT token_id) AS tokens,
  min(time) AS first_seen
FROM access
WHERE status BETWEEN 200 AND 299
  AND granted_scopes IS NOT NULL
  AND resource_type IS NOT NULL
  AND interaction IN ('read', 'vread', 'search-type', 'search-compartment', 'create', 'update', 'patch', 'delete')
  AND NOT scope_covers(granted_scopes, resource_type, interaction)
GROUP BY client_id, date, resource_type, interaction
ORDER BY date, client_id, resource_type;
