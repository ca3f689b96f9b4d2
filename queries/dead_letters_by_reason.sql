-- Dead letters by source and reason class: input scopewatch could not use (malformed lines,
-- events later than the allowed lateness). Every rejected line is here; nothing is dropped.
SELECT
  source,
  kind,
  count(*) AS records,
  min(reason) AS example_reason
FROM dead_letter
GROUP BY source, kind
ORDER BY records DESC, source, kind;
