# syntax=docker/dockerfile:1
# Astrolabe container image.
#   docker build -t astrolabe:dev .
#   docker run --rm -p 8080:8080 astrolabe:dev demo
# Build context hygiene lives in .dockerignore (no target/, no .git).

ARG RUST_VERSION=1.95

# ---------------------------------------------------------------------------------------------------
# planner: reduce the workspace to its manifests + empty sources. The output only changes when a
# Cargo.toml or Cargo.lock changes, so the dependency layer below stays cached across code edits.
# Declared [[bin]]/[[bench]]/[[test]]/[[example]] targets get a stub too (cargo insists they exist).
FROM rust:${RUST_VERSION}-bookworm AS planner
WORKDIR /src
COPY . .
RUN <<'SKELETON'
set -eu
mkdir -p /skeleton
cp Cargo.toml Cargo.lock /skeleton/
for manifest in $(find cmd pkg -name Cargo.toml -not -path '*/target/*'); do
    crate=$(dirname "$manifest")
    mkdir -p "/skeleton/$crate/src"
    cp "$manifest" "/skeleton/$manifest"
    if [ -f "$crate/src/lib.rs" ]; then : > "/skeleton/$crate/src/lib.rs"; fi
    if [ -f "$crate/src/main.rs" ]; then echo 'fn main() {}' > "/skeleton/$crate/src/main.rs"; fi
    if [ -f "$crate/build.rs" ]; then echo 'fn main() {}' > "/skeleton/$crate/build.rs"; fi
    # Declared [[bin]]/[[bench]]/[[test]]/[[example]] targets must exist: print "kind name path".
    awk '
        function flush() { if (kind != "") print kind, name, path; kind = "" }
        /^\[\[(bin|bench|test|example)\]\]/ {
            flush(); kind = $0; gsub(/[][ \t]/, "", kind); name = "-"; path = "-"; next
        }
        /^\[/ { flush(); next }
        kind != "" && /^[ \t]*(name|path)[ \t]*=/ {
            v = $0; sub(/^[^"]*"/, "", v); sub(/".*$/, "", v)
            if ($0 ~ /^[ \t]*name/) name = v; else path = v
        }
        END { flush() }
    ' "$manifest" |
    while read -r kind name path; do
        if [ "$path" = "-" ]; then
            case "$kind" in
                bin) dir=src/bin ;; bench) dir=benches ;; test) dir=tests ;; *) dir=examples ;;
            esac
            path="$dir/$name.rs"
            if [ -f "$crate/$dir/$name/main.rs" ]; then path="$dir/$name/main.rs"; fi
        fi
        if [ ! -e "/skeleton/$crate/$path" ]; then
            mkdir -p "$(dirname "/skeleton/$crate/$path")"
            echo 'fn main() {}' > "/skeleton/$crate/$path"
        fi
    done
done
SKELETON

# ---------------------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src

# 1. Dependencies only: build the skeleton (manifests + Cargo.lock + dummy sources). Cached until a
#    manifest or the lock file changes.
COPY --from=planner /skeleton/ ./
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    cargo build --release --locked -p astrolabe

# 2. The real sources. COPY keeps the files' own (older) mtimes, so touch them: otherwise cargo would
#    consider the dummy builds of our crates up to date.
COPY cmd ./cmd
COPY pkg ./pkg
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    find cmd pkg -type f -name '*.rs' -exec touch {} + \
    && cargo build --release --locked -p astrolabe \
    && install -D -m 0755 target/release/astrolabe /out/astrolabe

# ---------------------------------------------------------------------------------------------------
# runtime: glibc + libgcc + CA certificates, no shell, no package manager; user 65532 (nonroot).
# No HEALTHCHECK: distroless has no curl/wget; orchestrators probe /healthz and /readyz over HTTP.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/astrolabe /usr/local/bin/astrolabe
USER 65532:65532
EXPOSE 8080
ENV LISTEN_ADDR=0.0.0.0:8080
ENTRYPOINT ["astrolabe"]
CMD ["serve"]
