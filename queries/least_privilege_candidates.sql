-- Least-privilege candidates: the resource scopes each app is granted against the scopes that
-- served its accesses. `used_scopes` is written with every access: the granted scopes that
-- allowed it as detection judged it (a Bulk Data export or `$everything` is served by every
-- scope that lets the token read what it returned). A scope no access ever used is a candidate
-- for removal; `scopewatch least-privilege` goes further and recommends the narrower scopes.
-- Non-resource scopes (openid, launch, …) are left out. Accesses written before scopewatch
-- stored `used_scopes` (NULL) count as using nothing: re-run `detect` over their input first.
WITH granted AS (
  SELECT DISTINCT client_id, unnest(granted_scopes) AS scope
  FROM tokens
  WHERE event IN ('issued', 'refreshed')
),
resource_scopes AS (
  SELECT client_id, scope
  FROM granted
  WHERE scope LIKE 'patient/%' OR scope LIKE 'user/%' OR scope LIKE 'system/%'
),
used AS (
  SELECT client_id, scope, count(*) AS requests
  FROM (SELECT client_id, unnest(used_scopes) AS scope FROM access) u
  GROUP BY client_id, scope
)
SELECT
  g.client_id,
  g.scope,
  coalesce(u.requests, 0) AS requests_using_it,
  u.requests IS NULL AS never_used
FROM resource_scopes g
LEFT JOIN used u
  ON u.client_id = g.client_id
 AND u.scope = g.scope
ORDER BY never_used DESC, g.client_id, g.scope;
