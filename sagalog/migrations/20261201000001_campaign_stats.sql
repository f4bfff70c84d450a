-- Marketing's read models beside the log.
--
-- Campaign statistics: one row per counted event (its id makes a redelivery count nothing)
-- and one row of totals per campaign, added to in the transaction that counts the event.

CREATE TABLE campaign_counts (
    event_id     TEXT PRIMARY KEY,
    campaign_id  TEXT        NOT NULL,
    kind         TEXT        NOT NULL CHECK (kind IN ('view', 'click', 'purchase', 'conversion',
                     'conversion_rejected', 'commission_reserved', 'commission_rejected',
                     'commission_reverted')),
    amount_minor BIGINT      NOT NULL,
    counted_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE campaign_stats (
    campaign_id               TEXT PRIMARY KEY,
    views                     BIGINT  NOT NULL,
    clicks                    BIGINT  NOT NULL,
    purchases                 BIGINT  NOT NULL,
    conversions               BIGINT  NOT NULL,
    conversions_rejected      BIGINT  NOT NULL,
    -- Sums of i64 amounts: NUMERIC, exact at any size.
    sales_attributed_minor    NUMERIC NOT NULL,
    commissions_reserved      BIGINT  NOT NULL,
    commissions_rejected      BIGINT  NOT NULL,
    commissions_reverted      BIGINT  NOT NULL,
    commission_reserved_minor NUMERIC NOT NULL,
    commission_released_minor NUMERIC NOT NULL
);

-- The campaign list: each campaign as the API shows it, at the version of its stream it was
-- read from (a newer version replaces an older one, never the reverse).
CREATE TABLE campaigns (
    campaign_id TEXT PRIMARY KEY,
    version     BIGINT      NOT NULL,
    campaign    JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- What earlier versions kept in the event store, imported once (by source).
CREATE TABLE imports (
    source      TEXT PRIMARY KEY,
    imported_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
