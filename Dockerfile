# syntax=docker/dockerfile:1.7
#
# alpes images: one build of the workspace, one small image per binary.
#
#   docker build --target tracking    -t alpes/tracking .
#   docker build --target attribution -t alpes/attribution .
#   docker build --target commission  -t alpes/commission .
#   docker build --target marketing   -t alpes/marketing .
#   docker build --target cli         -t alpes/cli .        # `alpes`, with schema/ in /app
#
# Every target shares the `builder` stage, so BuildKit compiles the five binaries once and the
# other four builds are cache hits. Cargo's registry and target/ live in cache mounts: a rebuild
# after a source change recompiles only the workspace crates, not the dependencies.
#
# One target per binary (rather than one image holding all five) keeps each image to the
# binary it runs, lets Artifact Registry and the Kustomize `images:` list name them
# (alpes/<name>), and keeps the CLI's schema files out of the services' images.
#
# Needs BuildKit (Docker >= 23 uses it by default; Cloud Build: DOCKER_BUILDKIT=1).

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder

# protoc: the `pulsar` crate generates its protocol code at build time. OpenSSL headers and
# pkg-config are already in the rust:*-bookworm image (buildpack-deps).
# Unpinned on purpose: bookworm's stable archive only moves for security fixes.
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean \
 && apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler

WORKDIR /src
# Only what the workspace build reads. A new top-level workspace member needs a line here.
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY services services
COPY sagalog sagalog
COPY schema schema

# sqlx: migrations are embedded at compile time; never reach for a database while building.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never

RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
      -p alpes-tracking -p alpes-attribution -p alpes-commission -p alpes-marketing -p alpes-cli \
 && mkdir -p /out \
 && cp target/release/tracking target/release/attribution target/release/commission \
       target/release/marketing target/release/alpes /out/

# ---------------------------------------------------------------------------------------------
# Shared runtime: CA certificates and libssl3 (the mongodb and pulsar crates use OpenSSL),
# a non-root user, no shell tools beyond Debian's base, no compiler.
FROM ${RUNTIME_IMAGE} AS runtime
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 alpes \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin alpes
# docker-compose healthchecks (`alpes-healthcheck /readyz`): bash's /dev/tcp, so no curl.
COPY --chmod=0755 scripts/deploy/healthcheck.sh /usr/local/bin/alpes-healthcheck
WORKDIR /app
USER 10001:10001

# ---------------------------------------------------------------------------------------------
FROM runtime AS tracking
COPY --from=builder /out/tracking /usr/local/bin/tracking
ENV ALPES_HTTP_ADDR=0.0.0.0:8081
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/tracking"]

FROM runtime AS attribution
COPY --from=builder /out/attribution /usr/local/bin/attribution
ENV ALPES_HTTP_ADDR=0.0.0.0:8082
EXPOSE 8082
ENTRYPOINT ["/usr/local/bin/attribution"]

FROM runtime AS commission
COPY --from=builder /out/commission /usr/local/bin/commission
ENV ALPES_HTTP_ADDR=0.0.0.0:8083
EXPOSE 8083
ENTRYPOINT ["/usr/local/bin/commission"]

FROM runtime AS marketing
COPY --from=builder /out/marketing /usr/local/bin/marketing
ENV ALPES_HTTP_ADDR=0.0.0.0:8084
EXPOSE 8084
ENTRYPOINT ["/usr/local/bin/marketing"]

# The CLI reads schema/v1 relative to its working directory (`alpes schema check --dir schema`).
FROM runtime AS cli
COPY --from=builder /out/alpes /usr/local/bin/alpes
COPY schema /app/schema
ENTRYPOINT ["/usr/local/bin/alpes"]
CMD ["--help"]
