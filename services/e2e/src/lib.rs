//! Helpers shared by the end-to-end tests: speaking to the services over HTTP the way a user
//! does (watching the bus is `alpes_testkit::Observer`'s). What a saga costs and how long it
//! takes under load is `alpes bench`'s (README, Performance).

use std::time::Duration;

use serde_json::{Value, json};

/// An HTTP client of the four services: their base URLs, the token, one connection pool.
#[derive(Debug, Clone)]
pub struct PlatformClient {
    pub tracking: String,
    pub attribution: String,
    pub commission: String,
    pub marketing: String,
    /// The bearer token of the services' protected endpoints (every scope).
    pub token: String,
    pub http: reqwest::Client,
}

impl PlatformClient {
    /// POSTs JSON, returns status and body.
    pub async fn post(&self, url: String, body: Value) -> anyhow::Result<(u16, Value)> {
        let request = self.http.post(url).bearer_auth(&self.token).json(&body);
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// GETs JSON, returns status and body.
    pub async fn get(&self, url: String) -> anyhow::Result<(u16, Value)> {
        let response = self.http.get(url).bearer_auth(&self.token).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// The saga log's view of `saga`: status code and body.
    pub async fn saga(&self, saga: &str) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .get(format!("{}/sagas/{saga}", self.marketing))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Polls the saga log until `saga` has status `wanted` (within `timeout`); returns it.
    pub async fn saga_reaching(
        &self,
        saga: &str,
        wanted: &str,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (code, body) = self.saga(saga).await?;
            if code == 200 && body["status"] == wanted {
                return Ok(body);
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "saga {saga} not {wanted} within {timeout:?}; last answer {code}: {body}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reports fraud on `saga` through `POST /fraud-reports`; returns the answer's body.
    pub async fn report_fraud(&self, saga: &str, reason: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}/fraud-reports", self.marketing))
            .bearer_auth(&self.token)
            .json(&json!({ "saga_id": saga, "reason": reason, "reporter": "e2e" }))
            .send()
            .await?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status == 202, "fraud report answered {status}: {body}");
        Ok(body)
    }

    /// Creates and activates a campaign paying `percentage_bps` of each sale (min 5.00,
    /// max 50.00) out of `budget_minor` EUR; returns its id.
    pub async fn active_campaign(
        &self,
        budget_minor: i64,
        percentage_bps: i32,
    ) -> anyhow::Result<String> {
        let (status, body) = self
            .post(
                format!("{}/campaigns", self.marketing),
                json!({
                    "name": "e2e",
                    "budget": { "amount_minor": budget_minor, "currency": "EUR" },
                    "terms": { "kind": "PERCENTAGE", "percentage_bps": percentage_bps,
                               "minimum_minor": 500, "maximum_minor": 5000 },
                }),
            )
            .await?;
        anyhow::ensure!(status == 201, "campaign creation answered {status}: {body}");
        let id = body["campaign_id"].as_str().unwrap_or_default().to_owned();
        let (status, body) = self
            .post(
                format!("{}/campaigns/{id}/activate", self.marketing),
                json!({}),
            )
            .await?;
        anyhow::ensure!(status == 200, "activation answered {status}: {body}");
        Ok(id)
    }

    /// [`PlatformClient::active_campaign`], returned once attribution and commission both know
    /// it ACTIVE (they learn of it from its events; a purchase before that would wait or be
    /// refused).
    pub async fn known_campaign(
        &self,
        budget_minor: i64,
        percentage_bps: i32,
    ) -> anyhow::Result<String> {
        let id = self.active_campaign(budget_minor, percentage_bps).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for url in [
            format!("{}/campaigns/{id}", self.attribution),
            format!("{}/budgets/{id}", self.commission),
        ] {
            loop {
                let (status, body) = self.get(url.clone()).await?;
                if status == 200 && body["status"] == "ACTIVE" {
                    break;
                }
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "campaign {id} not ACTIVE at {url} within 30 s; last answer {status}: {body}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(id)
    }

    /// A partner's click, then the same visitor's purchase of `amount_minor` EUR, through
    /// tracking's API: the saga id and the purchase's interaction id.
    pub async fn sale(
        &self,
        campaign: &str,
        amount_minor: i64,
    ) -> anyhow::Result<(String, String)> {
        let visitor = format!("visitor-{}", uuid::Uuid::new_v4().simple());
        let partner = Some("partner-1");
        self.track("CLICK", &visitor, campaign, partner, None)
            .await?;
        let purchase = self
            .track("PURCHASE", &visitor, campaign, partner, Some(amount_minor))
            .await?;
        let id = |field: &str| purchase[field].as_str().map(str::to_owned);
        match (id("saga_id"), id("interaction_id")) {
            (Some(saga), Some(interaction)) => Ok((saga, interaction)),
            _ => anyhow::bail!("a purchase answered without its ids: {purchase}"),
        }
    }

    /// What campaign `campaign`'s budget holds reserved, in minor units.
    pub async fn reserved_minor(&self, campaign: &str) -> anyhow::Result<i64> {
        let (status, budget) = self
            .get(format!("{}/budgets/{campaign}", self.commission))
            .await?;
        anyhow::ensure!(status == 200, "the budget answered {status}: {budget}");
        budget["reserved"]["amount_minor"]
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("a budget without its reserved amount: {budget}"))
    }

    /// The status of saga `saga`'s commission, `None` when commission knows none.
    pub async fn commission_status(&self, saga: &str) -> anyhow::Result<Option<String>> {
        let (status, body) = self
            .get(format!("{}/commissions/commission-{saga}", self.commission))
            .await?;
        match status {
            404 => Ok(None),
            200 => Ok(body["status"].as_str().map(str::to_owned)),
            _ => anyhow::bail!("the commission answered {status}: {body}"),
        }
    }

    /// Tracks an interaction; returns the response body (`interaction_id`, `saga_id`).
    pub async fn track(
        &self,
        kind: &str,
        visitor: &str,
        campaign: &str,
        partner: Option<&str>,
        amount_minor: Option<i64>,
    ) -> anyhow::Result<Value> {
        let mut body = json!({
            "kind": kind,
            "visitor": { "anonymous_id": visitor, "user_agent": "Mozilla/5.0" },
            "tracking": { "campaign_id": campaign, "partner_id": partner, "medium": "affiliate" },
            "target": { "url": "https://shop.example/p/1" },
        });
        if let Some(amount) = amount_minor {
            body["purchase"] = json!({
                "order_id": format!("order-{}", uuid::Uuid::new_v4().simple()),
                "amount": { "amount_minor": amount, "currency": "EUR" },
            });
        }
        let (status, body) = self
            .post(format!("{}/interactions", self.tracking), body)
            .await?;
        anyhow::ensure!(status == 202, "tracking answered {status}: {body}");
        Ok(body)
    }
}

/// The event types of a saga's steps, as the saga log serves them, in its order.
pub fn timeline(saga: &Value) -> Vec<String> {
    saga["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["event_type"].as_str().map(str::to_owned))
        .collect()
}
