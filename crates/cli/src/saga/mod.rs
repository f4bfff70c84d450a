//! `alpes saga show | list | stats`: the marketing service's saga log, for people (tables) and
//! scripts (`--json`, the server's JSON as it came).

pub mod model;
pub(crate) mod render;

use std::process::ExitCode;

use alpes_contracts::Timestamp;
use chrono::{SecondsFormat, Utc};
use clap::{Args, Subcommand};
use serde_json::{Value as Json, json};

use crate::api::Api;
use crate::when;
use model::{Saga, SagaPage, Stats};

/// Where the saga log is served, and the token it asks for.
#[derive(Args, Debug, Clone)]
pub struct MarketingArgs {
    /// The marketing service's base URL.
    #[arg(
        long,
        env = "ALPES_MARKETING_URL",
        default_value = "http://127.0.0.1:8084",
        global = true,
        help_heading = "Saga log"
    )]
    pub marketing_url: String,
    /// API token for the saga log (sent as `Authorization: Bearer`).
    #[arg(
        long,
        env = "ALPES_API_TOKEN",
        hide_env_values = true,
        global = true,
        help_heading = "Saga log"
    )]
    pub token: Option<String>,
}

impl MarketingArgs {
    pub fn api(&self) -> anyhow::Result<Api> {
        Api::new("marketing", &self.marketing_url, self.token.clone())
    }
}

/// `alpes saga` flags.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  alpes saga show 0195a3c1-5e2f-7a10-8c1d-3b4e5f607182
  alpes saga list --status COMPENSATED,REJECTED --campaign c-spring --since 2h
  alpes saga list --all --json | jq -r '.sagas[].saga_id'
  alpes saga stats --campaign c-spring")]
pub struct SagaArgs {
    #[command(subcommand)]
    pub command: SagaCommand,
    #[command(flatten)]
    pub marketing: MarketingArgs,
    /// Print the server's JSON instead of tables.
    #[arg(long, global = true, help_heading = "Saga log")]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum SagaCommand {
    /// One saga: status, campaign, amount, times, and its timeline step by step.
    #[command(after_help = "Example:\n  alpes saga show 0195a3c1-5e2f-7a10-8c1d-3b4e5f607182")]
    Show {
        /// The saga id (the `saga_id` a purchase answered with).
        id: String,
    },
    /// Sagas newest first, filtered by status, campaign, partner and time.
    #[command(after_help = "Examples:
  alpes saga list --status STARTED --status ATTRIBUTED --until 10m   (stuck for 10 minutes)
  alpes saga list --campaign c-spring --since 2025-03-01 --all")]
    List(ListArgs),
    /// Counts by status and durations (p50/p95/p99), overall and per campaign.
    #[command(after_help = "Example:\n  alpes saga stats --campaign c-spring")]
    Stats {
        /// Only this campaign's sagas.
        #[arg(long)]
        campaign: Option<String>,
    },
}

/// `alpes saga list` filters.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only sagas in these statuses (repeat the flag or separate with commas).
    #[arg(long, value_delimiter = ',', value_parser = model::parse_status)]
    pub status: Vec<String>,
    /// Only this campaign's sagas.
    #[arg(long)]
    pub campaign: Option<String>,
    /// Only this partner's sagas.
    #[arg(long)]
    pub partner: Option<String>,
    /// Only sagas started at or after this instant: RFC 3339, a date, or a duration ago (2h).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only sagas started before this instant: RFC 3339, a date, or a duration ago (10m).
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Sagas per page (1 to 500).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: u32,
    /// Start after this cursor (the `next_cursor` of an earlier page).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Follow `next_cursor` to the last page.
    #[arg(long)]
    pub all: bool,
}

