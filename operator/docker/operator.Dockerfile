# syntax=docker/dockerfile:1
# The ZeroFS operator image. Build from the repository root:
#   docker build -f operator/docker/operator.Dockerfile -t zerofs/zerofs-operator:0.1.0 .
# Node 24 runs the TypeScript sources directly (type stripping): no compile step, no dev tools.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only. --ignore-scripts: the image already is Node 24 (the "node"
# devDependency, which downloads Node, is omitted anyway), and native modules ship prebuilds.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY operator/src ./operator/src
# Non-root, numeric so that runAsNonRoot can verify it without a passwd lookup.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["node", "/app/operator/src/main.ts"]
