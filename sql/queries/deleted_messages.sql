-- name: DeletedMessageInsert :exec
INSERT INTO deleted_messages (id, deleted_at) VALUES (@id, @deleted_at)
ON CONFLICT (id) DO NOTHING;

-- name: DeletedMessagePruneBefore :execrows
-- Forgets deletions older than anything the streams still hold.
DELETE FROM deleted_messages WHERE deleted_at < @before;
