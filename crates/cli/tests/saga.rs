//! `alpes saga` against a fake marketing service that speaks the saga log contract.

mod fake;
mod run;

use fake::TOKEN;
use run::alpes;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn show_prints_the_header_and_timeline_of_one_saga() {
    let (url, _) = fake::serve(fake::FakePlatform::default()).await;
    let id = "0195a3c1-5e2f-7a10-8c1d-3b4e5f607182";
    let ran = alpes(
        &["saga", "show", id, "--marketing-url", &url],
        "",
        &[("ALPES_API_TOKEN", TOKEN)],
    )
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stdout
            .starts_with(&format!("saga      {id}\nstatus    COMPENSATED\n"))
    );
    assert!(
        ran.stdout
            .contains("FraudDetected          compensation  reason=chargeback")
    );
    assert!(
        ran.stdout.contains(&format!("{url}/sagas/{id}/view")),
        "{}",
        ran.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_is_the_servers_answer_for_scripts() {
    let (url, _) = fake::serve(fake::FakePlatform::default()).await;
    let id = "0195a3c1-5e2f-7a10-8c1d-3b4e5f607182";
    let ran = alpes(
        &[
            "saga",
            "--json",
            "show",
            id,
            "--marketing-url",
            &url,
            "--token",
            TOKEN,
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let printed: Value = serde_json::from_str(&ran.stdout).unwrap();
    let fixture: Value = serde_json::from_str(include_str!("fixtures/saga.json")).unwrap();
    assert_eq!(printed, fixture);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_token_is_explained() {
    let (url, _) = fake::serve(fake::FakePlatform::default()).await;
    let ran = alpes(&["saga", "stats", "--marketing-url", &url], "", &[]).await;
    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr
            .contains("marketing answered 401 unauthorized: a valid bearer token is required"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("no API token was given"),
        "{}",
        ran.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_saga_is_a_clear_404() {
    let (url, _) = fake::serve(fake::FakePlatform::default()).await;
    let ran = alpes(
        &[
            "saga",
            "show",
            "nope",
            "--marketing-url",
            &url,
            "--token",
            TOKEN,
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr
            .contains("marketing answered 404 not_found: no saga nope"),
        "{}",
        ran.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_sends_the_filters_and_all_follows_the_cursor() {
    let (url, state) = fake::serve(fake::FakePlatform::default()).await;
    let env = [
        ("ALPES_API_TOKEN", TOKEN),
        ("ALPES_MARKETING_URL", url.as_str()),
    ];
    let ran = alpes(
        &[
            "saga",
            "list",
            "--status",
            "compensated",
            "--campaign",
            "c-spring",
            "--limit",
            "3",
        ],
        "",
        &env,
    )
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(ran.stdout.lines().count(), 4, "{}", ran.stdout);
    assert!(ran.stderr.contains("--cursor c2FnYS0z"), "{}", ran.stderr);
    assert_eq!(
        state.lock().unwrap().list_queries,
        ["status=COMPENSATED&campaign=c-spring&limit=3"]
    );

    let ran = alpes(&["saga", "list", "--all", "--json"], "", &env).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let all: Value = serde_json::from_str(&ran.stdout).unwrap();
    let ids: Vec<&str> = all["sagas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["saga_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["saga-3", "saga-2", "saga-1", "saga-0"]);
    assert_eq!(all["next_cursor"], Value::Null);
    assert_eq!(
        state.lock().unwrap().list_queries[1..],
        ["limit=50", "limit=50&cursor=c2FnYS0z"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_are_tables() {
    let (url, _) = fake::serve(fake::FakePlatform::default()).await;
    let ran = alpes(
        &["saga", "stats", "--marketing-url", &url, "--token", TOKEN],
        "",
        &[],
    )
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stdout.starts_with("57 sagas; 55 finished"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("c-spring     55"), "{}", ran.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_service_says_where_it_looked() {
    let ran = alpes(
        &[
            "saga",
            "stats",
            "--marketing-url",
            "http://127.0.0.1:9",
            "--token",
            TOKEN,
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr
            .contains("cannot reach marketing at http://127.0.0.1:9/sagas/stats"),
        "{}",
        ran.stderr
    );
}
