# Build: compile TypeScript to dist/, then drop dev dependencies.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
RUN npm ci
COPY . .
RUN npm run build && npm prune --omit=dev --ignore-scripts

# Run: plain node on the compiled output, as an unprivileged user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    GRPC_ADDRESS=0.0.0.0:50051
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
USER node
EXPOSE 50051
CMD ["node", "--max-semi-space-size=32", "dist/src/main.js"]
