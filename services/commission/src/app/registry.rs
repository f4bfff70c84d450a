//! The listing's registry: the few facts `GET /commissions` needs that no budget records.
//!
//! The list is served from streams already written (see `listing`): a campaign's budget names
//! every saga that reached it, reserved, refused, confirmed, released or closed. Two things are
//! in no budget, and are kept here, in streams of their own:
//!
//! - which campaigns exist, for the list across every campaign: `registry-campaigns`, one
//!   commit per campaign, written when its `CampaignCreated` is handled (rare);
//! - the commissions that never reach a budget: refused because their campaign is not known
//!   here, or compensated before their sale was attributed (listed again under the campaign of
//!   a sale that arrives after that). Rare too, and spread over [`SHARDS`] streams
//!   `registry-commissions-{n}`, so that no stream grows with all of them and replicas seldom
//!   collide on one.
//!
//! Nothing here is on the reservation's path: a sale that reaches its budget writes nothing
//! more than before. An entry is written *before* the write it is about, and only if missing:
//! a crash in between leaves an entry naming a budget or a commission that does not exist yet
//! (the listing skips it; the redelivery writes it), never a commission the list cannot find.
//!
//! What versions before the registry wrote is found once per database by the legacy sweep, a
//! read of the whole store (the one scan the listing ever makes), which records it here and
//! then the flag `LegacySwept` in `registry-campaigns`; every process after that only reads the
//! flag. The event store's outbox does the same for its own legacy. An earlier version still
//! running after the sweep would open budgets and refuse sales the registry never hears of,
//! so this version is deployed with `strategy: Recreate` (`k8s/base/commission.yaml`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use alpes_eventstore::{
    Commit, EventStore, Projection, StoreError, Stream, retry_on_conflict, scan,
};
use serde::{Deserialize, Serialize};

use super::{ATTEMPTS, Commissions};
use crate::domain::DomainEvent;
use crate::domain::{BudgetEvent, Commission, CommissionEvent};

/// The stream of registered campaigns, which also holds the legacy sweep's flag.
pub(super) const CAMPAIGNS: &str = "registry-campaigns";

/// Streams the budgetless commissions are spread over.
const SHARDS: u32 = 16;

/// Registrations per commit when the sweep records many.
const PER_COMMIT: usize = 500;

/// The budget streams' prefix (see `budget_stream`).
const BUDGET_PREFIX: &str = "budget-";

/// The registry stream of budgetless commission `commission_id`.
fn shard_of(commission_id: &str) -> String {
    // FNV-1a: the same in every build and version, unlike the standard library's hasher.
    let hash = commission_id.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    shard(hash % SHARDS)
}

fn shard(n: u32) -> String {
    format!("registry-commissions-{n}")
}

/// Every registry stream of budgetless commissions.
pub(super) fn shards() -> impl Iterator<Item = String> {
    (0..SHARDS).map(shard)
}

/// What a registry stream records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub(super) enum RegistryEvent {
    /// A campaign whose budget may name commissions.
    CampaignListed { campaign_id: String },
    /// A commission no budget names, under the campaign of its sale once it has one.
    CommissionListed {
        commission_id: String,
        campaign_id: Option<String>,
    },
    /// What earlier versions wrote is registered: the sweep is not needed again.
    LegacySwept { campaigns: u64, commissions: u64 },
}

impl DomainEvent for RegistryEvent {
    fn kind(&self) -> &'static str {
        match self {
            Self::CampaignListed { .. } => "CampaignListed",
            Self::CommissionListed { .. } => "CommissionListed",
            Self::LegacySwept { .. } => "LegacySwept",
        }
    }
}

/// A registry stream folded.
#[derive(Debug, Clone, Default)]
pub(super) struct Registry {
    /// Registered campaigns.
    pub(super) campaigns: BTreeSet<String>,
    /// Budgetless commissions, by id.
    pub(super) commissions: BTreeSet<String>,
    /// Budgetless commissions by the campaign of their sale.
    pub(super) by_campaign: BTreeMap<String, BTreeSet<String>>,
    /// Whether the legacy sweep is done.
    pub(super) swept: bool,
}

impl Registry {
    fn apply(&mut self, event: &RegistryEvent) {
        match event {
            RegistryEvent::CampaignListed { campaign_id } => {
                self.campaigns.insert(campaign_id.clone());
            }
            RegistryEvent::CommissionListed {
                commission_id,
                campaign_id,
            } => {
                self.commissions.insert(commission_id.clone());
                if let Some(campaign_id) = campaign_id {
                    self.by_campaign
                        .entry(campaign_id.clone())
                        .or_default()
                        .insert(commission_id.clone());
                }
            }
            RegistryEvent::LegacySwept { .. } => self.swept = true,
        }
    }

