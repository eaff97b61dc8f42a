# Build stage: compile TypeScript with the dev dependencies.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies only, non-root, tokens on a volume.
# CI has no Docker engine: scripts/check-container-steps.mjs runs this stage's steps in a clean
# folder (same COPYs, same install script, same ENTRYPOINT, CMD and HEALTHCHECK) and fails on
# any instruction or RUN command it does not know, so that this file cannot drift from it.
FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# openssl makes the self-signed certificate for TLS listeners that have none configured.
RUN apt-get update && apt-get install -y --no-install-recommends openssl && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY scripts/container ./scripts/container
RUN sh scripts/container/install-runtime.sh /app && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY config.example.yaml ./
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
# IMAP, POP3, SMTP submission, admin (status page, /healthz, /metrics)
EXPOSE 1143 1110 1587 8025
# Asks the admin listener (`admin: { listen: 127.0.0.1:8025 }`, the default) for /healthz;
# set HEALTHCHECK_URL if config.yaml puts it elsewhere.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD ["node", "/app/scripts/container/healthcheck.mjs"]
# Config from a mounted file (docker-compose.yml mounts ./config read-only on /config); secrets
# from environment variables (${VAR} in the config) or *_file paths in that folder.
# --max-semi-space-size=2 and --initial-old-space-size=64: see docs/decisions.md (the same flags
# as the systemd unit).
ENTRYPOINT ["node", "--max-semi-space-size=2", "--initial-old-space-size=64", "/app/dist/cli.js"]
CMD ["serve", "-c", "/config/config.yaml"]
