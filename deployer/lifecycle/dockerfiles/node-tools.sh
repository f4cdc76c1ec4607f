#!/bin/sh
# The node bases' tools, run in their build stage (see node.Dockerfile). Never prints a registry's
# credentials: the registry is shown by its host only.
set -eu
. /deployer-build/build/env
PNPM_VERSION=${PNPM_VERSION:-9.15.9} YARN_VERSION=${YARN_VERSION:-4.9.1}
mkdir -p /opt/deployer/bin /opt/deployer/node_modules /opt/deployer/corepack
export COREPACK_HOME=/opt/deployer/corepack COREPACK_ENABLE_DOWNLOAD_PROMPT=0
tools=/opt/deployer/node-tools
echo "node $(node --version)" > "$tools"
echo "npm $(npm --version)" >> "$tools"
registry=${npm_config_registry:-https://registry.npmjs.org/}
where=$(node -e 'const u = new URL(process.argv[1]); console.log(u.protocol + "//" + u.host)' "$registry")
# One quick probe: offline, npm and corepack would otherwise retry for minutes.
if node -e '
  fetch(new URL("-/ping", process.argv[1].replace(/\/?$/, "/")), {signal: AbortSignal.timeout(15000)})
    .then(r => process.exit(r.status < 500 ? 0 : 1), () => process.exit(1))' "$registry"; then
  echo "npm registry $where answers"
  packages=zyndai
  command -v esbuild >/dev/null || packages="$packages esbuild@0.25.5"
  # shellcheck disable=SC2086
  (cd /opt/deployer && npm install --no-save --no-package-lock --no-audit --no-fund --omit=dev $packages)
  echo "zyndai $(node -p 'require("/opt/deployer/node_modules/zyndai/package.json").version')" >> "$tools"
  corepack install -g "pnpm@$PNPM_VERSION" "yarn@$YARN_VERSION"
  corepack enable --install-directory /opt/deployer/bin pnpm yarn
  echo "pnpm $PNPM_VERSION" >> "$tools"
  echo "yarn $YARN_VERSION" >> "$tools"
else
  echo "WARNING: no npm registry answered at $where (set DEPLOYER_NPM_REGISTRY): the zyndai npm package is NOT"
  echo "WARNING: preinstalled, and pnpm and yarn are NOT available; bundles with a pnpm-lock.yaml or yarn.lock"
  echo "WARNING: will fail to build until the node bases are rebuilt where a registry answers."
fi
if command -v esbuild >/dev/null || [ -x /opt/deployer/node_modules/.bin/esbuild ]; then
  echo "esbuild $(PATH=/opt/deployer/node_modules/.bin:$PATH esbuild --version)" >> "$tools"
else
  echo "WARNING: esbuild is NOT available: TypeScript entry points cannot be compiled in this base."
fi
echo "node base tools:"
sed 's/^/  /' "$tools"
