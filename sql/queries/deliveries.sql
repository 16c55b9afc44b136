-- name: DeliveryUpsertBatch :execrows
-- The recorder's write, fed by delivery events and attempt events alike. Rows
-- only move forward: the attempt count never decreases, completed and failed
-- are final, and an older event never overwrites a newer one. A delivery of a
-- deleted subscription (by the join) or of a deleted message is dropped.
-- The secret_token comes from the subscription (events carry no secret).
-- Callers merge duplicate IDs
-- within one batch first (Postgres refuses to update a row twice in one
-- statement).
INSERT INTO deliveries AS d (
    id, topic_id, subscription_id, message_id, url, secret_token,
    max_delivery_attempts, delivery_attempt_delay, delivery_attempt_timeout,
    delivery_attempts, status, failure_reason, scheduled_at, created_at, updated_at
)
SELECT u.id, u.topic_id, u.subscription_id, u.message_id, u.url, s.secret_token,
    u.max_delivery_attempts, u.delivery_attempt_delay, u.delivery_attempt_timeout,
    u.delivery_attempts, u.status::delivery_status, NULLIF(u.failure_reason, ''),
    u.scheduled_at, u.created_at, u.updated_at
FROM (
    SELECT unnest(@ids::text[]) AS id,
        unnest(@topic_ids::text[]) AS topic_id,
        unnest(@subscription_ids::text[]) AS subscription_id,
        unnest(@message_ids::text[]) AS message_id,
        unnest(@urls::text[]) AS url,
        unnest(@max_delivery_attempts::integer[]) AS max_delivery_attempts,
        unnest(@delivery_attempt_delays::integer[]) AS delivery_attempt_delay,
        unnest(@delivery_attempt_timeouts::integer[]) AS delivery_attempt_timeout,
        unnest(@delivery_attempts::integer[]) AS delivery_attempts,
        unnest(@statuses::text[]) AS status,
        unnest(@failure_reasons::text[]) AS failure_reason,
        unnest(@scheduled_ats::timestamptz[]) AS scheduled_at,
        unnest(@created_ats::timestamptz[]) AS created_at,
        unnest(@updated_ats::timestamptz[]) AS updated_at
) AS u
JOIN subscriptions s ON s.id = u.subscription_id
WHERE NOT EXISTS (SELECT 1 FROM deleted_messages dm WHERE dm.id = u.message_id)
ON CONFLICT (id) DO UPDATE SET
    url = EXCLUDED.url,
    secret_token = EXCLUDED.secret_token,
    max_delivery_attempts = EXCLUDED.max_delivery_attempts,
    delivery_attempt_delay = EXCLUDED.delivery_attempt_delay,
    delivery_attempt_timeout = EXCLUDED.delivery_attempt_timeout,
    delivery_attempts = GREATEST(d.delivery_attempts, EXCLUDED.delivery_attempts),
    status = EXCLUDED.status,
    failure_reason = EXCLUDED.failure_reason,
    scheduled_at = EXCLUDED.scheduled_at,
    updated_at = GREATEST(d.updated_at, EXCLUDED.updated_at)
WHERE d.status = 'pending'
  AND (EXCLUDED.status <> 'pending'
       OR EXCLUDED.delivery_attempts > d.delivery_attempts
       OR (EXCLUDED.delivery_attempts = d.delivery_attempts AND EXCLUDED.updated_at > d.updated_at));

-- name: DeliveryGetByID :one
SELECT d.*, m.data AS data
FROM deliveries d LEFT JOIN messages m ON m.id = d.message_id
WHERE d.id = @id;

-- name: DeliveryDeleteByMessageID :execrows
DELETE FROM deliveries WHERE message_id = @message_id;

-- name: DeliveryListAsc :many
SELECT d.*, m.data AS data
FROM deliveries d LEFT JOIN messages m ON m.id = d.message_id
WHERE (sqlc.narg('topic_id')::text IS NULL OR d.topic_id = sqlc.narg('topic_id'))
  AND (sqlc.narg('subscription_id')::text IS NULL OR d.subscription_id = sqlc.narg('subscription_id'))
  AND (sqlc.narg('message_id')::text IS NULL OR d.message_id = sqlc.narg('message_id'))
  AND (sqlc.narg('status')::text IS NULL OR d.status = sqlc.narg('status')::delivery_status)
  AND (sqlc.narg('created_at_gt')::timestamptz IS NULL OR d.created_at > sqlc.narg('created_at_gt'))
  AND (sqlc.narg('created_at_gte')::timestamptz IS NULL OR d.created_at >= sqlc.narg('created_at_gte'))
  AND (sqlc.narg('created_at_lt')::timestamptz IS NULL OR d.created_at < sqlc.narg('created_at_lt'))
  AND (sqlc.narg('created_at_lte')::timestamptz IS NULL OR d.created_at <= sqlc.narg('created_at_lte'))
ORDER BY d.created_at ASC, d.id ASC
LIMIT @row_limit OFFSET @row_offset;

-- name: DeliveryListDesc :many
SELECT d.*, m.data AS data
FROM deliveries d LEFT JOIN messages m ON m.id = d.message_id
WHERE (sqlc.narg('topic_id')::text IS NULL OR d.topic_id = sqlc.narg('topic_id'))
  AND (sqlc.narg('subscription_id')::text IS NULL OR d.subscription_id = sqlc.narg('subscription_id'))
  AND (sqlc.narg('message_id')::text IS NULL OR d.message_id = sqlc.narg('message_id'))
  AND (sqlc.narg('status')::text IS NULL OR d.status = sqlc.narg('status')::delivery_status)
  AND (sqlc.narg('created_at_gt')::timestamptz IS NULL OR d.created_at > sqlc.narg('created_at_gt'))
  AND (sqlc.narg('created_at_gte')::timestamptz IS NULL OR d.created_at >= sqlc.narg('created_at_gte'))
  AND (sqlc.narg('created_at_lt')::timestamptz IS NULL OR d.created_at < sqlc.narg('created_at_lt'))
  AND (sqlc.narg('created_at_lte')::timestamptz IS NULL OR d.created_at <= sqlc.narg('created_at_lte'))
ORDER BY d.created_at DESC, d.id DESC
LIMIT @row_limit OFFSET @row_offset;