pub async fn run(args: SagaArgs) -> anyhow::Result<ExitCode> {
    let api = args.marketing.api()?;
    match args.command {
        SagaCommand::Show { id } => {
            let body: Json = api.get(api.url(&["sagas", &id], &[])).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                let saga: Saga = parsed(body)?;
                print!("{}", render::saga(&saga));
                println!("\n{}", api.url(&["sagas", &id, "view"], &[]));
            }
        }
        SagaCommand::List(list) => {
            let query = list_query(&list, Utc::now()).map_err(crate::Refused)?;
            let (sagas, next_cursor) = fetch_pages(&api, query, list.all).await?;
            let body = json!({ "sagas": sagas, "next_cursor": next_cursor });
            if args.json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                let page: SagaPage = parsed(body)?;
                print!("{}", render::list(&page));
                if let Some(cursor) = &page.next_cursor {
                    eprintln!("more sagas: add --cursor {cursor} for the next page, or --all");
                }
            }
        }
        SagaCommand::Stats { campaign } => {
            let query: Vec<(&str, String)> =
                campaign.into_iter().map(|c| ("campaign", c)).collect();
            let body: Json = api.get(api.url(&["sagas", "stats"], &query)).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                let stats: Stats = parsed(body)?;
                print!("{}", render::stats(&stats));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Pages of `GET /sagas` from `query`'s cursor on: one page, or every page when `all`.
async fn fetch_pages(
    api: &Api,
    mut query: Vec<(&'static str, String)>,
    all: bool,
) -> anyhow::Result<(Vec<Json>, Option<String>)> {
    let mut sagas = Vec::new();
    loop {
        let mut page: Json = api.get(api.url(&["sagas"], &query)).await?;
        if let Some(items) = page.get_mut("sagas").and_then(Json::as_array_mut) {
            sagas.append(items);
        }
        let next = page
            .get("next_cursor")
            .and_then(Json::as_str)
            .map(str::to_owned);
        match next {
            Some(cursor) if all => {
                query.retain(|(name, _)| *name != "cursor");
                query.push(("cursor", cursor));
            }
            next => return Ok((sagas, next)),
        }
    }
}

/// The query string of `GET /sagas` for these filters; instants relative to `now`.
fn list_query(list: &ListArgs, now: Timestamp) -> Result<Vec<(&'static str, String)>, String> {
    let mut query = Vec::new();
    if !list.status.is_empty() {
        query.push(("status", list.status.join(",")));
    }
    if let Some(campaign) = &list.campaign {
        query.push(("campaign", campaign.clone()));
    }
    if let Some(partner) = &list.partner {
        query.push(("partner", partner.clone()));
    }
    let instant = |text: &str| {
        when::parse_instant(text, now).map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
    };
    if let Some(since) = &list.since {
        query.push(("since", instant(since)?));
    }
    if let Some(until) = &list.until {
        query.push(("until", instant(until)?));
    }
    query.push(("limit", list.limit.to_string()));
    if let Some(cursor) = &list.cursor {
        query.push(("cursor", cursor.clone()));
    }
    Ok(query)
}

/// The typed view of a JSON answer, or an error saying the server broke the contract.
fn parsed<T: serde::de::DeserializeOwned>(body: Json) -> anyhow::Result<T> {
    serde_json::from_value(body).map_err(|e| {
        anyhow::anyhow!(
            "marketing's answer does not match the saga log contract: {e} (--json shows it raw)"
        )
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        list: ListArgs,
    }

    fn query(args: &[&str]) -> Result<Vec<(&'static str, String)>, String> {
        let cli = Cli::try_parse_from(std::iter::once("list").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        list_query(&cli.list, "2025-03-01T12:00:00Z".parse().unwrap())
    }

    #[test]
    fn list_filters_become_the_contracts_query() {
        let q = query(&[
            "--status",
            "completed,REJECTED",
            "--status",
            "TIMED_OUT",
            "--campaign",
            "c-1",
            "--partner",
            "p-2",
            "--since",
            "2h",
            "--until",
            "2025-03-01T11:30:00+01:00",
            "--limit",
            "500",
        ])
        .unwrap();
        assert_eq!(
            q,
            [
                ("status", "COMPLETED,REJECTED,TIMED_OUT".to_owned()),
                ("campaign", "c-1".into()),
                ("partner", "p-2".into()),
                ("since", "2025-03-01T10:00:00.000000Z".into()),
                ("until", "2025-03-01T10:30:00.000000Z".into()),
                ("limit", "500".into()),
            ]
        );
    }

    #[test]
    fn bad_filters_are_refused_before_asking_the_server() {
        assert!(
            query(&["--status", "DONE"])
                .unwrap_err()
                .contains("not a saga status")
        );
        assert!(query(&["--limit", "501"]).is_err());
        assert!(query(&["--limit", "0"]).is_err());
        assert!(
            query(&["--since", "yesterday"])
                .unwrap_err()
                .contains("not an instant")
        );
    }
}
