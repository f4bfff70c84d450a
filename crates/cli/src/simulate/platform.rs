//! The platform as a simulation (or `alpes bench`) drives it: the flags saying where the
//! services are, the HTTP calls to marketing, tracking, attribution and commission, and the
//! request bodies a visitor's script turns into.

use std::time::Duration;

use alpes_contracts::Money;
use clap::Args;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::plan::VisitorPlan;
use crate::api::{Api, RETRY_FOR, RequestError};
use crate::saga::model::Saga;

/// The four services' APIs.
pub struct PlatformApi {
    pub marketing: Api,
    pub tracking: Api,
    pub attribution: Api,
    pub commission: Api,
}

/// Where the four services are, and the API token marketing asks for: the flags of every
/// command that drives the platform over HTTP. Each URL may list several replicas, comma
/// separated (what `scripts/services.sh env` prints): requests take turns among them.
#[derive(Args, Debug, Clone)]
pub struct ServiceArgs {
    /// The marketing service (campaigns, saga log, fraud reports).
    #[arg(
        long,
        env = "ALPES_MARKETING_URL",
        default_value = "http://127.0.0.1:8084"
    )]
    pub marketing_url: String,
    /// The tracking service (interactions).
    #[arg(
        long,
        env = "ALPES_TRACKING_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub tracking_url: String,
    /// The attribution service (is the campaign known?).
    #[arg(
        long,
        env = "ALPES_ATTRIBUTION_URL",
        default_value = "http://127.0.0.1:8082"
    )]
    pub attribution_url: String,
    /// The commission service (is the budget open?).
    #[arg(
        long,
        env = "ALPES_COMMISSION_URL",
        default_value = "http://127.0.0.1:8083"
    )]
    pub commission_url: String,
    /// API token for marketing's saga log and fraud reports.
    #[arg(long, env = "ALPES_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl ServiceArgs {
    /// Clients of the four services at these URLs. They drive load, so they ride out a
    /// service restarting or shedding load for up to [`RETRY_FOR`] per request.
    pub fn platform(&self) -> anyhow::Result<PlatformApi> {
        let api = |service, url: &str| {
            Api::new(service, url, self.token.clone()).map(|api| api.riding_out_restarts(RETRY_FOR))
        };
        Ok(PlatformApi {
            marketing: api("marketing", &self.marketing_url)?,
            tracking: api("tracking", &self.tracking_url)?,
            attribution: api("attribution", &self.attribution_url)?,
            commission: api("commission", &self.commission_url)?,
        })
    }
}

/// Commission terms of the campaigns a simulation creates: 10 %, at least 5.00, at most 50.00.
pub const TERMS: (i32, i64, i64) = (1_000, 500, 5_000);

/// A budget that covers every sale of `visitors` visitors: each earns at most the terms' maximum.
pub fn ample_budget(visitors: u32) -> i64 {
    (i64::from(visitors) + 1) * TERMS.2
}

#[derive(Deserialize)]
struct Created {
    campaign_id: String,
}

#[derive(Deserialize)]
struct Tracked {
    saga_id: Option<String>,
}

#[derive(Deserialize)]
struct KnownCampaign {
    status: String,
}

impl PlatformApi {
    /// Before a run changes anything: every service answers `GET /readyz` and marketing's saga
    /// log takes the token, so that a platform not up (or a wrong token) is one clear error,
    /// not a run of failed requests.
    pub async fn ensure_ready(&self) -> anyhow::Result<()> {
        for api in [
            &self.marketing,
            &self.tracking,
            &self.attribution,
            &self.commission,
        ] {
            let _: Json = api.get(api.url(&["readyz"], &[])).await?;
        }
        let _: Json = self
            .marketing
            .get(self.marketing.url(&["sagas", "stats"], &[]))
            .await?;
        Ok(())
    }

    /// Creates a campaign (`POST /campaigns`) and activates it; its id.
    pub async fn open_campaign(&self, name: &str, budget: &Money) -> Result<String, RequestError> {
        let (percentage_bps, minimum_minor, maximum_minor) = TERMS;
        let body = json!({
            "name": name,
            "budget": budget,
            "terms": {"kind": "PERCENTAGE", "percentage_bps": percentage_bps,
                      "minimum_minor": minimum_minor, "maximum_minor": maximum_minor},
        });
        let created: Created = self
            .marketing
            .post(self.marketing.url(&["campaigns"], &[]), &body)
            .await?;
        let _: Json = self
            .marketing
            .post(
                self.marketing
                    .url(&["campaigns", &created.campaign_id, "activate"], &[]),
                &json!({"reason": "alpes simulate"}),
            )
            .await?;
        Ok(created.campaign_id)
    }

