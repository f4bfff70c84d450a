//! Marketing's read models: the campaign list and each campaign's statistics, kept up to date
//! as things happen so that a read is a lookup, never a replay of the event store.
//!
//! Both live in the saga log's Postgres (`alpes_sagalog`):
//!
//! - **Statistics** are counted by the log in the transaction that records each saga event
//!   (each event once, by its id), so they need nothing from here but reading.
//! - **The campaign list** holds each campaign as the API shows it, with the version of its
//!   stream it was read at; a newer version always replaces an older one. It is written right
//!   after each change (so a client reads its own writes), and again whenever marketing
//!   consumes the campaign event the change announced: the event is published from the
//!   change's outbox at least once even if the process died right after the change, so a list
//!   entry that missed its first write is always repaired.
//!
//! Earlier versions kept statistics in the event store and had no list: the first start on an
//! event store database imports both, once, in the background ([`ReadModels::import`]); until
//! it has, reads answer [`ReadError::Importing`] rather than something incomplete. An earlier
//! version still running after the import would count into the event store and be lost, so
//! this version is deployed with `strategy: Recreate` (`k8s/base/marketing.yaml`).
//!
//! Unit tests use [`ReadModels::in_memory`], which keeps the list in a map and counts nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use alpes_sagalog::{CampaignStats, Counted, LogError, SagaLog};

use crate::domain::Campaign;

/// Why a read model could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The one-time import of what earlier versions kept has not finished.
    #[error("the read models are being imported from an earlier version's store")]
    Importing,
    /// The saga log's Postgres could not answer.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A listed campaign does not read back.
    #[error("a listed campaign does not read back: {0}")]
    Corrupt(String),
}

/// The campaign list and statistics. Cheap to clone.
#[derive(Clone)]
pub struct ReadModels(Inner);

#[derive(Clone)]
enum Inner {
    Log {
        log: SagaLog,
        imported: Arc<AtomicBool>,
    },
    Memory(Arc<Mutex<BTreeMap<String, (u64, Campaign)>>>),
}

/// One page of the campaign list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignPage {
    /// The campaigns, in campaign id order (creation order: ids are UUIDv7).
    pub items: Vec<(String, Campaign)>,
    /// The last id of this page, when another may follow.
    pub next_cursor: Option<String>,
}

