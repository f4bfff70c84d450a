//! The commission use cases: load a stream, decide with the domain, append the facts together
//! with the integration events to publish (one document, see the event store).
//!
//! Two kinds of streams, one per aggregate:
//!
//! - `budget-{campaign_id}`: a campaign's [`CampaignBudget`]. Every reservation of the campaign
//!   appends here at the version it decided on, so concurrent reservations conflict, reload and
//!   decide again ([`retry_on_conflict`]): the budget is never overspent.
//! - `commission-{saga_id}`, which is also the commission's id: a saga's [`Commission`].
//!
//! And, for the list of commissions only, `registry-*`: the campaigns, and the commissions no
//! budget names (see `registry`), each written before the write it is about.
//!
//! The two cannot be written atomically, so a message that touches both writes them in the order
//! `crate::domain` documents, each step idempotent: a redelivery after a crash finds the steps
//! already done deciding nothing and resumes at the first that is not. Every commit records the
//! id of the message it handles; a single-stream step also skips a message it already handled
//! (`Stream::has_handled`). An integration event is only ever written in the commit of the fact
//! it announces, so it is published once however often the message arrives.

mod campaign;
mod compensation;
mod confirmation;
mod listing;
mod query;
mod registry;
mod reservation;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use alpes_bus::Outgoing;
use alpes_contracts::{Event, EventMetadata};
use alpes_eventstore::{
    EventStore, NewCommit, States, StoreError, StoredEvent, Stream, StreamLocks, retry_on_conflict,
};

use crate::domain::{Aggregate, BudgetEvent, CampaignBudget, Commission, DomainError, DomainEvent};

/// Whether the message may still be retried: on its last attempt, a campaign not known here
/// is unknown for good.
pub use alpes_bus::Attempt;
pub use compensation::Compensated;
pub use query::{BudgetView, CommissionFilter, CommissionPage, CommissionView, Rejection};

/// Conflicting writers reload and decide again this many times before the message is retried.
const ATTEMPTS: u32 = 10;

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input breaks a rule of the domain.
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// The store is unavailable, corrupt, or writers kept colliding.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event that must belong to a saga carries no saga id.
    #[error("{0} carries no saga id")]
    NoSaga(&'static str),
    /// A sale of a campaign whose creation has not arrived here (yet).
    #[error("campaign {0} is unknown here: its CampaignCreated has not arrived")]
    CampaignUnknown(String),
    /// No commission has this id.
    #[error("no commission {0}")]
    UnknownCommission(String),
}

/// The commission service's use cases over an event store.
#[derive(Clone)]
pub struct Commissions<S> {
    store: S,
    /// Handlers of different sagas run at once, and every reservation writes its campaign's
    /// budget: they take turns on it here instead of colliding in the store.
    writers: StreamLocks,
    /// Budgets grow by a commit per sale: each load folds only what it has not folded yet.
    budgets: States,
    /// The listing's registry streams, folded likewise.
    registries: States,
    /// Set once this process knows the registry holds what earlier versions wrote.
    swept: Arc<tokio::sync::OnceCell<()>>,
}

/// The stream of the budget of campaign `campaign_id`.
fn budget_stream(campaign_id: &str) -> String {
    format!("budget-{campaign_id}")
}

/// The stream of the commission of saga `saga_id`: named by the commission's id.
fn commission_stream(saga_id: &str) -> String {
    Commission::id_for(saga_id)
}

/// The saga an event of type `what` belongs to.
fn saga_of<'a>(metadata: &'a EventMetadata, what: &'static str) -> Result<&'a str, AppError> {
    metadata
        .saga_id
        .as_deref()
        .filter(|saga_id| !saga_id.is_empty())
        .ok_or(AppError::NoSaga(what))
}

impl<S: EventStore> Commissions<S> {
    /// The use cases over `store`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            writers: StreamLocks::default(),
            budgets: States::default(),
            registries: States::default(),
            swept: Arc::default(),
        }
    }

    /// Runs one load-decide-append step on `stream` until it does not conflict, as this
    /// process's only writer of the stream meanwhile; a business or input error travels inside,
    /// so that only conflicts are retried.
    async fn step<T, F, Fut>(&self, stream: &str, attempt: F) -> Result<T, AppError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Result<T, AppError>, StoreError>>,
    {
        let _writing = self.writers.lock(stream).await;
        retry_on_conflict(ATTEMPTS, attempt).await?
    }

    /// `stream` and the aggregate its events fold into.
    async fn load<A>(&self, stream: &str) -> Result<(Stream, A), StoreError>
    where
        A: Aggregate,
        A::Event: DomainEvent,
    {
        Self::folded(self.store.load(stream).await?)
    }

    /// [`Commissions::load`] for a stream that is nearly always new when first touched: one this
    /// process knows nothing of is taken as new, without the read that would find nothing
    /// (`EventStore::load_known`). Only where deciding on the new, empty aggregate appends to
    /// it (or changes nothing anywhere): that append conflicts if the stream exists after all,
    /// and the retry reads it.
    async fn load_new<A>(&self, stream: &str) -> Result<(Stream, A), StoreError>
    where
        A: Aggregate,
        A::Event: DomainEvent,
    {
        let known = self.store.load_known(stream).await?;
        Self::folded(known.unwrap_or_else(|| Stream::empty(stream)))
    }

    fn folded<A>(stream: Stream) -> Result<(Stream, A), StoreError>
    where
        A: Aggregate,
        A::Event: DomainEvent,
    {
        let state = A::from_events(&stream.read::<A::Event>()?);
        Ok((stream, state))
    }

    /// The budget stream `stream` and the budget it folds into.
    async fn load_budget(&self, stream: &str) -> Result<(Stream, Arc<CampaignBudget>), StoreError> {
        let stream = self.store.load(stream).await?;
        let budget = self
            .budgets
            .fold(&stream, |budget: &mut CampaignBudget, event| {
                let event: BudgetEvent = event
                    .read()
                    .map_err(|e| StoreError::Corrupt(format!("{}: {e}", stream.name)))?;
                budget.apply(&event);
                Ok::<_, StoreError>(())
            })?;
        Ok((stream, budget))
    }

    /// Appends `events`, decided on `stream` as loaded, with `outbox` and the message handled.
    async fn append<E: DomainEvent>(
        &self,
        stream: Stream,
        events: &[E],
        outbox: Vec<Outgoing>,
        handled: Option<&str>,
    ) -> Result<(), StoreError> {
        let commit = new_commit(&stream.name, stream.version(), events, outbox, handled)?;
        self.store.append(commit).await.map(drop)
    }
}

/// The commit of `events` to `stream` at `expected_version`, with `outbox` and the message
/// handled.
fn new_commit<E: DomainEvent>(
    stream: &str,
    expected_version: u64,
    events: &[E],
    outbox: Vec<Outgoing>,
    handled: Option<&str>,
) -> Result<NewCommit, StoreError> {
    let events = StoredEvent::all(events)?;
    Ok(NewCommit {
        stream: stream.to_owned(),
        expected_version,
        events,
        outbox,
        handled: handled.map(str::to_owned),
    })
}

/// `state` after `events`.
fn applied<A: Aggregate>(mut state: A, events: &[A::Event]) -> A {
    for event in events {
        state.apply(event);
    }
    state
}

/// `event` encoded for the outbox.
fn outgoing<E: Event>(event: &E) -> Result<Outgoing, StoreError> {
    Outgoing::event(event)
        .map_err(|e| StoreError::Corrupt(format!("encoding {}: {e}", E::event_type().name)))
}
