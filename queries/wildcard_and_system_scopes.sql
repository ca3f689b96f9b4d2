-- Apps holding wildcard (`*`) or system-level scopes: the broadest grants, which deserve a
-- documented reason. One row per app and scope, with how many tokens carried it and when last.
SELECT
  client_id,
  scope,
  scope_context(scope) AS context,
  scope_is_wildcard(scope) AS wildcard,
  count(*) AS tokens,
  max(time) AS last_granted
FROM (
  SELECT client_id, time, unnest(granted_scopes) AS scope
  FROM tokens
  WHERE event IN ('issued', 'refreshed')
) t
WHERE scope_is_wildcard(scope) OR scope_context(scope) = 'system'
GROUP BY client_id, scope
ORDER BY wildcard DESC, client_id, scope;
