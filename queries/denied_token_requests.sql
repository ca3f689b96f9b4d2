-- Denied token requests by app: declined consent, invalid clients, scopes the server refused.
-- A rise can mean an app asking for more than users or policy allow.
SELECT
  client_id,
  count(*) AS denied,
  count(DISTINCT date) AS days_with_denials,
  max(time) AS last_denied,
  array_agg(DISTINCT scope_requested) AS scopes_requested
FROM tokens
WHERE event = 'denied'
GROUP BY client_id
ORDER BY denied DESC, client_id;
