-- The orders transform, as the pipeline's transform over etl_delta, the
-- rows a run extracts.  The baselines use the same text with etl_delta
-- replaced by their source.  total_amount stays numeric(12,2) (the client
-- pipeline's float() of a 2-decimal value round-trips to the same
-- numeric); dates are taken in UTC.
SELECT order_id,
       customer_id,
       (created_at AT TIME ZONE 'UTC')::date AS order_date,
       total AS total_amount,
       upper(coalesce(currency, 'USD')) AS currency,
       lower(status) AS status,
       to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS order_month,
       total > 1000 AS is_high_value
  FROM etl_delta
