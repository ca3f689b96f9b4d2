-- Apps holding wildcard (`*`) or system-level scopes: the broadest grants, which deserve a
-- documented reason. One row per app and scope, with how many tokens carried it and when last.
-- `granted_scopes` holds canonical SMART v2 spellings (`patient/*.rs`), so the context is the
-- part before the slash and a wildcard resource is `*` (invalid tokens are stored as `!…`).
SELECT
  client_id,
  scope,
  CASE
    WHEN scope LIKE 'patient/%' THEN 'patient'
    WHEN scope LIKE 'user/%' THEN 'user'
    WHEN scope LIKE 'system/%' THEN 'system'
  END AS context,
  (scope LIKE 'patient/*.%' OR scope LIKE 'user/*.%' OR scope LIKE 'system/*.%') AS wildcard,
  count(*) AS tokens,
  max(time) AS last_granted
FROM (
  SELECT client_id, time, unnest(granted_scopes) AS scope
  FROM tokens
  WHERE event IN ('issued', 'refreshed')
) t
WHERE scope LIKE 'patient/*.%' OR scope LIKE 'user/*.%' OR scope LIKE 'system/%'
GROUP BY client_id, scope
ORDER BY wildcard DESC, client_id, scope;
