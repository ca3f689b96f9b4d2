-- Accounting of disclosures for one patient: every access to the patient's data, with app,
-- user, purpose and outcome. Replace the patient id below. (HIPAA §164.528 / GDPR Art. 15.)
SELECT
  time,
  client_id,
  user,
  purpose_of_use,
  method,
  resource_type,
  interaction,
  status,
  resources_returned,
  token_id
FROM access
WHERE patient = 'pat-00123'
ORDER BY time;
