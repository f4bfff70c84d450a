//! `GET /commissions`: a page of commissions in commission id order, from streams already
//! written, never by replaying the store.
//!
//! Where the ids come from:
//!
//! - a campaign's budget (`budget-{campaign}`) names every saga that reached it: reserved,
//!   refused, confirmed, released or closed. Its folded state is kept in process ([`States`])
//!   and refreshed by `_id` lookups, so reading it costs what the reservations already pay;
//! - the registry (`registry`) names the campaigns, for the list across all of them, and the
//!   few commissions that never reach a budget.
//!
//! A page merges, in id order after the cursor, the ids of the campaign asked for (or of every
//! registered campaign) with the registry's, then loads each commission's stream by `_id` to
//! show it, as `GET /commissions/{id}` does, and keeps those the filter wants. A budget's
//! answer for a saga bounds what its commission can be ([`could_be`]), so a status filter skips
//! most commissions it cannot want without loading them. A request examines at most
//! [`MAX_PASSED`] commissions the filter does not want; then the page ends early, with the last
//! one examined as its cursor: a page may hold fewer than `limit` commissions and still have a
//! next one. Follow `next_cursor` until it is absent.
//!
//! A commission is listed once its budget names it (or the registry does): from its
//! reservation's second write on, a moment after its first. One whose process died between the
//! two is listed when the redelivery reaches the budget, or, if it never does, when the saga's
//! timeout closes it there. Another replica's writes are seen once this process's copy of the
//! stream is checked again (at most a second later).
//!
//! [`States`]: alpes_eventstore::States

use std::collections::BTreeMap;
use std::ops::Bound;

use alpes_eventstore::EventStore;

use super::registry::{self, CAMPAIGNS};
use super::{
    AppError, CommissionFilter, CommissionPage, CommissionView, Commissions, budget_stream,
};
use crate::domain::{BudgetEntry, Commission, CommissionStatus};

/// Ids taken from each source per round of a page.
const BATCH: usize = 256;

/// Commissions the filter does not want that one request loads at most.
pub(super) const MAX_PASSED: usize = 512;

/// Commissions the filter does not want that one request passes over without loading them (its
/// budget's answer rules them out) at most.
const MAX_SKIPPED: usize = 8 * MAX_PASSED;

/// The statuses a commission can have, or `None` when nothing bounds them.
type Possible = Option<&'static [CommissionStatus]>;

impl<S: EventStore> Commissions<S> {
    /// The commissions `filter` selects, one page of them.
    pub async fn commissions(&self, filter: &CommissionFilter) -> Result<CommissionPage, AppError> {
        self.prepare_listing().await?;
        let mut items: Vec<CommissionView> = Vec::new();
        let mut after = filter.after.clone();
        let (mut passed, mut skipped) = (0, 0);
        loop {
            let batch = self
                .candidates(filter.campaign.as_deref(), after.as_deref())
                .await?;
            let last_round = batch.len() < BATCH;
            for (commission_id, possible) in batch {
                let ruled_out = matches!(
                    (filter.status, possible),
                    (Some(status), Some(possible)) if !possible.contains(&status)
                );
                let view = if ruled_out {
                    skipped += 1;
                    None
                } else {
                    self.commission(&commission_id)
                        .await?
                        .filter(|view| wants(filter, view))
                };
                after = Some(commission_id);
                match view {
                    Some(_) if items.len() == filter.limit => {
                        let next_cursor = items.last().map(|v| v.commission_id.clone());
                        return Ok(CommissionPage { items, next_cursor });
                    }
                    Some(view) => items.push(view),
                    None => {
                        passed += usize::from(!ruled_out);
                        if passed == MAX_PASSED || skipped == MAX_SKIPPED {
                            return Ok(CommissionPage {
                                items,
                                next_cursor: after,
                            });
                        }
                    }
                }
            }
            if last_round {
                return Ok(CommissionPage {
                    items,
                    next_cursor: None,
                });
            }
        }
    }