    /// Whether `event` is recorded already.
    fn has(&self, event: &RegistryEvent) -> bool {
        match event {
            RegistryEvent::CampaignListed { campaign_id } => self.campaigns.contains(campaign_id),
            RegistryEvent::CommissionListed {
                commission_id,
                campaign_id: None,
            } => self.commissions.contains(commission_id),
            RegistryEvent::CommissionListed {
                commission_id,
                campaign_id: Some(campaign_id),
            } => self
                .by_campaign
                .get(campaign_id)
                .is_some_and(|listed| listed.contains(commission_id)),
            RegistryEvent::LegacySwept { .. } => self.swept,
        }
    }
}

impl<S: EventStore> Commissions<S> {
    /// Registry stream `stream`, folded.
    pub(super) async fn registry(&self, stream: &str) -> Result<Arc<Registry>, StoreError> {
        let stream = self.store.load(stream).await?;
        self.fold_registry(&stream)
    }

    fn fold_registry(&self, stream: &Stream) -> Result<Arc<Registry>, StoreError> {
        self.registries
            .fold(stream, |registry: &mut Registry, event| {
                let event: RegistryEvent = event
                    .read()
                    .map_err(|e| StoreError::Corrupt(format!("{}: {e}", stream.name)))?;
                registry.apply(&event);
                Ok::<_, StoreError>(())
            })
    }

    /// Registers campaign `campaign_id`, unless it is already: before its budget is opened.
    pub(super) async fn list_campaign(&self, campaign_id: &str) -> Result<(), StoreError> {
        let listed = RegistryEvent::CampaignListed {
            campaign_id: campaign_id.to_owned(),
        };
        self.record(CAMPAIGNS, vec![listed]).await
    }

    /// Registers commission `commission_id`, which no budget names, under `campaign_id` if its
    /// sale has one, unless it is already: before the commission's write.
    pub(super) async fn list_commission(
        &self,
        commission_id: &str,
        campaign_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let listed = RegistryEvent::CommissionListed {
            commission_id: commission_id.to_owned(),
            campaign_id: campaign_id.map(str::to_owned),
        };
        self.record(&shard_of(commission_id), vec![listed]).await
    }

    /// Appends to registry `stream` those of `events` it does not record yet, in commits of at
    /// most [`PER_COMMIT`]; nothing when it records them all (the usual case: one cached load).
    async fn record(&self, stream: &str, events: Vec<RegistryEvent>) -> Result<(), StoreError> {
        let _writing = self.writers.lock(stream).await;
        loop {
            let done = retry_on_conflict(ATTEMPTS, || async {
                let loaded = self.store.load(stream).await?;
                let registry = self.fold_registry(&loaded)?;
                let missing: Vec<RegistryEvent> = events
                    .iter()
                    .filter(|e| !registry.has(e))
                    .take(PER_COMMIT)
                    .cloned()
                    .collect();
                drop(registry);
                if missing.is_empty() {
                    return Ok(true);
                }
                self.append(loaded, &missing, Vec::new(), None).await?;
                Ok(false)
            })
            .await?;
            if done {
                return Ok(());
            }
        }
    }

    /// Makes sure the registry holds what versions before it wrote: the legacy sweep, once per
    /// database; after that, a look at its flag once per process. The listing waits for it;
    /// the service starts it at start-up so that nobody has to.
    pub async fn prepare_listing(&self) -> Result<(), StoreError> {
        self.swept
            .get_or_try_init(|| async {
                if self.registry(CAMPAIGNS).await?.swept {
                    return Ok(());
                }
                self.sweep_legacy().await
            })
            .await?;
        Ok(())
    }

