-- name: TopicInsert :one
INSERT INTO topics (id, name, created_at, updated_at)
VALUES (@id, @name, @created_at, @created_at)
RETURNING *;

-- name: TopicGetByID :one
SELECT * FROM topics WHERE id = @id;

-- name: TopicExists :one
SELECT EXISTS (SELECT 1 FROM topics WHERE id = @id);

-- name: TopicUpdate :one
UPDATE topics SET name = @name, updated_at = @updated_at
WHERE id = @id
RETURNING *;

-- name: TopicDelete :execrows
DELETE FROM topics WHERE id = @id;

-- name: TopicListAsc :many
SELECT * FROM topics
WHERE (sqlc.narg('created_at_gt')::timestamptz IS NULL OR created_at > sqlc.narg('created_at_gt'))
  AND (sqlc.narg('created_at_gte')::timestamptz IS NULL OR created_at >= sqlc.narg('created_at_gte'))
  AND (sqlc.narg('created_at_lt')::timestamptz IS NULL OR created_at < sqlc.narg('created_at_lt'))
  AND (sqlc.narg('created_at_lte')::timestamptz IS NULL OR created_at <= sqlc.narg('created_at_lte'))
ORDER BY created_at ASC, id ASC
LIMIT @row_limit OFFSET @row_offset;

-- name: TopicListDesc :many
SELECT * FROM topics
WHERE (sqlc.narg('created_at_gt')::timestamptz IS NULL OR created_at > sqlc.narg('created_at_gt'))
  AND (sqlc.narg('created_at_gte')::timestamptz IS NULL OR created_at >= sqlc.narg('created_at_gte'))
  AND (sqlc.narg('created_at_lt')::timestamptz IS NULL OR created_at < sqlc.narg('created_at_lt'))
  AND (sqlc.narg('created_at_lte')::timestamptz IS NULL OR created_at <= sqlc.narg('created_at_lte'))
ORDER BY created_at DESC, id DESC
LIMIT @row_limit OFFSET @row_offset;

-- name: TopicGetByIDForUpdate :one
-- Locks the topic for the rest of the transaction: deleting it this way keeps
-- a concurrent subscription insert (whose foreign-key check waits on the lock)
-- from slipping in between deleting the subscriptions and the topic.
SELECT * FROM topics WHERE id = @id FOR UPDATE;

-- name: TopicListExisting :many
-- Which of the given topics exist: the batch publish checks every distinct
-- topic of a batch with one query.
SELECT id FROM topics WHERE id = ANY(@ids::text[]);