impl ReadModels {
    /// The read models in `log`; reads wait for [`ReadModels::import`] to have run.
    pub fn in_log(log: SagaLog) -> Self {
        Self(Inner::Log {
            log,
            imported: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A list in memory and no statistics, for unit tests.
    pub fn in_memory() -> Self {
        Self(Inner::Memory(Arc::default()))
    }

    /// Lists `campaign` as read at `version` of its stream, unless a newer version is listed.
    pub async fn list(
        &self,
        campaign_id: &str,
        version: u64,
        campaign: &Campaign,
    ) -> Result<(), ReadError> {
        match &self.0 {
            Inner::Log { log, .. } => {
                let body = serde_json::to_value(campaign)
                    .map_err(|e| ReadError::Corrupt(e.to_string()))?;
                Ok(log.list_campaign(campaign_id, version, &body).await?)
            }
            Inner::Memory(list) => {
                let mut list = list.lock().unwrap_or_else(|e| e.into_inner());
                let listed = list
                    .entry(campaign_id.to_owned())
                    .or_insert((0, campaign.clone()));
                if listed.0 < version {
                    *listed = (version, campaign.clone());
                }
                Ok(())
            }
        }
    }

    /// Up to `limit` campaigns after campaign id `after`.
    pub async fn campaigns(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<CampaignPage, ReadError> {
        // One more than asked: whether another page follows.
        let mut items: Vec<(String, Campaign)> = match &self.0 {
            Inner::Log { log, imported } => {
                ready(imported)?;
                log.campaigns(after, limit.saturating_add(1))
                    .await?
                    .into_iter()
                    .map(|(id, body)| {
                        serde_json::from_value(body)
                            .map(|campaign| (id, campaign))
                            .map_err(|e| ReadError::Corrupt(e.to_string()))
                    })
                    .collect::<Result<_, _>>()?
            }
            Inner::Memory(list) => {
                let list = list.lock().unwrap_or_else(|e| e.into_inner());
                list.iter()
                    .filter(|(id, _)| after.is_none_or(|after| id.as_str() > after))
                    .take(limit as usize + 1)
                    .map(|(id, (_, campaign))| (id.clone(), campaign.clone()))
                    .collect()
            }
        };
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|(id, _)| id.clone())
        } else {
            None
        };
        Ok(CampaignPage { items, next_cursor })
    }

    /// The statistics of campaign `campaign_id`.
    pub async fn stats(&self, campaign_id: &str) -> Result<CampaignStats, ReadError> {
        match &self.0 {
            Inner::Log { log, imported } => {
                ready(imported)?;
                Ok(log.campaign_stats(campaign_id).await?)
            }
            Inner::Memory(_) => Ok(CampaignStats::default()),
        }
    }

    /// Imports, once per `source`, the counts and campaigns an earlier version kept in the
    /// event store (`legacy` reads them: a replay of the whole store, so only if not imported
    /// yet), then lets reads through. Live writes may race it: both sides are idempotent.
    pub async fn import<F, Fut>(&self, source: &str, legacy: F) -> Result<(), ReadError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Legacy, ReadError>>,
    {
        let Inner::Log { log, imported } = &self.0 else {
            return Ok(());
        };
        if !log.imported(source).await? {
            let legacy = legacy().await?;
            let campaigns = legacy
                .campaigns
                .iter()
                .map(|(id, version, campaign)| {
                    serde_json::to_value(campaign)
                        .map(|body| (id.clone(), *version, body))
                        .map_err(|e| ReadError::Corrupt(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            log.import(source, &legacy.counted, &campaigns).await?;
            tracing::info!(
                counts = legacy.counted.len(),
                campaigns = campaigns.len(),
                "imported an earlier version's statistics and campaigns into the read models"
            );
        }
        imported.store(true, Ordering::Release);
        Ok(())
    }
}

/// What an earlier version kept in the event store that the read models now hold.
#[derive(Debug, Default)]
pub struct Legacy {
    /// Statistics facts, one per counted event.
    pub counted: Vec<Counted>,
    /// Every campaign, with the version of its stream.
    pub campaigns: Vec<(String, u64, Campaign)>,
}

fn ready(imported: &AtomicBool) -> Result<(), ReadError> {
    if imported.load(Ordering::Acquire) {
        Ok(())
    } else {
        Err(ReadError::Importing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CampaignDefinition, CampaignStatus, Model, RateKind, Terms};
    use alpes_contracts::Money;

    fn campaign(status: CampaignStatus) -> Campaign {
        Campaign {
            definition: CampaignDefinition {
                name: "Spring".into(),
                budget: Money::new(1_000, "EUR"),
                terms: Terms {
                    kind: RateKind::Fixed,
                    percentage_bps: None,
                    fixed_minor: Some(10),
                    minimum_minor: 0,
                    maximum_minor: None,
                },
                attribution_model: Model::LastTouch,
                attribution_window_days: 30,
                fraud_threshold: 80,
            },
            status,
        }
    }

    #[tokio::test]
    async fn the_newest_version_is_listed_and_pages_follow_the_cursor() {
        let models = ReadModels::in_memory();
        for id in ["c", "a", "b"] {
            models
                .list(id, 1, &campaign(CampaignStatus::Draft))
                .await
                .unwrap();
        }
        models
            .list("b", 3, &campaign(CampaignStatus::Completed))
            .await
            .unwrap();
        models
            .list("b", 2, &campaign(CampaignStatus::Active))
            .await
            .unwrap();
        let first = models.campaigns(None, 2).await.unwrap();
        let ids: Vec<&str> = first.items.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(first.items[1].1.status, CampaignStatus::Completed);
        assert_eq!(first.next_cursor.as_deref(), Some("b"));
        let second = models.campaigns(Some("b"), 2).await.unwrap();
        assert_eq!(second.items.len(), 1);
        assert_eq!(second.next_cursor, None);
    }
}
