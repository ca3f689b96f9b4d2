-- Enforcement gaps: accesses answered 2xx that the token's granted scopes do not allow, as the
-- detection engine judged each one when it was stored (`scope_fit = 'gap'`): SMART App Launch
-- 2.x scopes and launch context, Bulk Data exports and their files, `$everything` and granular
-- scopes read as the specifications define them. `missing_permission` is the scope the token
-- lacked. Accesses whose token was not in the history are `unknown_token`, never a gap.
-- Rows written before scopewatch stored the verdict have `scope_fit` NULL: re-run `detect`
-- over their input to judge them (`SELECT count(*) FROM access WHERE scope_fit IS NULL`).
SELECT
  client_id,
  date,
  resource_type,
  interaction,
  missing_permission,
  count(*) AS served_requests,
  count(DISTINCT token_id) AS tokens,
  min(time) AS first_seen
FROM access
WHERE scope_fit = 'gap'
GROUP BY client_id, date, resource_type, interaction, missing_permission
ORDER BY date, client_id, resource_type, interaction, missing_permission;
