//! Who may produce and consume what, on a broker with token authentication and authorization:
//! least privilege for each service's role.
//!
//! Each service connects with its own role's token (`alpes-<service>`, see
//! [`crate::PulsarToken`]); `alpes-admin`, the broker's superuser, bootstraps and grants. A
//! role may do only what it is granted here, so a service can publish only its own events and
//! read only what it subscribes to; a client without a token is refused by the broker outright.
//!
//! | role | produces | consumes, under subscription (default name) |
//! |---|---|---|
//! | `alpes-tracking` | `InteractionTracked`, `InteractionsDiscarded` | `tracking`: `AttributionReverted` |
//! | `alpes-attribution` | `ConversionAttributed`, `ConversionRejected`, `AttributionReverted` | `attribution`: `CampaignCreated`, `CampaignActivated`, `CampaignPaused`, `CampaignCompleted`, `InteractionTracked`, `CommissionReverted` |
//! | `alpes-commission` | `CommissionReserved`, `CommissionRejected`, `CommissionConfirmed`, `CommissionReverted` | `commission`: `CampaignCreated`, `CampaignActivated`, `CampaignPaused`, `CampaignCompleted`, `ConversionAttributed`, `FraudDetected`, `SagaTimedOut` |
//! | `alpes-marketing` | `CampaignCreated`, `CampaignActivated`, `CampaignPaused`, `CampaignCompleted`, `FraudDetected`, `SagaTimedOut` | `marketing-sagalog`: every saga event (`InteractionTracked`, `ConversionAttributed`, `ConversionRejected`, `CommissionReserved`, `CommissionRejected`, `CommissionConfirmed`, `FraudDetected`, `SagaTimedOut`, `CommissionReverted`, `AttributionReverted`, `InteractionsDiscarded`); `marketing-campaigns`: the four campaign events |
//!
//! Where it comes from: a service produces the events whose contract it owns
//! ([`EventType::service`]; each service's application code puts exactly those in its outbox,
//! and marketing publishes `FraudDetected` and `SagaTimedOut` directly); what it consumes is
//! what its `services/<service>/src/service.rs` subscribes to (`runtime.consume::<E>` /
//! `follow.topic::<E>` / `follow.campaigns::<E>`). A change there must change [`platform`].
//!
//! Per consumed topic `T` under subscription `S`, the role gets:
//! - `consume` on `T`;
//! - `produce` and `consume` on `T-S-retry` ([`crate::retry_topic`]), where the subscription
//!   sends the messages it retries later and reads them back;
//! - `produce` on `T-S-dlq` ([`crate::dead_letter_topic`]), where it sends what it gives up
//!   on. Dead letters are read by operators, as the admin role, not by the service.
//!
//! And subscription `S` itself is reserved to the role (a namespace-wide subscription
//! permission): another role, even one that may consume `T`, cannot attach to `S`, so it can
//! neither steal a service's messages nor acknowledge them away. The base name of each service
//! (`tracking`, `attribution`, `commission`, `marketing`) is reserved too.
//!
//! Operators' tools (`alpes publish`, the fraud simulation, dead-letter inspection) use the
//! admin role. Grants are per topic, so a topic must exist before it is granted on:
//! [`Admin::apply`] creates every topic of the plan (retry and dead-letter topics included).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use alpes_contracts::events::attribution::{
    AttributionReverted, ConversionAttributed, ConversionRejected,
};
use alpes_contracts::events::commission::{
    CommissionConfirmed, CommissionRejected, CommissionReserved, CommissionReverted,
};
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused, FraudDetected,
    SagaTimedOut,
};
use alpes_contracts::events::tracking::{InteractionTracked, InteractionsDiscarded};
use alpes_contracts::{Event, EventType, Namespace, events};
use reqwest::Method;
use serde_json::json;

use crate::admin::Admin;
use crate::{BusError, dead_letter_topic, retry_topic};

/// The broker's superuser: bootstraps tenants and namespaces, grants permissions, and is what
/// operators' tools connect as.
pub const ADMIN_ROLE: &str = "alpes-admin";

/// The role a service's token names: `alpes-<service>`.
pub fn role_of(service: &str) -> String {
    format!("alpes-{service}")
}

/// What a role may do on a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Produce,
    Consume,
}

impl Action {
    /// As Pulsar's admin API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Produce => "produce",
            Action::Consume => "consume",
        }
    }
}

