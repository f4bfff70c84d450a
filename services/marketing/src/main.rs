//! `marketing`: the marketing service binary. Wiring only; see `service`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    alpes_runtime::service::main(alpes_marketing::service::run).await
}
