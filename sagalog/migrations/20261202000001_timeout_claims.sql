-- Until when a replica's deadline sweeper holds the publication of a saga's timeout: two
-- replicas never publish one saga's SagaTimedOut both, and a claim of a replica that died
-- before publishing lapses, so another one publishes it.
ALTER TABLE sagas ADD COLUMN timeout_claimed_until TIMESTAMPTZ;
