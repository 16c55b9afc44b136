-- name: AttemptInsertBatch :execrows
-- The recorder's write: a replayed attempt (same deterministic ID, or the same
-- attempt number of the same delivery) inserts nothing, and an attempt whose
-- delivery is gone (its subscription or message was deleted) is dropped.
INSERT INTO delivery_attempts (
    id, delivery_id, attempt, request, response, response_status_code,
    execution_duration, success, error, created_at
)
SELECT u.id, u.delivery_id, u.attempt, u.request, u.response, u.response_status_code,
    u.execution_duration, u.success, u.error, u.created_at
FROM (
    SELECT unnest(@ids::text[]) AS id,
        unnest(@delivery_ids::text[]) AS delivery_id,
        unnest(@attempts::integer[]) AS attempt,
        unnest(@requests::text[]) AS request,
        unnest(@responses::text[]) AS response,
        unnest(@response_status_codes::integer[]) AS response_status_code,
        unnest(@execution_durations::integer[]) AS execution_duration,
        unnest(@successes::boolean[]) AS success,
        unnest(@errors::text[]) AS error,
        unnest(@created_ats::timestamptz[]) AS created_at
) AS u
JOIN deliveries d ON d.id = u.delivery_id
ON CONFLICT DO NOTHING;

-- name: AttemptGetByID :one
SELECT * FROM delivery_attempts WHERE id = @id;

-- name: AttemptListAsc :many
SELECT * FROM delivery_attempts
WHERE (sqlc.narg('delivery_id')::text IS NULL OR delivery_id = sqlc.narg('delivery_id'))
  AND (sqlc.narg('created_at_gt')::timestamptz IS NULL OR created_at > sqlc.narg('created_at_gt'))
  AND (sqlc.narg('created_at_gte')::timestamptz IS NULL OR created_at >= sqlc.narg('created_at_gte'))
  AND (sqlc.narg('created_at_lt')::timestamptz IS NULL OR created_at < sqlc.narg('created_at_lt'))
  AND (sqlc.narg('created_at_lte')::timestamptz IS NULL OR created_at <= sqlc.narg('created_at_lte'))
ORDER BY created_at ASC, id ASC
LIMIT @row_limit OFFSET @row_offset;

-- name: AttemptListDesc :many
SELECT * FROM delivery_attempts
WHERE (sqlc.narg('delivery_id')::text IS NULL OR delivery_id = sqlc.narg('delivery_id'))
  AND (sqlc.narg('created_at_gt')::timestamptz IS NULL OR created_at > sqlc.narg('created_at_gt'))
  AND (sqlc.narg('created_at_gte')::timestamptz IS NULL OR created_at >= sqlc.narg('created_at_gte'))
  AND (sqlc.narg('created_at_lt')::timestamptz IS NULL OR created_at < sqlc.narg('created_at_lt'))
  AND (sqlc.narg('created_at_lte')::timestamptz IS NULL OR created_at <= sqlc.narg('created_at_lte'))
ORDER BY created_at DESC, id DESC
LIMIT @row_limit OFFSET @row_offset;
