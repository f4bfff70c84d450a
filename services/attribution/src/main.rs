//! `attribution`: the attribution service binary. Wiring only; see `service`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    alpes_runtime::service::main(alpes_attribution::service::run).await
}
