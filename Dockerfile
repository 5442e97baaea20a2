# syntax=docker/dockerfile:1
# The prediction API and dashboard (`serve`) plus the `analytics` CLI.
#
#   docker build -t sales-analytics .
#   docker run --rm -p 8080:8080 -e APP_API_KEYS="$(openssl rand -hex 24)" \
#     -v "$PWD/models:/app/models:ro" -v "$PWD/data/curated:/app/data:ro" sales-analytics
#
# The image listens on 0.0.0.0, so serve refuses to start without API keys
# (APP_API_KEYS="KEY[:predict+read+customers],…"; clients send
# `Authorization: Bearer KEY`) unless APP_ALLOW_ANONYMOUS=1 says so on
# purpose. /health stays open for the HEALTHCHECK.
#
# /app/models is the model registry (customer_spend/ and segments/, each with
# version folders and a live.json); `serve` follows promotions and rollbacks
# made on the mounted folder without a restart.
#
# Everything comes from registries (Debian, crates.io, PyPI for the
# xgboost-cpu wheel); nothing from GitHub.
#
# BINARIES selects where /app's binaries come from; the runtime stage is the
# same either way:
#   build     (default) the `build` stage compiles them from this checkout.
#   prebuilt  the `prebuilt` stage copies the build context's `prebuilt/`
#             folder, laid out as the build stage's /out/ (serve, analytics,
#             lib/libxgboost.so.3, lib/libgomp-*.so*, rpaths set). CI builds
#             the image this way with buildah, without a Docker engine:
#             scripts/image.sh prepares that folder from the host's release
#             binaries and uses it as the build context.
ARG BINARIES=build
ARG RUNTIME_BASE=debian:bookworm-slim

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev python3-pip patchelf \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN scripts/fetch-xgboost.sh \
 && cargo build --release -p serve -p analytics-lib --bins \
 && mkdir -p /out/lib \
 && cp target/release/serve target/release/analytics /out/ \
 && cp third_party/xgboost-cpu/xgboost/lib/libxgboost.so /out/lib/libxgboost.so.3 \
 && cp third_party/xgboost-cpu/xgboost_cpu.libs/libgomp-*.so* /out/lib/ \
 # Relocatable: the binaries and libxgboost find their libraries beside them.
 && patchelf --set-rpath '$ORIGIN/lib' /out/serve /out/analytics \
 && patchelf --set-rpath '$ORIGIN' /out/lib/libxgboost.so.3

FROM scratch AS prebuilt
COPY prebuilt/ /out/

FROM ${BINARIES} AS binaries

FROM ${RUNTIME_BASE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /app analytics
WORKDIR /app
COPY --from=binaries /out/ /app/
USER analytics
ENV APP_BIND=0.0.0.0:8080 \
    APP_MODELS=/app/models \
    APP_DATA=/app/data \
    OMP_WAIT_POLICY=PASSIVE
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/health || exit 1
ENTRYPOINT ["/app/serve"]
