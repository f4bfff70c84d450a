//! `InteractionTracked` → the visitor's journey: a view or click is recorded as a touchpoint,
//! a purchase converts the journey and announces the outcome.
//!
//! An interaction is routed and recorded in **one write**: the journey's commit, which carries
//! the new events, the integration events to publish and the message's id.
//!
//! 1. **Route** it through the visitor's journeys in order (those of the legacy index first,
//!    see `index`, then the derived 1st, 2nd, ...): to the first that already has it, else to
//!    the first still open. An empty stream is an open journey: the visitor's next one, opened
//!    by the write itself. Journeys before the first open one are closed for good (a journey is
//!    only written after every one before it was seen closed, and a closed journey never opens
//!    again nor takes an interaction), so an interaction lands in one journey only, and its
//!    redelivery finds it there even after the visitor has moved on to another one.
//! 2. **Decide** on that journey and append at the version it was loaded at. The journey
//!    ignores an interaction it already has, so a redelivery decides nothing and publishes
//!    nothing. Two writers racing over a journey (a retried message beside the visitor's next
//!    one, another replica, a purchase closing it) want the same commit id: one wins, the other
//!    reloads and routes again, to the next journey if the winner closed this one.
//! 3. For a purchase, **link** the saga to the journey (a second commit, to `saga-{id}`: a
//!    compensation names only the saga), chained to the conversion's commit (one write; the
//!    link is stored only if the conversion is, see `EventStore::append_chain`), and revert the
//!    journey if the saga was compensated before or while the purchase was handled (see
//!    `compensation`). When the compensation is already known at step 2, the conversion and
//!    its reversal are written in the same commit, so the late purchase's outcome is never
//!    published without its reversal. When the link is not stored (a compensation wrote to the
//!    saga first) or a crash cut the write short, the retried purchase finds itself in its
//!    journey at step 2, writes nothing there, and links the saga on its own.
//!
//! A forward saga (view, click, purchase) thus costs attribution four commits in three writes:
//! one per interaction, the purchase's with the saga's link.
//!
//! **A purchase is refused for want of a touchpoint, or of its campaign's facts, only on its
//! last attempt.** Tracking replicas each publish their own commits, so a click taken by a
//! replica that was killed before publishing it is published by whoever adopts its outbox (the
//! sibling on this host within ten seconds; see the event store's `outbox`), possibly after the
//! purchase, taken by another replica, reached attribution. So a purchase that finds nothing to credit
//! writes nothing and is retried (the subscription's backoff: about fifteen seconds over its
//! attempts by default), and the late click, handled meanwhile, joins the journey it converts.
//! Likewise for a campaign not known yet, or known only as a draft: its facts come on
//! marketing's topics, in no order with tracking's, and replicas hear of them each on its own.
//! On the last attempt the purchase is refused (`NO_ELIGIBLE_TOUCHPOINT`, `CAMPAIGN_UNKNOWN`,
//! `CAMPAIGN_INACTIVE`), as an event: a business refusal is never a dead letter.

use alpes_bus::Attempt;
use alpes_contracts::events::tracking::InteractionTracked;
use alpes_eventstore::{EventStore, StoreError};

use super::index::{LegacyVisitorIndex, SagaIndex, SagaLinkEvent, saga_commit, visitor_stream};
use super::journeys::{LoadedJourney, announcements, journey_id};
use super::{AppError, Attribution, retrying};
use crate::domain::{
    Aggregate, CampaignSettings, CampaignStatus, DomainError, JourneyCommand, JourneyEvent,
    Purchase, RejectionReason, Touchpoint,
};

/// What handling an interaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tracked {
    /// A view or click joined a journey.
    Touchpoint {
        /// The journey it joined.
        journey_id: String,
        /// False when the journey already had it (a redelivery).
        recorded: bool,
    },
    /// A purchase converted a journey.
    Purchase {
        /// The converted journey.
        journey_id: String,
        /// The purchase's saga.
        saga_id: String,
        /// False when the journey was already converted by it (a redelivery).
        converted: bool,
        /// True when its saga's compensation, already known, reverted the journey right away.
        reverted: bool,
    },
}

