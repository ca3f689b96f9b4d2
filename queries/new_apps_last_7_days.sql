-- New apps: apps whose first event (token or access) falls in the last 7 days of history.
-- Every new client should match an onboarding request.
WITH events AS (
  SELECT client_id, time FROM access
  UNION ALL
  SELECT client_id, time FROM tokens
),
firsts AS (
  SELECT client_id, min(time) AS first_seen, count(*) AS events FROM events GROUP BY client_id
)
SELECT client_id, first_seen, events
FROM firsts
WHERE first_seen > (SELECT max(time) FROM events) - INTERVAL '7 days'
ORDER BY first_seen, client_id;
