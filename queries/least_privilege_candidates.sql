-- Least-privilege candidates: scopes each app is granted against the scopes its accesses
-- actually needed. A resource scope no served access of the app ever used is a candidate for
-- removal from the app's registration. Non-resource scopes (openid, launch, …) are left out.
-- Operations ($export, $everything) need no letters of their own, so a scope used only through
-- them (a Bulk Data client's system/*.rs) shows as unused here: check bulk clients by hand.
WITH granted AS (
  SELECT DISTINCT client_id, unnest(granted_scopes) AS scope
  FROM tokens
  WHERE event IN ('issued', 'refreshed')
),
resource_scopes AS (
  SELECT client_id, scope FROM granted WHERE scope_context(scope) IS NOT NULL
),
used AS (
  SELECT DISTINCT client_id, resource_type, interaction
  FROM access
  WHERE status BETWEEN 200 AND 299 AND resource_type IS NOT NULL
)
SELECT
  g.client_id,
  g.scope,
  count(u.resource_type) AS request_kinds_using_it,
  count(u.resource_type) = 0 AS never_used
FROM resource_scopes g
LEFT JOIN used u
  ON u.client_id = g.client_id
 AND scope_covers(g.scope, u.resource_type, u.interaction)
GROUP BY g.client_id, g.scope
ORDER BY never_used DESC, g.client_id, g.scope;
