-- Apps by volume: the latest 7 days of history against the 7 days before.
-- Who is pulling more than last week? Requests, resources returned and bytes per app, with the
-- ratio of this week's requests to last week's (NULL when the app was silent last week).
-- "This week" ends at the newest access in the store, so the query works on archived history.
WITH bounds AS (
  SELECT max(time) AS newest FROM access
),
weekly AS (
  SELECT
    a.client_id,
    CASE
      WHEN a.time > b.newest - INTERVAL '7 days' THEN 'this_week'
      WHEN a.time > b.newest - INTERVAL '14 days' THEN 'last_week'
    END AS week,
    a.resources_returned,
    a.bytes
  FROM access a CROSS JOIN bounds b
  WHERE a.time > b.newest - INTERVAL '14 days'
)
SELECT
  client_id,
  count(*) FILTER (WHERE week = 'this_week') AS requests_this_week,
  count(*) FILTER (WHERE week = 'last_week') AS requests_last_week,
  round(
    CAST(count(*) FILTER (WHERE week = 'this_week') AS DOUBLE)
      / nullif(count(*) FILTER (WHERE week = 'last_week'), 0),
    2
  ) AS ratio,
  sum(resources_returned) FILTER (WHERE week = 'this_week') AS resources_this_week,
  sum(bytes) FILTER (WHERE week = 'this_week') AS bytes_this_week
FROM weekly
GROUP BY client_id
ORDER BY requests_this_week DESC, client_id;
