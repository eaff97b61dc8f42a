# Build stage: compile TypeScript with the dev dependencies.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies only, non-root, tokens on a volume.
FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# openssl makes the self-signed certificate for TLS listeners that have none configured.
RUN apt-get update && apt-get install -y --no-install-recommends openssl && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY config.example.yaml ./
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
# IMAP, POP3, SMTP submission, admin (status page, /healthz, /metrics)
EXPOSE 1143 1110 1587 8025
# Needs `admin: { listen: 127.0.0.1:8025 }` in config.yaml (the default address).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8025/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["serve", "-c", "/config/config.yaml"]
