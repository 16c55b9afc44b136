-- A deleted message is remembered for as long as the streams may still hold
-- events about it (HAMMER_STREAM_MAX_AGE): the recorder may receive them
-- late or on a replay, and drops them here instead of recreating the rows.
CREATE TABLE deleted_messages (
    id         text        PRIMARY KEY,
    deleted_at timestamptz NOT NULL
);
CREATE INDEX deleted_messages_deleted_at_idx ON deleted_messages (deleted_at);