/// What an interaction is to attribution.
enum Arrival {
    Touchpoint(Touchpoint),
    Purchase { purchase: Purchase, saga_id: String },
}

impl Arrival {
    fn of(tracked: &InteractionTracked) -> Result<Self, AppError> {
        if tracked.visitor.anonymous_id.trim().is_empty() {
            return Err(AppError::Malformed(format!(
                "interaction {} names no visitor",
                tracked.interaction_id
            )));
        }
        if let Some(touchpoint) = Touchpoint::from_interaction(tracked) {
            return Ok(Self::Touchpoint(touchpoint));
        }
        let purchase = Purchase::from_interaction(tracked).ok_or_else(|| {
            AppError::Malformed(format!("purchase {} has no order", tracked.interaction_id))
        })?;
        let saga_id = tracked
            .metadata
            .saga_id
            .clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                AppError::Malformed(format!(
                    "purchase {} belongs to no saga",
                    tracked.interaction_id
                ))
            })?;
        Ok(Self::Purchase { purchase, saga_id })
    }
}

impl<S: EventStore> Attribution<S> {
    /// Folds a tracked interaction into its visitor's journey; a purchase converts it and queues
    /// `ConversionAttributed` or `ConversionRejected`. Redeliveries change nothing. A purchase
    /// with nothing to credit, or no active campaign, is refused on the `Last` attempt only;
    /// before, [`AppError::NotYet`] asks for another (see the module doc).
    pub async fn track(
        &self,
        tracked: &InteractionTracked,
        attempt: Attempt,
    ) -> Result<Tracked, AppError> {
        match Arrival::of(tracked)? {
            Arrival::Touchpoint(touchpoint) => {
                retrying(|| self.record_touchpoint(tracked, &touchpoint)).await
            }
            Arrival::Purchase { purchase, saga_id } => {
                let (journey_id, converted, reverted_now) =
                    retrying(|| self.convert(tracked, &purchase, &saga_id, attempt)).await?;
                let saga =
                    retrying(|| self.link_saga(tracked, &saga_id, &journey_id, &purchase)).await?;
                let reverted_later = match &saga.compensation {
                    Some(compensation) => self.revert_journey(&journey_id, compensation).await?,
                    None => false,
                };
                Ok(Tracked::Purchase {
                    journey_id,
                    saga_id,
                    converted,
                    reverted: reverted_now || reverted_later,
                })
            }
        }
    }

    async fn record_touchpoint(
        &self,
        tracked: &InteractionTracked,
        touchpoint: &Touchpoint,
    ) -> Result<Tracked, AppError> {
        let journey = self
            .route(&tracked.visitor.anonymous_id, &touchpoint.interaction_id)
            .await?;
        let command = JourneyCommand::RecordTouchpoint(touchpoint.clone());
        let events = decide_routed(&journey, command)?;
        let recorded = !events.is_empty();
        if recorded {
            self.append_journey(&journey, &events, Vec::new(), &tracked.metadata.event_id)
                .await?;
        }
        Ok(Tracked::Touchpoint {
            journey_id: journey.id,
            recorded,
        })
    }

