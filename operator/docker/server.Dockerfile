# syntax=docker/dockerfile:1
# The ZeroFS NFS server image (`zerofs <url>`), as run by the operator. Build from the repository root:
#   docker build -f operator/docker/server.Dockerfile -t zerofs/zerofs:0.1.0 .
# Node 24 runs the TypeScript sources directly (type stripping).
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only. argon2 and @mongodb-js/zstd load prebuilt N-API binaries that are
# in their packages (or optional per-platform packages), so install scripts are not needed.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY server/src ./server/src
# The operator runs `zerofs <url>`: a launcher on PATH.
RUN printf '#!/bin/sh\nexec node /app/server/src/main.ts "$@"\n' > /usr/local/bin/zerofs && chmod 0755 /usr/local/bin/zerofs
# Non-root (the operator's pods also set runAsUser 65532 and fsGroup for the cache volume).
USER 65532:65532
EXPOSE 2049 9090
ENTRYPOINT ["zerofs"]
