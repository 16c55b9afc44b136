DROP TABLE IF EXISTS deleted_messages;
