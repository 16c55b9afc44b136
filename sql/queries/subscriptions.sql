-- name: SubscriptionInsert :one
INSERT INTO subscriptions (
    id, topic_id, name, url, secret_token, signing_secret,
    max_delivery_attempts, delivery_attempt_delay, delivery_attempt_timeout,
    max_concurrent_requests, created_at, updated_at
) VALUES (
    @id, @topic_id, @name, @url, @secret_token, @signing_secret,
    @max_delivery_attempts, @delivery_attempt_delay, @delivery_attempt_timeout,
    @max_concurrent_requests, @created_at, @created_at
)
RETURNING *;

-- name: SubscriptionGetByID :one
SELECT * FROM subscriptions WHERE id = @id;

-- name: SubscriptionUpdate :one
UPDATE subscriptions SET
    topic_id = @topic_id,
    name = @name,
    url = @url,
    secret_token = @secret_token,
    signing_secret = @signing_secret,
    max_delivery_attempts = @max_delivery_attempts,
    delivery_attempt_delay = @delivery_attempt_delay,
    delivery_attempt_timeout = @delivery_attempt_timeout,
    max_concurrent_requests = @max_concurrent_requests,
    updated_at = @updated_at
WHERE id = @id
RETURNING *;

-- name: SubscriptionDelete :one
DELETE FROM subscriptions WHERE id = @id
RETURNING *;

-- name: SubscriptionDeleteByTopicID :many
-- Removes a topic's subscriptions explicitly (before the topic itself) so the
-- caller learns which ones went and can tell the deliverers.
DELETE FROM subscriptions WHERE topic_id = @topic_id
RETURNING *;

-- name: SubscriptionListByTopicIDs :many
-- fanout's one query per batch of messages.
SELECT * FROM subscriptions
WHERE topic_id = ANY(@topic_ids::text[])
ORDER BY topic_id, id;

-- name: SubscriptionListAfterID :many
-- Walks every subscription in ID order, a page at a time (the API rebuilds the
-- key-value view with it at start).
SELECT * FROM subscriptions
WHERE id > @after_id
ORDER BY id
LIMIT @row_limit;

-- name: SubscriptionListAsc :many
SELECT * FROM subscriptions
WHERE (sqlc.narg('topic_id')::text IS NULL OR topic_id = sqlc.narg('topic_id'))
  AND (sqlc.narg('created_at_gt')::timestamptz IS NULL OR created_at > sqlc.narg('created_at_gt'))
  AND (sqlc.narg('created_at_gte')::timestamptz IS NULL OR created_at >= sqlc.narg('created_at_gte'))
  AND (sqlc.narg('created_at_lt')::timestamptz IS NULL OR created_at < sqlc.narg('created_at_lt'))
  AND (sqlc.narg('created_at_lte')::timestamptz IS NULL OR created_at <= sqlc.narg('created_at_lte'))
ORDER BY created_at ASC, id ASC
LIMIT @row_limit OFFSET @row_offset;

-- name: SubscriptionListDesc :many
SELECT * FROM subscriptions
WHERE (sqlc.narg('topic_id')::text IS NULL OR topic_id = sqlc.narg('topic_id'))
  AND (sqlc.narg('created_at_gt')::timestamptz IS NULL OR created_at > sqlc.narg('created_at_gt'))
  AND (sqlc.narg('created_at_gte')::timestamptz IS NULL OR created_at >= sqlc.narg('created_at_gte'))
  AND (sqlc.narg('created_at_lt')::timestamptz IS NULL OR created_at < sqlc.narg('created_at_lt'))
  AND (sqlc.narg('created_at_lte')::timestamptz IS NULL OR created_at <= sqlc.narg('created_at_lte'))
ORDER BY created_at DESC, id DESC
LIMIT @row_limit OFFSET @row_offset;

-- name: SubscriptionGetByIDForUpdate :one
-- Reads a subscription for a PATCH and locks it until commit, so two
-- concurrent PATCHes of different fields both take effect.
SELECT * FROM subscriptions WHERE id = @id FOR UPDATE;
