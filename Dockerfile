# Production image: API and worker share it; docker-compose.yml picks the command.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    CLEARANCE_DATA_DIR=/var/lib/clearance \
    MODEL_CACHE_DIR=/var/cache/clearance/models
WORKDIR /app
COPY package.json package-lock.json ./
# allowScripts in package.json decides which install scripts run (onnxruntime-node's GPU download is denied).
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY workers ./workers
COPY tsconfig.json ./
RUN mkdir -p /var/lib/clearance /var/cache/clearance/models && chown -R node:node /var/lib/clearance /var/cache/clearance
USER node
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8787)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "bin/clearance.mjs", "serve"]