    /// Up to [`BATCH`] commission ids after `after`, in order, of `campaign` (or of every
    /// campaign), each with what its budget's answer says it can be.
    async fn candidates(
        &self,
        campaign: Option<&str>,
        after: Option<&str>,
    ) -> Result<Vec<(String, Possible)>, AppError> {
        let mut found: BTreeMap<String, Possible> = BTreeMap::new();
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        for shard in registry::shards() {
            let registry = self.registry(&shard).await?;
            let listed = match campaign {
                Some(campaign) => registry.by_campaign.get(campaign),
                None => Some(&registry.commissions),
            };
            let ids = listed
                .into_iter()
                .flat_map(|ids| ids.range::<str, _>((start, Bound::Unbounded)));
            keep_first(&mut found, ids.map(|id| (id.clone(), None)));
        }
        let campaigns: Vec<String> = match campaign {
            Some(campaign) => vec![campaign.to_owned()],
            None => self
                .registry(CAMPAIGNS)
                .await?
                .campaigns
                .iter()
                .cloned()
                .collect(),
        };
        let Some(sagas_after) = sagas_after(after) else {
            return Ok(found.into_iter().collect());
        };
        for campaign in campaigns {
            let name = budget_stream(&campaign);
            // In the budget's turn, so that its writers find the folded budget unshared and
            // update it in place instead of copying it.
            let _turn = self.writers.lock(&name).await;
            let (_, budget) = self.load_budget(&name).await?;
            let ids = budget
                .entries_after(sagas_after)
                .map(|(saga_id, entry)| (Commission::id_for(saga_id), Some(could_be(entry))));
            keep_first(&mut found, ids);
        }
        Ok(found.into_iter().collect())
    }
}

/// Adds `ids` (in order) to `found`, keeping only the first [`BATCH`] of both.
fn keep_first(
    found: &mut BTreeMap<String, Possible>,
    ids: impl Iterator<Item = (String, Possible)>,
) {
    for (id, possible) in ids.take(BATCH) {
        if found.len() >= BATCH && found.last_key_value().is_some_and(|(last, _)| id > *last) {
            break;
        }
        // A budget's bound is worth more than the registry's none.
        let known = found.entry(id).or_insert(possible);
        if known.is_none() {
            *known = possible;
        }
        if found.len() > BATCH {
            found.pop_last();
        }
    }
}

/// The sagas whose commission ids come after commission id `after`: `Some(None)` for all of
/// them, `None` for none.
fn sagas_after(after: Option<&str>) -> Option<Option<&str>> {
    const PREFIX: &str = "commission-";
    match after {
        None => Some(None),
        Some(after) => match after.strip_prefix(PREFIX) {
            Some(saga_id) => Some(Some(saga_id)),
            None if after < PREFIX => Some(None),
            None => None,
        },
    }
}

/// What a commission can be, given its budget's answer for its saga. The commission is written
/// before its budget when compensated or confirmed, and after it when reserved or refused, so
/// for a while the two differ; a released or closed saga's commission is reverted for good.
fn could_be(entry: &BudgetEntry) -> &'static [CommissionStatus] {
    use CommissionStatus::{Confirmed, Pending, Rejected, Reserved, Reverted};
    match entry {
        BudgetEntry::Held(_) => &[Pending, Reserved, Confirmed, Reverted],
        BudgetEntry::Confirmed(_) => &[Confirmed, Reverted],
        BudgetEntry::Rejected { .. } => &[Pending, Rejected, Reverted],
        BudgetEntry::Released(_) | BudgetEntry::Closed => &[Reverted],
    }
}

/// Whether `filter` wants `view`.
fn wants(filter: &CommissionFilter, view: &CommissionView) -> bool {
    filter.status.is_none_or(|status| status == view.status)
        && filter
            .campaign
            .as_ref()
            .is_none_or(|campaign| view.campaign_id.as_ref() == Some(campaign))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sagas_after_a_cursor_are_those_whose_commission_ids_sort_after_it() {
        assert_eq!(sagas_after(None), Some(None));
        assert_eq!(sagas_after(Some("commission-b")), Some(Some("b")));
        assert_eq!(sagas_after(Some("commission-")), Some(Some("")));
        assert_eq!(
            sagas_after(Some("a")),
            Some(None),
            "before every commission id"
        );
        assert_eq!(sagas_after(Some("d")), None, "after every commission id");
    }

    #[test]
    fn only_the_first_of_a_batch_are_kept_and_a_budget_s_bound_wins() {
        let mut found = BTreeMap::new();
        let registry = (0..BATCH + 10).map(|i| (format!("commission-r{i:04}"), None));
        keep_first(&mut found, registry);
        assert_eq!(found.len(), BATCH);
        let budget = [
            (
                "commission-a".to_owned(),
                Some(could_be(&BudgetEntry::Closed)),
            ),
            (
                "commission-r0001".to_owned(),
                Some(could_be(&BudgetEntry::Closed)),
            ),
        ];
        keep_first(&mut found, budget.into_iter());
        assert_eq!(found.len(), BATCH);
        assert_eq!(found.keys().next().unwrap(), "commission-a");
        assert_eq!(
            found["commission-r0001"],
            Some(&[CommissionStatus::Reverted][..])
        );
    }
}