    /// Converts the purchase's journey: `(journey, converted now, reverted now)`.
    async fn convert(
        &self,
        tracked: &InteractionTracked,
        purchase: &Purchase,
        saga_id: &str,
        attempt: Attempt,
    ) -> Result<(String, bool, bool), AppError> {
        let journey = self
            .route(&tracked.visitor.anonymous_id, &purchase.interaction_id)
            .await?;
        let campaign_id = journey.state.campaign_for(purchase);
        let mut campaign = match &campaign_id {
            Some(id) => self.campaign(id).await?.and_then(|c| c.settings()),
            None => None,
        };
        let convert = |campaign: Option<CampaignSettings>| JourneyCommand::Convert {
            purchase: purchase.clone(),
            campaign,
        };
        let mut events = decide_routed(&journey, convert(campaign.clone()))?;
        if events.is_empty() {
            return Ok((journey.id, false, false));
        }
        let for_campaign = matches!(
            refusal(&events),
            Some(RejectionReason::CampaignUnknown | RejectionReason::CampaignInactive)
        );
        if let (Some(id), true) = (&campaign_id, for_campaign) {
            // The copy of the campaign may be a moment old, and the refusal appends nothing to
            // the campaign that would reveal it: decide on the campaign as it is now.
            campaign = self.campaign_latest(id).await?.and_then(|c| c.settings());
            events = decide_routed(&journey, convert(campaign.clone()))?;
        }
        let awaited = awaited(&events, campaign_id.as_deref(), campaign.as_ref());
        if let (Attempt::Retryable, Some(awaited)) = (attempt, awaited) {
            if awaited == Awaited::Touchpoint {
                // Waiting appends nothing, so nothing would reveal a copy of the journey that
                // lacks what another replica appended (or a first journey taken as new unread,
                // see `load_first_journey`): look first. A journey that moved is routed again.
                let latest = self.load_journey_latest(&journey.id).await?;
                if latest.stream.version() != journey.stream.version() {
                    return Err(AppError::Store(StoreError::Conflict {
                        stream: latest.stream.name,
                        expected: journey.stream.version(),
                    }));
                }
            }
            return Err(AppError::NotYet(format!(
                "purchase {} waits: {}",
                purchase.interaction_id,
                awaited.describe(campaign_id.as_deref().unwrap_or_default())
            )));
        }
        let mut outbox = announcements(&events, &journey.id, &tracked.metadata)?;
        let (saga_stream, saga) = self.load_new_saga(saga_id).await?;
        let mut reverted = false;
        if let Some(compensation) = &saga.compensation {
            let mut converted = journey.state.clone();
            events.iter().for_each(|e| converted.apply(e));
            let reversal = converted.decide(JourneyCommand::Revert {
                reason: compensation.reason.clone(),
            })?;
            outbox.extend(announcements(&reversal, &journey.id, &compensation.cause)?);
            reverted = !reversal.is_empty();
            events.extend(reversal);
        }
        let handled = &tracked.metadata.event_id;
        let mut chain = vec![self.journey_commit(&journey, &events, outbox, handled)?];
        if saga.journey_id.is_none() {
            // The saga's link goes in the same write, stored only if the conversion is.
            let link = SagaLinkEvent::Converted {
                journey_id: journey.id.clone(),
                purchase_interaction_id: purchase.interaction_id.clone(),
            };
            chain.push(saga_commit(&saga_stream, &link, Vec::new(), handled)?);
        }
        self.store.append_chain(chain).await?;
        Ok((journey.id, true, reverted))
    }

    /// Records that the saga's purchase converted `journey_id`; returns the saga as it stands.
    async fn link_saga(
        &self,
        tracked: &InteractionTracked,
        saga_id: &str,
        journey_id: &str,
        purchase: &Purchase,
    ) -> Result<SagaIndex, AppError> {
        let (stream, mut saga) = self.load_new_saga(saga_id).await?;
        if let Some(linked) = &saga.journey_id {
            if linked != journey_id {
                tracing::warn!(
                    saga = saga_id,
                    linked,
                    journey = journey_id,
                    "saga already linked to another journey"
                );
            }
            return Ok(saga);
        }
        let event = SagaLinkEvent::Converted {
            journey_id: journey_id.to_owned(),
            purchase_interaction_id: purchase.interaction_id.clone(),
        };
        self.append_saga(&stream, &event, Vec::new(), &tracked.metadata.event_id)
            .await?;
        saga.apply(event);
        Ok(saga)
    }

