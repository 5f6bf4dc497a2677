# registry-operator image: a static musl binary on distroless/static, running as non-root 65532.
# Tags are pinned to exact versions. Pin digests too when building in CI with registry access:
#   docker buildx imagetools inspect rust:1.95.0-slim-bookworm   (and the distroless tag)
# then append @sha256:<digest> to both FROM lines. tests/packaging/dockerfile.rs checks these invariants.

FROM docker.io/library/rust:1.95.0-slim-bookworm AS builder
ARG TARGET=x86_64-unknown-linux-musl
# musl-tools: musl-gcc for the C parts of ring (TLS and hashing).
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "${TARGET}"
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CARGO_TERM_COLOR=never
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --target "${TARGET}" --bin registry-operator \
 && cp "target/${TARGET}/release/registry-operator" /registry-operator

# distroless/static: CA certificates, /etc/passwd with nonroot, tzdata; no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /registry-operator /usr/local/bin/registry-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/registry-operator"]
CMD ["run", "--json-logs"]
