-- Alerts by severity: each incident's latest record (its highest revision), counted by
-- severity and category, with the apps involved. Start triage at the top. Incidents a
-- silence keeps quiet (`suppressed_by` set) are left out.
WITH latest AS (
  SELECT *
  FROM (
    SELECT *, row_number() OVER (PARTITION BY incident_id ORDER BY revision DESC) AS rn
    FROM alerts
  ) a
  WHERE rn = 1 AND suppressed_by IS NULL
)
SELECT
  severity,
  category,
  count(*) AS incidents,
  array_agg(DISTINCT client_id) AS apps,
  max(time) AS latest
FROM latest
GROUP BY severity, category
ORDER BY CASE severity
           WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2
           WHEN 'low' THEN 3 ELSE 4
         END,
         category;
