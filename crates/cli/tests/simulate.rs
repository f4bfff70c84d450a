//! `alpes simulate` against a fake platform: the whole run (campaign, visitors, fraud reports,
//! polling, verdict) without the real services.

mod fake;
mod run;

use run::{Ran, alpes};
use serde_json::Value;

/// A run of 40 visitors, half buying, a quarter of the sales reported as fraud, with `extra`.
async fn simulate(platform: fake::FakePlatform, extra: &[&str]) -> (Ran, fake::Shared) {
    let mut args = vec![
        "--visitors",
        "40",
        "--purchase-rate",
        "0.5",
        "--fraud-rate",
        "0.25",
        "--json",
    ];
    args.extend(extra);
    simulate_with(platform, &args).await
}

/// `alpes simulate` with `args` (and a seed, a concurrency) against `platform`.
async fn simulate_with(platform: fake::FakePlatform, args: &[&str]) -> (Ran, fake::Shared) {
    let (url, state) = fake::serve(platform).await;
    let args = [&["simulate", "--seed", "11", "--concurrency", "4"], args].concat();
    let env = [
        ("ALPES_MARKETING_URL", url.as_str()),
        ("ALPES_TRACKING_URL", url.as_str()),
        ("ALPES_ATTRIBUTION_URL", url.as_str()),
        ("ALPES_COMMISSION_URL", url.as_str()),
        ("ALPES_API_TOKEN", fake::TOKEN),
    ];
    (alpes(&args, "", &env).await, state)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sale_completes_and_every_fraud_is_compensated() {
    let (ran, state) = simulate(fake::FakePlatform::default(), &[]).await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let out: Value = serde_json::from_str(&ran.stdout).unwrap();
    let summary = &out["summary"];
    let sales = summary["sales"].as_u64().unwrap();
    let frauds = summary["frauds_planned"].as_u64().unwrap();
    assert!(sales > 0 && frauds > 0, "{summary}");
    assert_eq!(frauds, (sales as f64 * 0.25).round() as u64);
    assert_eq!(summary["frauds_reported"], frauds);
    assert_eq!(summary["by_status"]["COMPENSATED"], frauds);
    assert_eq!(summary["by_status"]["COMPLETED"], sales - frauds);
    assert_eq!(summary["log_latency_ms"]["sale"]["p50"], 1234);
    assert_eq!(summary["ok"], true);

    let platform = state.lock().unwrap();
    assert_eq!(platform.campaigns, 1);
    assert_eq!(platform.interactions["VIEW"], 40);
    assert_eq!(platform.interactions["CLICK"], 40);
    assert_eq!(platform.interactions["PURCHASE"] as u64, sales);
    assert_eq!(platform.fraud.len() as u64, frauds);
    // Reported only once the saga completed: the fake saw each fraud saga COMPLETED first.
    for saga in out["sagas"].as_array().unwrap() {
        let fraud = saga["fraud"].as_bool().unwrap();
        let id = saga["saga_id"].as_str().unwrap().to_owned();
        assert_eq!(platform.fraud.contains(&id), fraud);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_seed_plays_the_same_script() {
    let (first, _) = simulate(fake::FakePlatform::default(), &[]).await;
    let (second, _) = simulate(fake::FakePlatform::default(), &[]).await;
    let counts = |ran: &Ran| {
        let out: Value = serde_json::from_str(&ran.stdout).unwrap();
        (
            out["summary"]["sales"].clone(),
            out["summary"]["frauds_planned"].clone(),
        )
    };
    assert_eq!(counts(&first), counts(&second));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fraud_that_is_never_compensated_fails_the_run() {
    let broken = fake::FakePlatform {
        ignore_fraud: true,
        ..fake::FakePlatform::default()
    };
    let (ran, _) = simulate(broken, &["--timeout", "2s"]).await;
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    let out: Value = serde_json::from_str(&ran.stdout).unwrap();
    let summary = &out["summary"];
    assert_eq!(summary["ok"], false);
    let problems: Vec<&str> = summary["discrepancies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["problem"].as_str().unwrap())
        .collect();
    assert_eq!(
        problems.len() as u64,
        summary["frauds_planned"].as_u64().unwrap()
    );
    assert!(
        problems
            .iter()
            .all(|p| *p == "still COMPLETED when the timeout passed (expected COMPENSATED)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_budget_that_does_not_add_up_fails_the_run() {
    let skewed = fake::FakePlatform {
        budget_skew: 1,
        ..fake::FakePlatform::default()
    };
    let (ran, _) = simulate(skewed, &[]).await;
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    let out: Value = serde_json::from_str(&ran.stdout).unwrap();
    let problems: Vec<&str> = out["summary"]["discrepancies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["problem"].as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("while its live commissions add up to"),
        "{problems:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exact_number_of_frauds_each_with_its_timeline() {
    let exact = [
        "--visitors",
        "5",
        "--purchase-rate",
        "1",
        "--frauds",
        "2",
        "--timelines",
    ];
    let (ran, state) = simulate_with(fake::FakePlatform::default(), &exact).await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(state.lock().unwrap().fraud.len(), 2);
    let headings: Vec<&str> = ran
        .stdout
        .lines()
        .filter(|l| l.starts_with("--- saga "))
        .collect();
    assert_eq!(headings.len(), 5, "{}", ran.stdout);
    let reported = headings
        .iter()
        .filter(|h| h.ends_with("(reported as fraud)"));
    assert_eq!(reported.count(), 2, "{headings:?}");
    // Each heading is followed by the saga as `alpes saga show` prints it.
    assert_eq!(ran.stdout.matches("\nstatus").count(), 5, "{}", ran.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn more_frauds_than_sales_are_refused_before_anything_is_done() {
    let greedy = ["--visitors", "3", "--purchase-rate", "1", "--frauds", "4"];
    let (ran, state) = simulate_with(fake::FakePlatform::default(), &greedy).await;
    assert_eq!(ran.code, 2, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.contains("--frauds 4, but seed 11 plans 3 sales"),
        "{}",
        ran.stderr
    );
    let platform = state.lock().unwrap();
    assert_eq!((platform.campaigns, platform.interactions.len()), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_range_rates_are_refused() {
    let ran = alpes(&["simulate", "--fraud-rate", "1.5"], "", &[]).await;
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr.contains("not a rate from 0 to 1"),
        "{}",
        ran.stderr
    );
}