/// One subscription of a service: its name and the event types it reads under it.
#[derive(Debug, Clone)]
pub struct Consumes {
    pub subscription: String,
    pub events: Vec<&'static EventType>,
}

/// What one service does on the broker.
#[derive(Debug, Clone)]
pub struct ServiceAccess {
    /// e.g. `commission`.
    pub service: &'static str,
    /// The role its token names, e.g. `alpes-commission`.
    pub role: String,
    /// The event types it publishes.
    pub produces: Vec<&'static EventType>,
    /// Its subscriptions.
    pub consumes: Vec<Consumes>,
    /// Further subscription names reserved to it, on no topic in particular (its base name).
    pub reserves: Vec<String>,
}

impl ServiceAccess {
    /// Every event type the service produces or consumes, once each: what it checks is
    /// registered at start-up ([`Admin::check_schemas`]).
    pub fn event_types(&self) -> Vec<&'static EventType> {
        let mut types: Vec<&'static EventType> = Vec::new();
        let consumed = self.consumes.iter().flat_map(|c| c.events.iter());
        for ty in self.produces.iter().chain(consumed) {
            if !types.iter().any(|t| std::ptr::eq(*t, *ty)) {
                types.push(ty);
            }
        }
        types
    }
}

/// The base subscription names of the services (`--subscription`,
/// `ALPES_<SERVICE>_SUBSCRIPTION`): by default, the service's name. Marketing's subscriptions
/// are `<base>-sagalog` and `<base>-campaigns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionNames {
    pub tracking: String,
    pub attribution: String,
    pub commission: String,
    pub marketing: String,
}

impl Default for SubscriptionNames {
    fn default() -> Self {
        Self {
            tracking: "tracking".to_owned(),
            attribution: "attribution".to_owned(),
            commission: "commission".to_owned(),
            marketing: "marketing".to_owned(),
        }
    }
}

/// The four services of the platform: the table of the module's documentation.
pub fn platform(names: &SubscriptionNames) -> Vec<ServiceAccess> {
    let campaigns = || {
        vec![
            CampaignCreated::event_type(),
            CampaignActivated::event_type(),
            CampaignPaused::event_type(),
            CampaignCompleted::event_type(),
        ]
    };
    let service = |service: &'static str, consumes: Vec<Consumes>, base: &str| ServiceAccess {
        service,
        role: role_of(service),
        produces: owned_by(service),
        consumes,
        reserves: vec![base.to_owned()],
    };
    let tracking = service(
        "tracking",
        vec![Consumes {
            subscription: names.tracking.clone(),
            events: vec![AttributionReverted::event_type()],
        }],
        &names.tracking,
    );
    let attribution = service(
        "attribution",
        vec![Consumes {
            subscription: names.attribution.clone(),
            events: [
                campaigns(),
                vec![
                    InteractionTracked::event_type(),
                    CommissionReverted::event_type(),
                ],
            ]
            .concat(),
        }],
        &names.attribution,
    );
    let commission = service(
        "commission",
        vec![Consumes {
            subscription: names.commission.clone(),
            events: [
                campaigns(),
                vec![
                    ConversionAttributed::event_type(),
                    FraudDetected::event_type(),
                    SagaTimedOut::event_type(),
                ],
            ]
            .concat(),
        }],
        &names.commission,
    );
    let marketing = service(
        "marketing",
        vec![
            Consumes {
                subscription: format!("{}-sagalog", names.marketing),
                events: vec![
                    InteractionTracked::event_type(),
                    ConversionAttributed::event_type(),
                    ConversionRejected::event_type(),
                    CommissionReserved::event_type(),
                    CommissionRejected::event_type(),
                    CommissionConfirmed::event_type(),
                    FraudDetected::event_type(),
                    SagaTimedOut::event_type(),
                    CommissionReverted::event_type(),
                    AttributionReverted::event_type(),
                    InteractionsDiscarded::event_type(),
                ],
            },
            Consumes {
                subscription: format!("{}-campaigns", names.marketing),
                events: campaigns(),
            },
        ],
        &names.marketing,
    );
    vec![tracking, attribution, commission, marketing]
}

/// The event types whose contract `service` owns: the ones it publishes.
fn owned_by(service: &str) -> Vec<&'static EventType> {
    events::all()
        .into_iter()
        .filter(|ty| ty.service == service)
        .collect()
}

