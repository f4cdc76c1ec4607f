# Base for Node agents and services. BASE is the public image by default; see python.Dockerfile.
#
# node-tools.sh runs in a build stage that alone sees build/ (registry settings, the CA of a
# TLS-intercepting proxy): where an npm registry answers it preinstalls the `zyndai` package (and
# esbuild, unless the base has one) and has corepack prepare pnpm and yarn; where none answers it says
# so and records it. Only /opt/deployer comes across; /opt/deployer/node-tools lists what is there.
# Few instructions: on slow storage drivers (fuse-overlayfs) every one is a container commit.
ARG BASE=node:20-slim
FROM ${BASE} AS build
COPY build /deployer-build/build
RUN sh /deployer-build/build/node-tools.sh

FROM ${BASE}
COPY --from=build /opt/deployer /opt/deployer
# /opt/deployer/node_modules/.bin: esbuild from npm; /opt/deployer/bin: the pnpm and yarn shims.
# NODE_PATH lets `require("zyndai")` find the preinstalled package (an app's own node_modules wins).
ENV NODE_ENV=production \
    LANG=C.UTF-8 \
    PATH=/opt/deployer/bin:/opt/deployer/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_PATH=/opt/deployer/node_modules \
    COREPACK_HOME=/opt/deployer/corepack \
    COREPACK_ENABLE_DOWNLOAD_PROMPT=0 \
    COREPACK_ENABLE_STRICT=0
WORKDIR /app
ARG BASE KIND=agent RECIPE
LABEL deployer.managed="true" deployer.role="base" deployer.runtime="node" deployer.kind="${KIND}" \
      deployer.base="${BASE}" deployer.recipe="${RECIPE}"