    /// Replays the whole store once and registers every campaign with a budget stream and every
    /// commission its campaign's budget does not name, then sets the flag.
    async fn sweep_legacy(&self) -> Result<(), StoreError> {
        tracing::info!(
            "commission listing: sweeping the store once for what earlier versions wrote"
        );
        let mut legacy = Legacy::default();
        // One pass, in no order: the sweep only collects which sagas each budget names and
        // which campaign each commission's sale has.
        let replayed = scan(&self.store, &mut legacy).await?;
        let (campaigns, commissions) = legacy.unlisted();
        let mut per_shard: BTreeMap<String, Vec<RegistryEvent>> = BTreeMap::new();
        for (commission_id, campaign_id) in &commissions {
            per_shard.entry(shard_of(commission_id)).or_default().push(
                RegistryEvent::CommissionListed {
                    commission_id: commission_id.clone(),
                    campaign_id: campaign_id.clone(),
                },
            );
        }
        for (shard, events) in per_shard {
            self.record(&shard, events).await?;
        }
        let listed = campaigns
            .iter()
            .map(|campaign_id| RegistryEvent::CampaignListed {
                campaign_id: campaign_id.clone(),
            })
            .collect();
        self.record(CAMPAIGNS, listed).await?;
        let flag = RegistryEvent::LegacySwept {
            campaigns: campaigns.len() as u64,
            commissions: commissions.len() as u64,
        };
        self.record(CAMPAIGNS, vec![flag]).await?;
        tracing::info!(
            replayed,
            campaigns = campaigns.len(),
            budgetless = commissions.len(),
            "commission listing: legacy sweep done"
        );
        Ok(())
    }
}

/// What the legacy sweep gathers from every commit.
#[derive(Default)]
struct Legacy {
    /// Per campaign with a budget stream, the sagas its budget names.
    budgets: BTreeMap<String, BTreeSet<String>>,
    /// Per commission with events, the campaign of its sale, if it has one.
    commissions: BTreeMap<String, Option<String>>,
}

impl Projection for Legacy {
    fn apply(&mut self, commit: &Commit) {
        if let Some(campaign_id) = commit.stream.strip_prefix(BUDGET_PREFIX) {
            let sagas = self.budgets.entry(campaign_id.to_owned()).or_default();
            for event in &commit.events {
                if let Ok(event) = event.read::<BudgetEvent>()
                    && let Some(saga_id) = saga_named(event)
                {
                    sagas.insert(saga_id);
                }
            }
        } else if Commission::saga_of(&commit.stream).is_some() && !commit.events.is_empty() {
            let campaign = self.commissions.entry(commit.stream.clone()).or_default();
            for event in &commit.events {
                if let Ok(
                    CommissionEvent::Attributed { sale, .. }
                    | CommissionEvent::Rejected { sale, .. },
                ) = event.read::<CommissionEvent>()
                {
                    *campaign = Some(sale.campaign_id);
                }
            }
        }
    }
}

impl Legacy {
    /// Every campaign with a budget, and every commission (with its campaign) that no budget
    /// names.
    fn unlisted(self) -> (Vec<String>, Vec<(String, Option<String>)>) {
        let commissions = self
            .commissions
            .into_iter()
            .filter(|(commission_id, campaign_id)| {
                let saga_id = Commission::saga_of(commission_id).unwrap_or_default();
                !campaign_id
                    .as_ref()
                    .and_then(|campaign_id| self.budgets.get(campaign_id))
                    .is_some_and(|sagas| sagas.contains(saga_id))
            })
            .collect();
        (self.budgets.into_keys().collect(), commissions)
    }
}

/// The saga a budget event is about, if any.
fn saga_named(event: BudgetEvent) -> Option<String> {
    match event {
        BudgetEvent::Reserved { saga_id, .. }
        | BudgetEvent::Rejected { saga_id, .. }
        | BudgetEvent::Confirmed { saga_id, .. }
        | BudgetEvent::Released { saga_id, .. }
        | BudgetEvent::Closed { saga_id } => Some(saga_id),
        BudgetEvent::Opened { .. }
        | BudgetEvent::Activated { .. }
        | BudgetEvent::Paused { .. }
        | BudgetEvent::Completed { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commission_always_goes_to_the_same_one_of_the_shards() {
        let shards: BTreeSet<String> = shards().collect();
        assert_eq!(shards.len(), SHARDS as usize);
        let used: BTreeSet<String> = (0..200)
            .map(|i| shard_of(&format!("commission-saga-{i}")))
            .collect();
        assert!(used.is_subset(&shards));
        assert!(used.len() > SHARDS as usize / 2, "spread: {used:?}");
        // Pinned (FNV-1a of "a" is 0xe40c292c): a change of hash would lose every entry
        // written before it.
        assert_eq!(shard_of("a"), shard(0xe40c_292c % SHARDS));
        assert_eq!(shard_of("commission-saga-1"), "registry-commissions-1");
    }
}
