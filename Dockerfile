# syntax=docker/dockerfile:1

# Build: install everything, generate Prisma clients and resolver types, compile TypeScript.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Scripts are skipped here because the sources they need are not copied yet; `npm run build`
# below runs the same generation.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json codegen.ts ./
COPY prisma ./prisma
COPY schema ./schema
COPY migrations ./migrations
COPY scripts ./scripts
COPY src ./src
# Production keeps no development tools: neither the embedded PostgreSQL (~60 MB, only for
# running without DATABASE_URL), nor the prisma CLI and TypeScript, which npm also counts as
# optional (peers of @prisma/client), hence --omit=optional too.
RUN npm run build && npm prune --omit=dev --omit=optional --ignore-scripts

# Runtime: compiled code, production dependencies, and the files read at run time
# (SDL, migrations, Prisma schemas), plus the launcher of the operator commands.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/schema ./schema
COPY --from=build /app/migrations ./migrations
COPY --from=build /app/prisma ./prisma
COPY --from=build /app/scripts/operator.js ./scripts/operator.js
USER node
EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s CMD node -e "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
# Operator commands run the compiled scripts here, the same npm scripts as in a checkout:
#   docker compose exec api npm run tenants:migrate -- --force
#   docker compose exec api npm run smoke -- http://127.0.0.1:4000/graphql
CMD ["node", "dist/src/main.js"]
