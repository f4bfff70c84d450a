//! `commission`: the commission service binary. Wiring only; see `service`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    alpes_runtime::service::main(alpes_commission::service::run).await
}
