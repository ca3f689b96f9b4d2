-- Purposes of use by app (HL7 v3 PurposeOfUse codes): what each app says it accesses data for.
-- An app with a purpose outside its registration, or a new one, needs a look.
SELECT
  client_id,
  coalesce(purpose_of_use, '(none)') AS purpose_of_use,
  count(*) AS requests,
  min(time) AS first_used,
  max(time) AS last_used
FROM access
GROUP BY client_id, coalesce(purpose_of_use, '(none)')
ORDER BY client_id, requests DESC;
