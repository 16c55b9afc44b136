-- Topics and subscriptions are written by the API; messages, deliveries and
-- attempts are projected by the recorder from the JetStream streams.
--
-- Foreign keys point only at rows that exist before any event can name them
-- (topics and subscriptions are committed before a message or delivery can
-- reference them), so a missing parent always means a deleted one and the
-- recorder drops the event by joining against the parent. Deliveries do not
-- reference messages: both are projected asynchronously from different
-- streams and may arrive in either order.

CREATE TABLE topics (
    id         text        PRIMARY KEY,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX topics_created_at_idx ON topics (created_at, id);

CREATE TABLE subscriptions (
    id                       text        PRIMARY KEY,
    topic_id                 text        NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    name                     text        NOT NULL,
    url                      text        NOT NULL,
    secret_token             text        NOT NULL,
    signing_secret           text        NOT NULL,
    max_delivery_attempts    integer     NOT NULL CHECK (max_delivery_attempts > 0),
    delivery_attempt_delay   integer     NOT NULL CHECK (delivery_attempt_delay > 0),
    delivery_attempt_timeout integer     NOT NULL CHECK (delivery_attempt_timeout > 0),
    max_concurrent_requests  integer     NOT NULL DEFAULT 8 CHECK (max_concurrent_requests > 0),
    created_at               timestamptz NOT NULL,
    updated_at               timestamptz NOT NULL
);
CREATE INDEX subscriptions_created_at_idx ON subscriptions (created_at, id);
CREATE INDEX subscriptions_topic_id_idx ON subscriptions (topic_id, created_at, id);

CREATE TABLE messages (
    id              text        PRIMARY KEY,
    topic_id        text        NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    data            bytea       NOT NULL,
    content_type    text        NOT NULL,
    idempotency_key text,
    stream_sequence bigint      NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX messages_created_at_idx ON messages (created_at, id);
CREATE INDEX messages_topic_id_idx ON messages (topic_id, created_at, id);
-- A key is unique inside its 24 h window (enforced by the API through a
-- JetStream key-value bucket); after the window the same key may name a new
-- message, so the record keeps one row per message and indexes the key.
CREATE INDEX messages_idempotency_key_idx ON messages (idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TYPE delivery_status AS ENUM ('pending', 'completed', 'failed');

CREATE TABLE deliveries (
    id                       text            PRIMARY KEY,
    topic_id                 text            NOT NULL,
    subscription_id          text            NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    message_id               text            NOT NULL,
    url                      text            NOT NULL,
    secret_token             text            NOT NULL,
    max_delivery_attempts    integer         NOT NULL,
    delivery_attempt_delay   integer         NOT NULL,
    delivery_attempt_timeout integer         NOT NULL,
    delivery_attempts        integer         NOT NULL DEFAULT 0,
    status                   delivery_status NOT NULL DEFAULT 'pending',
    failure_reason           text,
    scheduled_at             timestamptz     NOT NULL,
    created_at               timestamptz     NOT NULL,
    updated_at               timestamptz     NOT NULL
);
CREATE INDEX deliveries_created_at_idx ON deliveries (created_at, id);
CREATE INDEX deliveries_topic_id_idx ON deliveries (topic_id, created_at, id);
CREATE INDEX deliveries_subscription_id_idx ON deliveries (subscription_id, created_at, id);
CREATE INDEX deliveries_message_id_idx ON deliveries (message_id, created_at, id);
CREATE INDEX deliveries_status_idx ON deliveries (status, created_at, id);

CREATE TABLE delivery_attempts (
    id                   text        PRIMARY KEY,
    delivery_id          text        NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt              integer     NOT NULL CHECK (attempt > 0),
    request              text        NOT NULL,
    response             text        NOT NULL,
    response_status_code integer     NOT NULL,
    execution_duration   integer     NOT NULL,
    success              boolean     NOT NULL,
    error                text        NOT NULL DEFAULT '',
    created_at           timestamptz NOT NULL,
    UNIQUE (delivery_id, attempt)
);
CREATE INDEX delivery_attempts_created_at_idx ON delivery_attempts (created_at, id);
CREATE INDEX delivery_attempts_delivery_id_idx ON delivery_attempts (delivery_id, created_at, id);
