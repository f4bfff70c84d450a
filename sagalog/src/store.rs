//! The log's tables in Postgres.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use alpes_contracts::{Money, Timestamp};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

use crate::campaign::{CampaignStats, Counted, sum_of};
use crate::error::LogError;
use crate::saga::{
    CampaignTally, Cursor, Durations, ListQuery, Page, RecordedStep, Saga, SagaSummary, Stats,
    Tally,
};
use crate::status::{Derived, Status, derive_seen};
use crate::step::{Direction, Facts, Observation, Step};

/// A saga whose deadline has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub saga_id: String,
    pub status: Status,
    pub deadline: Timestamp,
}

/// The saga log: records steps, keeps each saga derived from its steps, answers queries.
#[derive(Clone)]
pub struct SagaLog {
    pool: PgPool,
    deadline_after: Duration,
}

const SUMMARY_COLUMNS: &str = "saga_id, status, orphan, campaign_id, partner_id, amount_minor, \
     currency, started_at, updated_at, finished_at, deadline";

impl SagaLog {
    /// Connects to `url`, brings the schema up to date, and gives sagas `deadline_after` from
    /// their start to become final.
    pub async fn connect(url: &str, deadline_after: Duration) -> Result<Self, LogError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self {
            pool,
            deadline_after,
        })
    }

    /// How long a saga has to become final.
    pub fn deadline_after(&self) -> Duration {
        self.deadline_after
    }

    /// Whether Postgres answers.
    pub async fn ping(&self) -> Result<(), LogError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Records `steps` in one transaction, ignoring those recorded before (by event id), and
    /// re-derives every saga that gained a step. Returns how many steps were new.
    pub async fn record(&self, steps: &[Step]) -> Result<usize, LogError> {
        self.write(&steps.iter().collect::<Vec<_>>(), &[]).await
    }

    /// Records what `observations` hold in one transaction: their steps as [`SagaLog::record`]
    /// does, and their counts into their campaigns' statistics (each event counted once, by
    /// its id). Returns how many steps were new.
    pub async fn observe(&self, observations: &[Observation]) -> Result<usize, LogError> {
        let steps: Vec<&Step> = observations
            .iter()
            .filter_map(|o| o.step.as_ref())
            .collect();
        let counts: Vec<&Counted> = observations
            .iter()
            .filter_map(|o| o.counted.as_ref())
            .collect();
        self.write(&steps, &counts).await
    }

    async fn write(&self, steps: &[&Step], counts: &[&Counted]) -> Result<usize, LogError> {
        if steps.is_empty() && counts.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        let inserted = record_steps(&mut tx, steps, self.deadline_after).await?;
        count(&mut tx, counts).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// The statistics of campaign `campaign_id` (all zero before anything counted for it).
    pub async fn campaign_stats(&self, campaign_id: &str) -> Result<CampaignStats, LogError> {
        let row = sqlx::query(
            "SELECT views, clicks, purchases, conversions, conversions_rejected, \
             sales_attributed_minor::text AS sales, commissions_reserved, commissions_rejected, \
             commissions_reverted, commission_reserved_minor::text AS reserved, \
             commission_released_minor::text AS released \
             FROM campaign_stats WHERE campaign_id = $1",
        )
        .bind(campaign_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(CampaignStats::default());
        };
        let number = |name: &str| -> Result<u64, sqlx::Error> {
            Ok(u64::try_from(row.try_get::<i64, _>(name)?).unwrap_or(0))
        };
        let sum = |name: &str| -> Result<i128, sqlx::Error> {
            Ok(sum_of(&row.try_get::<String, _>(name)?))
        };
        Ok(CampaignStats {
            views: number("views")?,
            clicks: number("clicks")?,
            purchases: number("purchases")?,
            conversions: number("conversions")?,
            conversions_rejected: number("conversions_rejected")?,
            sales_attributed_minor: sum("sales")?,
            commissions_reserved: number("commissions_reserved")?,
            commissions_rejected: number("commissions_rejected")?,
            commissions_reverted: number("commissions_reverted")?,
            commission_reserved_minor: sum("reserved")?,
            commission_released_minor: sum("released")?,
        })
    }

    /// Lists campaign `campaign_id` as `campaign` (what the API shows), read at version
    /// `version` of its stream: a newer version replaces an older one, never the reverse, so
    /// writers racing with each other or with a replay leave the newest.
    pub async fn list_campaign(
        &self,
        campaign_id: &str,
        version: u64,
        campaign: &serde_json::Value,
    ) -> Result<(), LogError> {
        let mut tx = self.pool.begin().await?;
        list_campaigns(
            &mut tx,
            &[(campaign_id.to_owned(), version, campaign.clone())],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` listed campaigns after campaign id `after`, in campaign id order.
    pub async fn campaigns(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, serde_json::Value)>, LogError> {
        let rows = sqlx::query(
            "SELECT campaign_id, campaign FROM campaigns \
             WHERE ($1::text IS NULL OR campaign_id > $1) ORDER BY campaign_id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| Ok((row.try_get("campaign_id")?, row.try_get("campaign")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Whether `source` was imported (see [`SagaLog::import`]).
    pub async fn imported(&self, source: &str) -> Result<bool, LogError> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT source FROM imports WHERE source = $1")
                .bind(source)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    /// A one-time import of what an earlier version kept elsewhere (`source`): counts (each
    /// event once, as live counts are) and listed campaigns (by version, as live ones are),
    /// with `source` noted as imported, in one transaction. Safe to repeat, and to race live
    /// writers.
    pub async fn import(
        &self,
        source: &str,
        counted: &[Counted],
        campaigns: &[(String, u64, serde_json::Value)],
    ) -> Result<(), LogError> {
        let mut tx = self.pool.begin().await?;
        count(&mut tx, &counted.iter().collect::<Vec<_>>()).await?;
        list_campaigns(&mut tx, campaigns).await?;
        sqlx::query("INSERT INTO imports (source) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(source)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The saga `saga_id` with its timeline, if any step of it was recorded.
    pub async fn saga(&self, saga_id: &str) -> Result<Option<Saga>, LogError> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM sagas WHERE saga_id = $1");
        let Some(row) = sqlx::query(&sql)
            .bind(saga_id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let summary = summary_of(&row)?;
        let steps = sqlx::query(
            "SELECT event_id, event_type, service, direction, occurred_at, recorded_at, payload \
             FROM saga_steps WHERE saga_id = $1 ORDER BY occurred_at, recorded_at, event_id",
        )
        .bind(saga_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let direction: String = row.try_get("direction")?;
            Ok(RecordedStep {
                event_id: row.try_get("event_id")?,
                event_type: row.try_get("event_type")?,
                service: row.try_get("service")?,
                direction: parse_direction(&direction)?,
                occurred_at: row.try_get("occurred_at")?,
                recorded_at: row.try_get("recorded_at")?,
                payload: row.try_get("payload")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Some(Saga { summary, steps }))
    }

    /// The sagas `query` selects, newest first, one page at a time.
    pub async fn list(&self, query: &ListQuery) -> Result<Page, LogError> {
        let limit = i64::from(query.limit.clamp(1, 500));
        let statuses: Option<Vec<&str>> = (!query.statuses.is_empty())
            .then(|| query.statuses.iter().map(|s| s.as_str()).collect());
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM sagas \
             WHERE ($1::text[] IS NULL OR status = ANY($1)) \
               AND ($2::text IS NULL OR campaign_id = $2) \
               AND ($3::text IS NULL OR partner_id = $3) \
               AND ($4::timestamptz IS NULL OR started_at >= $4) \
               AND ($5::timestamptz IS NULL OR started_at < $5) \
               AND ($6::timestamptz IS NULL OR (started_at, saga_id) < ($6, $7)) \
             ORDER BY started_at DESC, saga_id DESC LIMIT $8"
        );
        let rows = sqlx::query(&sql)
            .bind(statuses)
            .bind(query.campaign_id.as_deref())
            .bind(query.partner_id.as_deref())
            .bind(query.since)
            .bind(query.until)
            .bind(query.cursor.as_ref().map(|c| c.started_at))
            .bind(query.cursor.as_ref().map(|c| c.saga_id.as_str()))
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let mut sagas = rows.iter().map(summary_of).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if sagas.len() as i64 > limit {
            sagas.truncate(limit as usize);
            sagas.last().map(|last| {
                Cursor {
                    started_at: last.started_at,
                    saga_id: last.saga_id.clone(),
                }
                .encode()
            })
        } else {
            None
        };
        Ok(Page { sagas, next_cursor })
    }

    /// Counts by status and durations to a final status, overall and per campaign (only
    /// `campaign`'s, when given).
    pub async fn stats(&self, campaign: Option<&str>) -> Result<Stats, LogError> {
        let counts = sqlx::query(
            "SELECT campaign_id, status, count(*) AS n FROM sagas \
             WHERE ($1::text IS NULL OR campaign_id = $1) GROUP BY campaign_id, status",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await?;
        let durations = sqlx::query(
            "SELECT campaign_id, GROUPING(campaign_id) AS overall, count(*) AS n, \
               percentile_disc(0.50) WITHIN GROUP (ORDER BY ms) AS p50, \
               percentile_disc(0.95) WITHIN GROUP (ORDER BY ms) AS p95, \
               percentile_disc(0.99) WITHIN GROUP (ORDER BY ms) AS p99 \
             FROM (SELECT campaign_id, \
                     (EXTRACT(EPOCH FROM finished_at - started_at) * 1000)::bigint AS ms \
                   FROM sagas WHERE finished_at IS NOT NULL \
                     AND ($1::text IS NULL OR campaign_id = $1)) d \
             GROUP BY ROLLUP (campaign_id)",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await?;

        let mut overall = Tally::default();
        let mut campaigns: BTreeMap<String, Tally> = BTreeMap::new();
        for row in &counts {
            let status: String = row.try_get("status")?;
            let status = parse_status(&status)?;
            let n: i64 = row.try_get("n")?;
            *overall.by_status.entry(status).or_default() += n;
            overall.total += n;
            if let Some(id) = row.try_get::<Option<String>, _>("campaign_id")? {
                let tally = campaigns.entry(id).or_default();
                *tally.by_status.entry(status).or_default() += n;
                tally.total += n;
            }
        }
        for row in &durations {
            let measured = Durations {
                count: row.try_get("n")?,
                p50: row.try_get("p50")?,
                p95: row.try_get("p95")?,
                p99: row.try_get("p99")?,
            };
            if row.try_get::<i32, _>("overall")? == 1 {
                overall.duration_ms = measured;
            } else if let Some(id) = row.try_get::<Option<String>, _>("campaign_id")? {
                campaigns.entry(id).or_default().duration_ms = measured;
            }
        }
        Ok(Stats {
            overall,
            campaigns: campaigns
                .into_iter()
                .map(|(campaign_id, tally)| CampaignTally { campaign_id, tally })
                .collect(),
        })
    }

    /// Claims, for `lease`, up to `limit` sagas whose deadline passed by `now` and whose
    /// timeout was not published yet, the most overdue first: the caller publishes their
    /// timeouts and then calls [`SagaLog::timeout_published`]. A saga claimed by another caller
    /// (another replica's sweeper) is not returned until that claim lapses, `lease` after it
    /// was made by the database's clock: one replica publishes each timeout, and one that dies
    /// holding claims delays those timeouts by at most `lease`.
    pub async fn due(
        &self,
        now: Timestamp,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<Due>, LogError> {
        let rows = sqlx::query(
            "UPDATE sagas SET timeout_claimed_until = now() + $3 * interval '1 millisecond' \
             WHERE saga_id IN ( \
               SELECT saga_id FROM sagas \
               WHERE deadline <= $1 AND deadline IS NOT NULL AND timeout_published_at IS NULL \
                 AND (timeout_claimed_until IS NULL OR timeout_claimed_until <= now()) \
               ORDER BY deadline LIMIT $2 \
               FOR UPDATE SKIP LOCKED) \
             RETURNING saga_id, status, deadline",
        )
        .bind(now)
        .bind(limit)
        .bind(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut due = rows
            .iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                Ok(Due {
                    saga_id: row.try_get("saga_id")?,
                    status: parse_status(&status)?,
                    deadline: row.try_get("deadline")?,
                })
            })
            .collect::<Result<Vec<_>, LogError>>()?;
        due.sort_by(|a, b| (a.deadline, &a.saga_id).cmp(&(b.deadline, &b.saga_id)));
        Ok(due)
    }

    /// Notes that `SagaTimedOut` was published for `saga_id`, so it is not published again.
    pub async fn timeout_published(&self, saga_id: &str) -> Result<(), LogError> {
        sqlx::query("UPDATE sagas SET timeout_published_at = now() WHERE saga_id = $1")
            .bind(saga_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Inserts the steps not recorded yet and re-derives every saga that gained one, under each
/// saga's advisory lock. Returns how many steps were new.
async fn record_steps(
    tx: &mut Transaction<'_, Postgres>,
    steps: &[&Step],
    deadline_after: Duration,
) -> Result<usize, LogError> {
    if steps.is_empty() {
        return Ok(0);
    }
    let mut saga_ids: Vec<&str> = steps.iter().map(|s| s.saga_id.as_str()).collect();
    saga_ids.sort_unstable();
    saga_ids.dedup();
    // Replicas writing the same saga take turns, so each derives from every step.
    sqlx::query(
        "SELECT pg_advisory_xact_lock(h) FROM \
         (SELECT DISTINCT hashtextextended(id, 0) AS h FROM unnest($1::text[]) AS id) ids \
         ORDER BY h",
    )
    .bind(&saga_ids)
    .execute(&mut **tx)
    .await?;
    let inserted: Vec<String> = insert_steps(tx, steps).await?;
    if inserted.is_empty() {
        return Ok(0);
    }
    let mut touched = inserted.clone();
    touched.sort_unstable();
    touched.dedup();
    let rows = sqlx::query(
        "SELECT event_id, saga_id, event_type, service, direction, occurred_at, \
         recorded_at, campaign_id, partner_id, amount_minor, currency \
         FROM saga_steps WHERE saga_id = ANY($1)",
    )
    .bind(&touched)
    .fetch_all(&mut **tx)
    .await?;
    // Each saga's steps, and when the log first saw it (its deadline's grace period).
    let mut by_saga: HashMap<String, (Vec<Step>, Option<Timestamp>)> = HashMap::new();
    for row in rows {
        let step = step_of(&row)?;
        let seen: Timestamp = row.try_get("recorded_at")?;
        let (steps, first_seen) = by_saga.entry(step.saga_id.clone()).or_default();
        *first_seen = Some(first_seen.map_or(seen, |first| first.min(seen)));
        steps.push(step);
    }
    let derived: Vec<(String, Derived)> = by_saga
        .into_iter()
        .filter_map(|(id, (steps, seen))| {
            derive_seen(&steps, deadline_after, seen).map(|d| (id, d))
        })
        .collect();
    upsert_sagas(tx, &derived).await?;
    Ok(inserted.len())
}

/// Counts the events not counted yet into their campaigns' totals. Events are inserted in id
/// order and campaign rows added to in campaign id order, so concurrent writers never wait on
/// each other in a cycle.
async fn count(
    tx: &mut Transaction<'_, Postgres>,
    counted: &[&Counted],
) -> Result<(), sqlx::Error> {
    if counted.is_empty() {
        return Ok(());
    }
    // In event id order: two transactions counting some of the same events (a redelivery
    // handled by two replicas at once) wait on each other's ids in one order, never in a cycle.
    let mut counted = counted.to_vec();
    counted.sort_unstable_by(|a, b| a.event_id.cmp(&b.event_id));
    let event_ids: Vec<&str> = counted.iter().map(|c| c.event_id.as_str()).collect();
    let campaigns: Vec<&str> = counted.iter().map(|c| c.campaign_id.as_str()).collect();
    let kinds: Vec<&str> = counted.iter().map(|c| c.count.kind()).collect();
    let amounts: Vec<i64> = counted.iter().map(|c| c.count.amount_minor()).collect();
    sqlx::query(
        "WITH new AS ( \
           INSERT INTO campaign_counts (event_id, campaign_id, kind, amount_minor) \
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) \
           ON CONFLICT (event_id) DO NOTHING \
           RETURNING campaign_id, kind, amount_minor) \
         INSERT INTO campaign_stats AS s (campaign_id, views, clicks, purchases, conversions, \
           conversions_rejected, sales_attributed_minor, commissions_reserved, \
           commissions_rejected, commissions_reverted, commission_reserved_minor, \
           commission_released_minor) \
         SELECT campaign_id, \
           count(*) FILTER (WHERE kind = 'view'), \
           count(*) FILTER (WHERE kind = 'click'), \
           count(*) FILTER (WHERE kind = 'purchase'), \
           count(*) FILTER (WHERE kind = 'conversion'), \
           count(*) FILTER (WHERE kind = 'conversion_rejected'), \
           coalesce(sum(amount_minor) FILTER (WHERE kind = 'conversion'), 0), \
           count(*) FILTER (WHERE kind = 'commission_reserved'), \
           count(*) FILTER (WHERE kind = 'commission_rejected'), \
           count(*) FILTER (WHERE kind = 'commission_reverted'), \
           coalesce(sum(amount_minor) FILTER (WHERE kind = 'commission_reserved'), 0), \
           coalesce(sum(amount_minor) FILTER (WHERE kind = 'commission_reverted'), 0) \
         FROM new GROUP BY campaign_id ORDER BY campaign_id \
         ON CONFLICT (campaign_id) DO UPDATE SET \
           views = s.views + excluded.views, \
           clicks = s.clicks + excluded.clicks, \
           purchases = s.purchases + excluded.purchases, \
           conversions = s.conversions + excluded.conversions, \
           conversions_rejected = s.conversions_rejected + excluded.conversions_rejected, \
           sales_attributed_minor = s.sales_attributed_minor + excluded.sales_attributed_minor, \
           commissions_reserved = s.commissions_reserved + excluded.commissions_reserved, \
           commissions_rejected = s.commissions_rejected + excluded.commissions_rejected, \
           commissions_reverted = s.commissions_reverted + excluded.commissions_reverted, \
           commission_reserved_minor = \
             s.commission_reserved_minor + excluded.commission_reserved_minor, \
           commission_released_minor = \
             s.commission_released_minor + excluded.commission_released_minor",
    )
    .bind(event_ids)
    .bind(campaigns)
    .bind(kinds)
    .bind(amounts)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Lists each campaign at its version, unless a newer version is listed already.
async fn list_campaigns(
    tx: &mut Transaction<'_, Postgres>,
    campaigns: &[(String, u64, serde_json::Value)],
) -> Result<(), sqlx::Error> {
    if campaigns.is_empty() {
        return Ok(());
    }
    let mut sorted: Vec<&(String, u64, serde_json::Value)> = campaigns.iter().collect();
    sorted.sort_by(|a, b| (&a.0, b.1).cmp(&(&b.0, a.1)));
    // One row per campaign (its newest version here), in id order: concurrent writers lock
    // rows in the same order.
    sorted.dedup_by(|later, first| later.0 == first.0);
    let ids: Vec<&str> = sorted.iter().map(|c| c.0.as_str()).collect();
    let versions: Vec<i64> = sorted
        .iter()
        .map(|c| i64::try_from(c.1).unwrap_or(i64::MAX))
        .collect();
    let bodies: Vec<String> = sorted.iter().map(|c| c.2.to_string()).collect();
    sqlx::query(
        "INSERT INTO campaigns AS c (campaign_id, version, campaign) \
         SELECT i, v, b::jsonb FROM unnest($1::text[], $2::bigint[], $3::text[]) AS x(i, v, b) \
         ON CONFLICT (campaign_id) DO UPDATE \
           SET version = excluded.version, campaign = excluded.campaign, updated_at = now() \
           WHERE c.version < excluded.version",
    )
    .bind(ids)
    .bind(versions)
    .bind(bodies)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts the steps not recorded yet; returns the saga id of each one inserted.
async fn insert_steps(
    tx: &mut Transaction<'_, Postgres>,
    steps: &[&Step],
) -> Result<Vec<String>, sqlx::Error> {
    let col = |f: fn(&Step) -> Option<String>| steps.iter().map(|s| f(s)).collect::<Vec<_>>();
    let event_ids = col(|s| Some(s.event_id.clone()));
    let saga_ids = col(|s| Some(s.saga_id.clone()));
    let types = col(|s| Some(s.event_type.clone()));
    let services = col(|s| Some(s.service.clone()));
    let directions = col(|s| Some(s.direction.as_str().to_owned()));
    let payloads = col(|s| Some(s.payload.to_string()));
    let campaigns = col(|s| s.facts.campaign_id.clone());
    let partners = col(|s| s.facts.partner_id.clone());
    let currencies = col(|s| s.facts.amount.as_ref().map(|m| m.currency.clone()));
    let amounts: Vec<Option<i64>> = steps
        .iter()
        .map(|s| s.facts.amount.as_ref().map(|m| m.amount_minor))
        .collect();
    let occurred: Vec<Timestamp> = steps.iter().map(|s| s.occurred_at).collect();
    sqlx::query_scalar(
        "INSERT INTO saga_steps (event_id, saga_id, event_type, service, direction, payload, \
           occurred_at, campaign_id, partner_id, amount_minor, currency) \
         SELECT e, s, t, sv, d, p::jsonb, o, c, pa, a, cu FROM unnest(\
           $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
           $7::timestamptz[], $8::text[], $9::text[], $10::bigint[], $11::text[]) \
           AS x(e, s, t, sv, d, p, o, c, pa, a, cu) \
         ON CONFLICT (event_id) DO NOTHING RETURNING saga_id",
    )
    .bind(event_ids)
    .bind(saga_ids)
    .bind(types)
    .bind(services)
    .bind(directions)
    .bind(payloads)
    .bind(occurred)
    .bind(campaigns)
    .bind(partners)
    .bind(amounts)
    .bind(currencies)
    .fetch_all(&mut **tx)
    .await
}

/// Writes the derived rows of the sagas that changed.
async fn upsert_sagas(
    tx: &mut Transaction<'_, Postgres>,
    derived: &[(String, Derived)],
) -> Result<(), sqlx::Error> {
    let ids: Vec<&str> = derived.iter().map(|(id, _)| id.as_str()).collect();
    let statuses: Vec<&str> = derived.iter().map(|(_, d)| d.status.as_str()).collect();
    let orphans: Vec<bool> = derived.iter().map(|(_, d)| d.orphan).collect();
    let campaigns: Vec<Option<&str>> = derived
        .iter()
        .map(|(_, d)| d.facts.campaign_id.as_deref())
        .collect();
    let partners: Vec<Option<&str>> = derived
        .iter()
        .map(|(_, d)| d.facts.partner_id.as_deref())
        .collect();
    let amounts: Vec<Option<i64>> = derived
        .iter()
        .map(|(_, d)| d.facts.amount.as_ref().map(|m| m.amount_minor))
        .collect();
    let currencies: Vec<Option<&str>> = derived
        .iter()
        .map(|(_, d)| d.facts.amount.as_ref().map(|m| m.currency.as_str()))
        .collect();
    let started: Vec<Timestamp> = derived.iter().map(|(_, d)| d.started_at).collect();
    let finished: Vec<Option<Timestamp>> = derived.iter().map(|(_, d)| d.finished_at).collect();
    let deadlines: Vec<Option<Timestamp>> = derived.iter().map(|(_, d)| d.deadline).collect();
    sqlx::query(
        "INSERT INTO sagas (saga_id, status, orphan, campaign_id, partner_id, amount_minor, \
           currency, started_at, updated_at, finished_at, deadline) \
         SELECT i, s, o, c, p, a, cu, st, now(), f, d FROM unnest(\
           $1::text[], $2::text[], $3::bool[], $4::text[], $5::text[], $6::bigint[], \
           $7::text[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[]) \
           AS x(i, s, o, c, p, a, cu, st, f, d) \
         ON CONFLICT (saga_id) DO UPDATE SET status = EXCLUDED.status, \
           orphan = EXCLUDED.orphan, campaign_id = EXCLUDED.campaign_id, \
           partner_id = EXCLUDED.partner_id, amount_minor = EXCLUDED.amount_minor, \
           currency = EXCLUDED.currency, started_at = EXCLUDED.started_at, \
           updated_at = EXCLUDED.updated_at, finished_at = EXCLUDED.finished_at, \
           deadline = EXCLUDED.deadline",
    )
    .bind(ids)
    .bind(statuses)
    .bind(orphans)
    .bind(campaigns)
    .bind(partners)
    .bind(amounts)
    .bind(currencies)
    .bind(started)
    .bind(finished)
    .bind(deadlines)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn step_of(row: &PgRow) -> Result<Step, sqlx::Error> {
    let direction: String = row.try_get("direction")?;
    Ok(Step {
        event_id: row.try_get("event_id")?,
        saga_id: row.try_get("saga_id")?,
        event_type: row.try_get("event_type")?,
        service: row.try_get("service")?,
        direction: parse_direction(&direction)?,
        payload: serde_json::Value::Null,
        occurred_at: row.try_get("occurred_at")?,
        facts: Facts {
            campaign_id: row.try_get("campaign_id")?,
            partner_id: row.try_get("partner_id")?,
            amount: money(row)?,
        },
    })
}

fn summary_of(row: &PgRow) -> Result<SagaSummary, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let started_at: Timestamp = row.try_get("started_at")?;
    let finished_at: Option<Timestamp> = row.try_get("finished_at")?;
    Ok(SagaSummary {
        saga_id: row.try_get("saga_id")?,
        status: parse_status(&status)?,
        orphan: row.try_get("orphan")?,
        campaign_id: row.try_get("campaign_id")?,
        partner_id: row.try_get("partner_id")?,
        amount: money(row)?,
        started_at,
        updated_at: row.try_get("updated_at")?,
        finished_at,
        deadline: row.try_get("deadline")?,
        duration_ms: finished_at.map(|f| (f - started_at).num_milliseconds()),
    })
}

fn money(row: &PgRow) -> Result<Option<Money>, sqlx::Error> {
    let amount: Option<i64> = row.try_get("amount_minor")?;
    let currency: Option<String> = row.try_get("currency")?;
    Ok(amount.zip(currency).map(|(a, c)| Money::new(a, c)))
}

fn parse_status(name: &str) -> Result<Status, sqlx::Error> {
    Status::parse(name).ok_or_else(|| sqlx::Error::Decode(format!("unknown status {name}").into()))
}

fn parse_direction(name: &str) -> Result<Direction, sqlx::Error> {
    Direction::parse(name)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown direction {name}").into()))
}

/// Creates database `name` on the server `url` points at, unless it exists, and returns the URL
/// of that database. For tests and local tooling that want a log of their own; `name` must be
/// lowercase letters, digits and underscores.
pub async fn ensure_database(url: &str, name: &str) -> Result<String, LogError> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let (server, query) = match url.split_once('?') {
        Some((server, query)) => (server, Some(query)),
        None => (url, None),
    };
    let Some((server, _)) = server.rsplit_once('/').filter(|_| valid) else {
        return Err(LogError::Database(std::sync::Arc::new(
            sqlx::Error::Configuration(
                format!("cannot derive a database URL for {name:?} from the one given").into(),
            ),
        )));
    };
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(url).await?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut admin)
        .await?;
    if exists.is_none() {
        let created = sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await;
        match created {
            Ok(_) => {}
            // Someone else created it meanwhile: that is what we wanted.
            Err(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("42P04") | Some("23505")) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    })
}
