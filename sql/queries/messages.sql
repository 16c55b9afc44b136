-- name: MessageInsertBatch :execrows
-- The recorder's write: replays insert nothing, and a message whose topic was
-- deleted meanwhile (or that was itself deleted) is dropped instead of
-- failing the batch.
INSERT INTO messages (id, topic_id, data, content_type, idempotency_key, stream_sequence, created_at)
SELECT u.id, u.topic_id, u.data, u.content_type, NULLIF(u.idempotency_key, ''), u.stream_sequence, u.created_at
FROM (
    SELECT unnest(@ids::text[]) AS id,
        unnest(@topic_ids::text[]) AS topic_id,
        unnest(@datas::bytea[]) AS data,
        unnest(@content_types::text[]) AS content_type,
        unnest(@idempotency_keys::text[]) AS idempotency_key,
        unnest(@stream_sequences::bigint[]) AS stream_sequence,
        unnest(@created_ats::timestamptz[]) AS created_at
) AS u
JOIN topics t ON t.id = u.topic_id
WHERE NOT EXISTS (SELECT 1 FROM deleted_messages dm WHERE dm.id = u.id)
ON CONFLICT (id) DO NOTHING;

-- name: MessageGetByID :one
SELECT * FROM messages WHERE id = @id;

-- name: MessageDelete :one
DELETE FROM messages WHERE id = @id
RETURNING *;

-- name: MessageListAsc :many
SELECT * FROM messages
WHERE (sqlc.narg('topic_id')::text IS NULL OR topic_id = sqlc.narg('topic_id'))
  AND (sqlc.narg('created_at_gt')::timestamptz IS NULL OR created_at > sqlc.narg('created_at_gt'))
  AND (sqlc.narg('created_at_gte')::timestamptz IS NULL OR created_at >= sqlc.narg('created_at_gte'))
  AND (sqlc.narg('created_at_lt')::timestamptz IS NULL OR created_at < sqlc.narg('created_at_lt'))
  AND (sqlc.narg('created_at_lte')::timestamptz IS NULL OR created_at <= sqlc.narg('created_at_lte'))
ORDER BY created_at ASC, id ASC
LIMIT @row_limit OFFSET @row_offset;

-- name: MessageListDesc :many
SELECT * FROM messages
WHERE (sqlc.narg('topic_id')::text IS NULL OR topic_id = sqlc.narg('topic_id'))
  AND (sqlc.narg('created_at_gt')::timestamptz IS NULL OR created_at > sqlc.narg('created_at_gt'))
  AND (sqlc.narg('created_at_gte')::timestamptz IS NULL OR created_at >= sqlc.narg('created_at_gte'))
  AND (sqlc.narg('created_at_lt')::timestamptz IS NULL OR created_at < sqlc.narg('created_at_lt'))
  AND (sqlc.narg('created_at_lte')::timestamptz IS NULL OR created_at <= sqlc.narg('created_at_lte'))
ORDER BY created_at DESC, id DESC
LIMIT @row_limit OFFSET @row_offset;
