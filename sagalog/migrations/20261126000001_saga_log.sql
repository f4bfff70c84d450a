-- The saga log: one row per step (the facts, as announced) and one row per saga (derived from
-- the set of its steps by the application, rewritten whenever a new step arrives).

CREATE TABLE saga_steps (
    event_id     TEXT PRIMARY KEY,
    saga_id      TEXT        NOT NULL,
    event_type   TEXT        NOT NULL,
    service      TEXT        NOT NULL,
    direction    TEXT        NOT NULL CHECK (direction IN ('forward', 'compensation', 'terminal')),
    payload      JSONB       NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- What the step says about the sale, for the saga row (null when it says nothing).
    campaign_id  TEXT,
    partner_id   TEXT,
    amount_minor BIGINT,
    currency     TEXT
);
CREATE INDEX saga_steps_by_saga ON saga_steps (saga_id, occurred_at);

CREATE TABLE sagas (
    saga_id              TEXT PRIMARY KEY,
    status               TEXT        NOT NULL,
    orphan               BOOLEAN     NOT NULL,
    campaign_id          TEXT,
    partner_id           TEXT,
    amount_minor         BIGINT,
    currency             TEXT,
    started_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    finished_at          TIMESTAMPTZ,
    -- When the saga times out unless it reaches a terminal status; null once it has.
    deadline             TIMESTAMPTZ,
    -- When the coordinator published SagaTimedOut for it (at most once per saga).
    timeout_published_at TIMESTAMPTZ
);
CREATE INDEX sagas_newest ON sagas (started_at DESC, saga_id DESC);
CREATE INDEX sagas_by_status ON sagas (status, started_at DESC);
CREATE INDEX sagas_by_campaign ON sagas (campaign_id, started_at DESC);
CREATE INDEX sagas_due ON sagas (deadline) WHERE deadline IS NOT NULL AND timeout_published_at IS NULL;