/// One permission, as the broker stores it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grant {
    /// `role` may do exactly `actions` on `topic` (full name, `persistent://tenant/ns/name`).
    Topic {
        topic: String,
        role: String,
        actions: BTreeSet<Action>,
    },
    /// Only `roles` may attach to subscription `subscription`, on any topic of `namespace`.
    Subscription {
        namespace: String,
        subscription: String,
        roles: BTreeSet<String>,
    },
}

/// The grants that let `services` do what they do in `namespace`, and nothing else: one per
/// topic and role (with every action the role needs there), and one per subscription name.
pub fn plan(namespace: &Namespace, services: &[ServiceAccess]) -> Vec<Grant> {
    let mut topics: BTreeMap<(String, String), BTreeSet<Action>> = BTreeMap::new();
    let mut subscriptions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut allow = |topic: String, role: &str, actions: &[Action]| {
        topics
            .entry((topic, role.to_owned()))
            .or_default()
            .extend(actions.iter().copied());
    };
    for service in services {
        let role = service.role.as_str();
        for ty in &service.produces {
            allow(namespace.topic(&ty.topic_name()), role, &[Action::Produce]);
        }
        for consumes in &service.consumes {
            let subscription = consumes.subscription.as_str();
            subscriptions
                .entry(subscription.to_owned())
                .or_default()
                .insert(role.to_owned());
            for ty in &consumes.events {
                let topic = namespace.topic(&ty.topic_name());
                allow(
                    retry_topic(&topic, subscription),
                    role,
                    &[Action::Produce, Action::Consume],
                );
                allow(
                    dead_letter_topic(&topic, subscription),
                    role,
                    &[Action::Produce],
                );
                allow(topic, role, &[Action::Consume]);
            }
        }
        for reserved in &service.reserves {
            subscriptions
                .entry(reserved.clone())
                .or_default()
                .insert(role.to_owned());
        }
    }
    let topic_grants = topics
        .into_iter()
        .map(|((topic, role), actions)| Grant::Topic {
            topic,
            role,
            actions,
        });
    let subscription_grants =
        subscriptions
            .into_iter()
            .map(|(subscription, roles)| Grant::Subscription {
                namespace: namespace.to_string(),
                subscription,
                roles,
            });
    topic_grants.chain(subscription_grants).collect()
}

/// The platform's plan with the default subscription names: what `alpes bootstrap` grants.
pub fn default_plan(namespace: &Namespace) -> Vec<Grant> {
    plan(namespace, &platform(&SubscriptionNames::default()))
}

/// What [`Admin::apply`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Grants written.
    pub granted: usize,
    /// Grants the broker held already.
    pub unchanged: usize,
}

/// The permissions a namespace holds (its policies' `auth_policies`).
#[derive(Debug, Default)]
struct Held {
    /// topic → role → actions.
    topics: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// subscription → roles.
    subscriptions: BTreeMap<String, BTreeSet<String>>,
}

impl Admin {
    /// Grants `grants` (see [`plan`]); needs the superuser's token. Creates every topic a
    /// grant names (the broker grants only on existing topics), and writes only the grants the
    /// broker does not hold already, so running it again is cheap. It grants and never
    /// revokes: a role keeps what it was granted elsewhere ([`Admin::revoke`] removes it).
    pub async fn apply(&self, grants: &[Grant]) -> Result<Applied, BusError> {
        let mut held: BTreeMap<String, Held> = BTreeMap::new();
        let mut applied = Applied::default();
        for grant in grants {
            let namespace = match grant {
                Grant::Topic { topic, .. } => topic_namespace(topic)?,
                Grant::Subscription { namespace, .. } => namespace.clone(),
            };
            if !held.contains_key(&namespace) {
                let permissions = self.held(&namespace).await?;
                held.insert(namespace.clone(), permissions);
            }
            let held = &held[&namespace];
            match grant {
                Grant::Topic {
                    topic,
                    role,
                    actions,
                } => {
                    let path = topic_path(topic)?;
                    // Creating is cheap when the topic exists (a 409), and a topic a grant
                    // names must exist even when the grant does (it may have been deleted).
                    self.create(&path, None).await?;
                    let wanted: BTreeSet<String> =
                        actions.iter().map(|a| a.as_str().to_owned()).collect();
                    if held.topics.get(topic).and_then(|roles| roles.get(role)) == Some(&wanted) {
                        applied.unchanged += 1;
                        continue;
                    }
                    let body = json!(wanted.iter().collect::<Vec<_>>());
                    self.write(
                        Method::POST,
                        &format!("{path}/permissions/{role}"),
                        Some(body),
                    )
                    .await?;
                }
                Grant::Subscription {
                    namespace,
                    subscription,
                    roles,
                } => {
                    if held.subscriptions.get(subscription) == Some(roles) {
                        applied.unchanged += 1;
                        continue;
                    }
                    let body = json!(roles.iter().collect::<Vec<_>>());
                    self.write(
                        Method::POST,
                        &format!(
                            "/admin/v2/namespaces/{namespace}/permissions/subscription/{subscription}"
                        ),
                        Some(body),
                    )
                    .await?;
                }
            }
            applied.granted += 1;
        }
        Ok(applied)
    }

