# Production image: the API, the worker and the one-shot `model` step share it; docker-compose.yml
# picks the command. The healthcheck below fits the default command (it answers /healthz over
# HTTP); docker-compose.yml replaces it for the worker, which serves no HTTP
# (`clearance worker --health` reads its heartbeat), and turns it off for the one-shot model step.
FROM node:20-bookworm-slim
# MALLOC_ARENA_MAX: LanceDB's and ONNX Runtime's native threads each get a malloc arena by default,
# and their freed memory fragments there: ingesting 18k documents grew the process by 210 MB with
# the default arenas and by 91 MB (mostly the JS heap's reserve) with two (`clearance bench ingest --docs 20000`).
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
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
# Named volumes mounted here start with the image's ownership, so the node user can write them.
RUN mkdir -p /var/lib/clearance /var/cache/clearance/models && chown -R node:node /var/lib/clearance /var/cache/clearance
USER node
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8787)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "bin/clearance.mjs", "serve"]
