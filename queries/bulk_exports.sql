-- Bulk Data exports ($export kick-offs) by app and day: who pulls whole populations, and how
-- often. Compare with the apps registered for bulk access.
SELECT
  client_id,
  date,
  count(*) AS exports,
  min(time) AS first_export,
  array_agg(DISTINCT resource_type) AS levels
FROM access
WHERE operation = '$export'
GROUP BY client_id, date
ORDER BY date DESC, client_id;