    /// Takes every permission of `role` on `topic` (full name) away.
    pub async fn revoke(&self, topic: &str, role: &str) -> Result<(), BusError> {
        let path = topic_path(topic)?;
        self.write(Method::DELETE, &format!("{path}/permissions/{role}"), None)
            .await
    }

    /// The roles granted on `topic` (full name) and their actions, as the broker holds them.
    pub async fn topic_permissions(
        &self,
        topic: &str,
    ) -> Result<BTreeMap<String, BTreeSet<String>>, BusError> {
        let path = format!("{}/permissions", topic_path(topic)?);
        self.get_json(&path).await
    }

    /// What `namespace` holds already: its policies' `auth_policies`.
    async fn held(&self, namespace: &str) -> Result<Held, BusError> {
        let path = format!("/admin/v2/namespaces/{namespace}");
        let policies: serde_json::Value = self.get_json(&path).await?;
        let auth = &policies["auth_policies"];
        let strings = |value: &serde_json::Value| -> BTreeSet<String> {
            value
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| item.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut held = Held::default();
        if let Some(topics) = auth["destination_auth"].as_object() {
            for (topic, roles) in topics {
                let roles = roles
                    .as_object()
                    .map(|roles| {
                        roles
                            .iter()
                            .map(|(role, actions)| (role.clone(), strings(actions)))
                            .collect()
                    })
                    .unwrap_or_default();
                held.topics.insert(topic.clone(), roles);
            }
        }
        if let Some(subscriptions) = auth["subscription_auth_roles"].as_object() {
            for (subscription, roles) in subscriptions {
                held.subscriptions
                    .insert(subscription.clone(), strings(roles));
            }
        }
        Ok(held)
    }

    /// A change of the namespace's policies: the broker answers a concurrent change of the
    /// same policies (another bootstrap) with a conflict; the write is simply made again.
    async fn write(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(), BusError> {
        let mut attempt = 1;
        loop {
            match self.call(method.clone(), path, body.clone()).await {
                Ok(_) => return Ok(()),
                Err(BusError::Admin { detail, .. })
                    if attempt < 5
                        && ["409", "412", "500"].iter().any(|c| detail.starts_with(c)) =>
                {
                    tracing::warn!(%path, %detail, attempt, "permission change conflicted, trying again");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// `persistent://tenant/ns/name` → `tenant/ns`.
fn topic_namespace(topic: &str) -> Result<String, BusError> {
    let rest = persistent(topic)?;
    let mut parts = rest.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(tenant), Some(ns), Some(_)) => Ok(format!("{tenant}/{ns}")),
        _ => Err(not_a_topic(topic)),
    }
}

/// `persistent://tenant/ns/name` → `/admin/v2/persistent/tenant/ns/name`.
fn topic_path(topic: &str) -> Result<String, BusError> {
    topic_namespace(topic)?;
    Ok(format!("/admin/v2/persistent/{}", persistent(topic)?))
}

fn persistent(topic: &str) -> Result<&str, BusError> {
    topic
        .strip_prefix("persistent://")
        .ok_or_else(|| not_a_topic(topic))
}

fn not_a_topic(topic: &str) -> BusError {
    BusError::Admin {
        method: "HTTP",
        url: topic.to_owned(),
        detail: "not a full persistent topic name (persistent://tenant/namespace/topic)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> Namespace {
        Namespace::parse("alpes/events").unwrap()
    }

    /// The actions `role` holds on topic `short` of `alpes/events` in `grants`.
    fn actions(grants: &[Grant], short: &str, role: &str) -> Vec<&'static str> {
        let full = ns().topic(short);
        grants
            .iter()
            .find_map(|g| match g {
                Grant::Topic {
                    topic,
                    role: r,
                    actions,
                } if *topic == full && r == role => {
                    Some(actions.iter().map(|a| a.as_str()).collect())
                }
                _ => None,
            })
            .unwrap_or_default()
    }

    fn subscribers(grants: &[Grant], name: &str) -> Vec<String> {
        grants
            .iter()
            .find_map(|g| match g {
                Grant::Subscription {
                    subscription,
                    roles,
                    ..
                } if subscription == name => Some(roles.iter().cloned().collect()),
                _ => None,
            })
            .unwrap_or_default()
    }

    #[test]
    fn every_event_has_one_producer_and_every_consumed_event_a_producer() {
        let services = platform(&SubscriptionNames::default());
        for ty in events::all() {
            let producers: Vec<_> = services
                .iter()
                .filter(|s| s.produces.iter().any(|p| p.name == ty.name))
                .map(|s| s.service)
                .collect();
            assert_eq!(producers, [ty.service], "{}", ty.name);
        }
    }

    #[test]
    fn a_service_produces_its_own_events_only() {
        let grants = default_plan(&ns());
        assert_eq!(
            actions(&grants, "interaction-tracked-v1", "alpes-tracking"),
            ["produce"]
        );
        assert_eq!(
            actions(&grants, "commission-reserved-v1", "alpes-commission"),
            ["produce"]
        );
        assert!(actions(&grants, "commission-reserved-v1", "alpes-tracking").is_empty());
        assert!(actions(&grants, "fraud-detected-v1", "alpes-tracking").is_empty());
        assert_eq!(
            actions(&grants, "fraud-detected-v1", "alpes-commission"),
            ["consume"]
        );
        // Marketing announces campaigns and reads them back for its list.
        assert_eq!(
            actions(&grants, "campaign-created-v1", "alpes-marketing"),
            ["produce", "consume"]
        );
        // Nobody but the admin role produces to a topic whose contract it does not own.
        for grant in &grants {
            if let Grant::Topic {
                topic,
                role,
                actions,
            } = grant
                && actions.contains(&Action::Produce)
                && let Some(ty) = events::all()
                    .into_iter()
                    .find(|ty| ns().topic(&ty.topic_name()) == *topic)
            {
                assert_eq!(*role, role_of(ty.service), "{topic}");
            }
        }
    }

    #[test]
    fn retries_and_dead_letters_belong_to_the_subscription() {
        let grants = default_plan(&ns());
        assert_eq!(
            actions(
                &grants,
                "fraud-detected-v1-commission-retry",
                "alpes-commission"
            ),
            ["produce", "consume"]
        );
        assert_eq!(
            actions(
                &grants,
                "fraud-detected-v1-commission-dlq",
                "alpes-commission"
            ),
            ["produce"]
        );
        assert_eq!(
            actions(
                &grants,
                "interaction-tracked-v1-marketing-sagalog-retry",
                "alpes-marketing"
            ),
            ["produce", "consume"]
        );
        assert!(
            actions(
                &grants,
                "fraud-detected-v1-commission-retry",
                "alpes-marketing"
            )
            .is_empty()
        );
        assert_eq!(subscribers(&grants, "commission"), ["alpes-commission"]);
        assert_eq!(subscribers(&grants, "attribution"), ["alpes-attribution"]);
        assert_eq!(
            subscribers(&grants, "marketing-sagalog"),
            ["alpes-marketing"]
        );
        assert_eq!(subscribers(&grants, "marketing"), ["alpes-marketing"]);
    }

    #[test]
    fn one_grant_per_topic_and_role() {
        let grants = default_plan(&ns());
        let mut seen = BTreeSet::new();
        for grant in &grants {
            if let Grant::Topic { topic, role, .. } = grant {
                assert!(seen.insert((topic, role)), "{topic} {role} twice");
            }
        }
    }

    #[test]
    fn topics_name_their_namespace_and_admin_path() {
        assert_eq!(
            topic_namespace("persistent://alpes/events/x-v1").unwrap(),
            "alpes/events"
        );
        assert_eq!(
            topic_path("persistent://alpes/events/x-v1").unwrap(),
            "/admin/v2/persistent/alpes/events/x-v1"
        );
        assert!(topic_path("alpes/events/x").is_err());
        assert!(topic_path("persistent://alpes/x").is_err());
    }
}