    /// The journey `interaction_id` of `visitor_id` goes to: the first of the visitor's
    /// journeys that has it, else the first still open (see the module doc). Writes nothing.
    /// Each closed journey of the visitor is one load, mostly from the process's copy: linear
    /// in the visitor's sales, as the fold of the old visitor index was.
    async fn route(
        &self,
        visitor_id: &str,
        interaction_id: &str,
    ) -> Result<LoadedJourney, AppError> {
        let legacy = if self.may_have_legacy_index(visitor_id) {
            LegacyVisitorIndex::of(&self.store.load(&visitor_stream(visitor_id)).await?)?
        } else {
            LegacyVisitorIndex::default()
        };
        let first = journey_id(visitor_id, 1);
        let derived = (1..).map(|ordinal| journey_id(visitor_id, ordinal));
        for id in legacy.journeys().iter().cloned().chain(derived) {
            let journey = if id == first {
                self.load_first_journey(&id).await?
            } else {
                self.load_journey(&id).await?
            };
            if journey.has(interaction_id) || journey.is_open() {
                return Ok(with_owner(journey, visitor_id));
            }
        }
        unreachable!("a visitor's derived journeys never run out")
    }
}

/// Why `events` refuse the purchase, if they do.
fn refusal(events: &[JourneyEvent]) -> Option<RejectionReason> {
    events.iter().find_map(|e| match e {
        JourneyEvent::Rejected(r) => Some(r.reason),
        _ => None,
    })
}

/// What a refused purchase may still get from another topic, making the refusal premature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaited {
    /// A click (from a tracking replica's outbox not published yet).
    Touchpoint,
    /// The campaign's creation (marketing's topics are not ordered with tracking's).
    Campaign,
    /// The campaign's activation: it is known only as a draft.
    Activation,
}

impl Awaited {
    fn describe(self, campaign_id: &str) -> String {
        match self {
            Self::Touchpoint => "no touchpoint to credit yet; its click may be on its way".into(),
            Self::Campaign => format!("campaign {campaign_id} is not known yet"),
            Self::Activation => format!("campaign {campaign_id} is known only as a draft yet"),
        }
    }
}

/// What the refusal in `events`, if any, may be premature for want of: a touchpoint (also when
/// neither the purchase nor a touchpoint names a campaign), or the facts of the campaign the
/// purchase names (`campaign_id`, known here as `campaign`). A campaign paused or completed is
/// refused for good.
fn awaited(
    events: &[JourneyEvent],
    campaign_id: Option<&str>,
    campaign: Option<&CampaignSettings>,
) -> Option<Awaited> {
    match refusal(events)? {
        // With no touchpoint, a purchase that names no campaign itself names none at all.
        RejectionReason::NoEligibleTouchpoint => Some(Awaited::Touchpoint),
        RejectionReason::CampaignUnknown if campaign_id.is_none() => Some(Awaited::Touchpoint),
        RejectionReason::CampaignUnknown if campaign_id.is_some() && campaign.is_none() => {
            Some(Awaited::Campaign)
        }
        RejectionReason::CampaignInactive
            if campaign.is_some_and(|c| c.status == CampaignStatus::Draft) =>
        {
            Some(Awaited::Activation)
        }
        _ => None,
    }
}

/// `journey`, owned by `visitor_id` unless its stream says otherwise.
fn with_owner(mut journey: LoadedJourney, visitor_id: &str) -> LoadedJourney {
    journey.owner.get_or_insert_with(|| visitor_id.to_owned());
    journey
}

/// Decides `command` on a routed journey. The routing never picks a closed journey that lacks
/// the interaction, but should the journey refuse it as closed, reloading routes it again.
fn decide_routed(
    journey: &LoadedJourney,
    command: JourneyCommand,
) -> Result<Vec<JourneyEvent>, AppError> {
    match journey.state.decide(command) {
        Err(DomainError::JourneyClosed { .. }) => Err(AppError::Store(StoreError::Conflict {
            stream: journey.stream.name.clone(),
            expected: journey.stream.version(),
        })),
        decided => Ok(decided?),
    }
}
