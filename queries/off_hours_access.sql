-- Off-hours access by app: requests before 07:00, from 19:00, or at weekends (UTC; shift the
-- hour for your time zone). Backend sync apps are expected here; interactive apps are not.
-- `AT TIME ZONE 'UTC'` makes the hours UTC in every engine, whatever its session time zone
-- (DuckDB would otherwise extract hours in its own).
SELECT
  client_id,
  count(*) AS off_hours_requests,
  count(*) FILTER (WHERE extract(dow FROM time AT TIME ZONE 'UTC') IN (0, 6)) AS weekend_requests,
  count(*) FILTER (WHERE extract(hour FROM time AT TIME ZONE 'UTC') < 7 OR extract(hour FROM time AT TIME ZONE 'UTC') >= 19) AS night_requests,
  count(DISTINCT patient) AS distinct_patients
FROM access
WHERE extract(hour FROM time AT TIME ZONE 'UTC') < 7
   OR extract(hour FROM time AT TIME ZONE 'UTC') >= 19
   OR extract(dow FROM time AT TIME ZONE 'UTC') IN (0, 6)
GROUP BY client_id
ORDER BY off_hours_requests DESC, client_id;