    /// Waits until attribution and commission both know `campaign` as ACTIVE: a purchase before
    /// that would be rejected for an unknown or inactive campaign.
    pub async fn wait_until_active(&self, campaign: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let checks = [
            (&self.attribution, ["campaigns", campaign]),
            (&self.commission, ["budgets", campaign]),
        ];
        for (api, segments) in checks {
            loop {
                let last = match api.get::<KnownCampaign>(api.url(&segments, &[])).await {
                    Ok(known) if known.status == "ACTIVE" => break,
                    Ok(known) => format!("it is {}", known.status),
                    Err(e) if e.status() == Some(404) => "it does not know it yet".to_owned(),
                    Err(e) => return Err(e.into()),
                };
                if tokio::time::Instant::now() >= deadline {
                    anyhow::bail!(
                        "campaign {campaign} is not ACTIVE at {} ({}) after {:?}: is it activated, \
                         and does {} consume the campaign events?",
                        api.url(&segments, &[]),
                        last,
                        timeout,
                        api.base()
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    /// `POST /interactions`; the saga a purchase started. A visitor's interactions go to one
    /// tracking replica (affinity by visitor, as a load balancer would keep a browser's
    /// session): each replica publishes its own, so two replicas could hand a visitor's click
    /// and purchase to attribution out of order. `key` names the interaction
    /// (`Idempotency-Key`), so a request whose answer was lost is sent again safely.
    pub async fn track(
        &self,
        key: &str,
        interaction: &Json,
    ) -> Result<Option<String>, RequestError> {
        let visitor = interaction["visitor"]["anonymous_id"]
            .as_str()
            .unwrap_or_default();
        let tracked: Tracked = self
            .tracking
            .post_with_affinity(
                visitor,
                Some(key),
                self.tracking.url(&["interactions"], &[]),
                interaction,
            )
            .await?;
        Ok(tracked.saga_id)
    }

    /// `POST /fraud-reports`: marketing publishes `FraudDetected` for the saga.
    pub async fn report_fraud(&self, saga_id: &str, reason: &str) -> Result<(), RequestError> {
        let body = json!({"saga_id": saga_id, "reason": reason, "reporter": super::REPORTER});
        let _: Json = self
            .marketing
            .post_idempotent(self.marketing.url(&["fraud-reports"], &[]), &body)
            .await?;
        Ok(())
    }

    /// `GET /sagas/{id}`; `None` while the saga log has not heard of it.
    pub async fn saga(&self, saga_id: &str) -> Result<Option<Saga>, RequestError> {
        match self
            .marketing
            .get(self.marketing.url(&["sagas", saga_id], &[]))
            .await
        {
            Ok(saga) => Ok(Some(saga)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// What a visitor does on a page, in the request body tracking takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    View,
    Click,
    Purchase,
}

/// The `POST /interactions` body of `step` in `visitor`'s script. Every step carries the
/// partner's tracking parameters and a browser's user agent, so that attribution credits the
/// partner and sees no bot.
pub fn interaction(
    step: Step,
    run: &str,
    visitor: &VisitorPlan,
    campaign: &str,
    currency: &str,
) -> Json {
    let (kind, url) = match step {
        Step::View => ("VIEW", "https://shop.example/landing"),
        Step::Click => ("CLICK", "https://shop.example/p/42"),
        Step::Purchase => ("PURCHASE", "https://shop.example/checkout"),
    };
    let mut body = json!({
        "kind": kind,
        "visitor": {
            "anonymous_id": format!("sim-{run}-{}", visitor.index),
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        },
        "tracking": {
            "source": format!("{}.example", visitor.partner),
            "medium": "affiliate",
            "campaign_id": campaign,
            "partner_id": visitor.partner,
        },
        "target": {"url": url},
        "context": {"device": if visitor.index.is_multiple_of(3) { "mobile" } else { "desktop" }},
    });
    if let (Step::Purchase, Some(purchase)) = (step, visitor.purchase) {
        body["purchase"] = json!({
            "order_id": format!("sim-{run}-order-{}", visitor.index),
            "amount": {"amount_minor": purchase.amount_minor, "currency": currency},
        });
    }
    body
}

#[cfg(test)]
mod tests {
    use super::super::plan::PlannedPurchase;
    use super::*;

    #[test]
    fn a_purchase_carries_the_partners_parameters_and_the_order() {
        let visitor = VisitorPlan {
            index: 4,
            partner: "partner-2".into(),
            purchase: Some(PlannedPurchase {
                amount_minor: 12_345,
                fraud: true,
            }),
        };
        let body = interaction(Step::Purchase, "r1", &visitor, "c-1", "EUR");
        assert_eq!(body["kind"], "PURCHASE");
        assert_eq!(body["visitor"]["anonymous_id"], "sim-r1-4");
        assert_eq!(body["tracking"]["campaign_id"], "c-1");
        assert_eq!(body["tracking"]["partner_id"], "partner-2");
        assert_eq!(body["purchase"]["order_id"], "sim-r1-order-4");
        assert_eq!(body["purchase"]["amount"]["amount_minor"], 12_345);
        let click = interaction(Step::Click, "r1", &visitor, "c-1", "EUR");
        assert_eq!(click["kind"], "CLICK");
        assert!(click.get("purchase").is_none());
        assert_eq!(click["visitor"], body["visitor"], "one visitor throughout");
    }

    #[test]
    fn the_ample_budget_covers_the_largest_commission_of_every_visitor() {
        assert!(ample_budget(100) >= 100 * TERMS.2);
    }
}
