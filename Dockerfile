# gradserve as a container: `docker build -t gradserve .` (or `podman build --format docker -t gradserve .`;
# podman's default OCI format drops HEALTHCHECK). Node.js 24 LTS. Every stage starts from the same official base so
# that the addon is compiled against the exact Node ABI and glibc it runs on; the image itself is that base's
# filesystem, trimmed and with the app added, as one layer (see the runtime stage).

# ---- build: compiler, CMake and OpenBLAS headers; compiles the addon and the TypeScript ----
FROM node:24-bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake make python3 libopenblas-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Manifests first: the dependency layer is reused until package*.json change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# Type declarations, source maps, TypeScript sources, packages' own tests, docs and examples are never read at run
# time; dropping them (~20 MB) keeps the image within its 300 MB budget. The OpenTelemetry packages also ship two
# bundler-only builds (build/esm, build/esnext: their `exports` give Node the CommonJS build/src), ~18 MB.
RUN CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" npm run build \
 && test -f build/Release/gradserve.node \
 && npm prune --omit=dev --no-audit --no-fund \
 && find node_modules dist -type f \( -name '*.d.ts' -o -name '*.d.cts' -o -name '*.d.mts' -o -name '*.map' \
      -o -iname '*.md' -o -iname '*.markdown' \) -delete \
 && find node_modules -regextype posix-extended -type d \
      -regex '(.*/)?node_modules/(@[^/]+/)?[^/]+/(test|tests|__tests__|docs?|examples?|benchmarks?|\.github)' \
      -prune -exec rm -rf {} + \
 && rm -rf node_modules/zod/src \
 && rm -rf node_modules/@opentelemetry/*/build/esm node_modules/@opentelemetry/*/build/esnext

# ---- runtime-fs: the base with the OpenBLAS shared library and the compiled app; nothing that compiles ----
FROM node:24-bookworm-slim AS runtime-fs
# OpenBLAS bundles its own LAPACK; the separate reference liblapack.so.3 (7 MB) is unused by the addon (the load check
# below proves it), so it is unregistered and removed. Nothing in the running service uses npm, corepack or yarn
# (the entry point is node itself), documentation, man pages or message catalogues: they go too (~60 MB), which keeps
# the image within its 300 MB budget on Node 24 (whose binary is ~28 MB larger than Node 20's) and leaves no package
# manager in the container.
RUN printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/locale/*' \
      > /etc/dpkg/dpkg.cfg.d/gradserve-slim \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libopenblas0 \
 && for f in /usr/lib/*/openblas-*/liblapack.so.3; do \
      update-alternatives --remove "liblapack.so.3-$(basename "$(dirname "$(dirname "$f")")")" "$f"; rm -f "$f"; \
    done \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log /var/cache/debconf/*-old \
      /var/lib/dpkg/*-old \
 && rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /opt/yarn-* \
      /usr/local/bin/yarn /usr/local/bin/yarnpkg /usr/share/doc/* /usr/share/man/* /usr/share/locale/* /usr/share/info/* \
      /root/.npm /tmp/* \
 && mkdir -p /models

WORKDIR /app
# Owned by root and read-only to the service user: a compromised process cannot rewrite its own code.
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/playground ./playground
COPY --from=build /src/build/Release/gradserve.node ./build/Release/gradserve.node
# Fails the build when the addon needs a shared library that the runtime stage lacks, or when the pruning above took
# something the tracing modules (loaded only when OTEL_* ask for them) need.
RUN node -e "require('/app/build/Release/gradserve.node')" \
 && node -e "Promise.all(['@opentelemetry/sdk-trace-node','@opentelemetry/sdk-trace-base','@opentelemetry/resources','@opentelemetry/exporter-trace-otlp-proto'].map((m)=>import(m))).catch((e)=>{console.error(e);process.exit(1)})"

# ---- runtime: the filesystem above as a single layer ----
# Files deleted in a later layer still count in an image, so the trimmed filesystem is copied into an empty image.
FROM scratch AS runtime
COPY --from=runtime-fs / /

# Settings are environment variables (see docs/docker.md); these are the container's defaults.
# GRADSERVE_MODEL_REPOSITORY stays unset: mount a folder (read-only) and point it there, e.g. /models.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_ENV=production \
    PORT=8080

WORKDIR /app
# The `node` user (uid 1000) comes with the base image; numeric so that Kubernetes can verify runAsNonRoot.
USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.GRADSERVE_PORT||process.env.PORT||8080)+'/v2/health/ready',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: node is the process that receives SIGTERM (no shell in between) and drains in-flight requests.
# Run with `--init` (docker/podman) so that a minimal init reaps zombies and forwards signals.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--initial-old-space-size=128", "dist/cli.js"]
CMD ["serve"]
