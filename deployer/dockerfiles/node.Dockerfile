# Base for Node agents and services. BASE is the public image by default; see python.Dockerfile.
ARG BASE=node:20-slim
FROM ${BASE}
ARG KIND=agent
ENV NODE_ENV=production \
    LANG=C.UTF-8
RUN node --version && npm --version
WORKDIR /app
LABEL deployer.managed="true" deployer.role="base" deployer.runtime="node" deployer.kind="${KIND}"
EXPOSE 5000
