#!/usr/bin/env bash
# Installs (from Debian) and starts the servers the tests talk to, then prints the env vars that
# point the tests at them. Idempotent: safe to run when they are already up.
set -euo pipefail

need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v caddy >/dev/null 2>&1 || need+=(caddy)
command -v age >/dev/null 2>&1 || need+=(age)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
[ -x /usr/bin/chromium ] || need+=(chromium)  # the dashboard's browser tests (Playwright drives it)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  apt-get update -qq >/tmp/deployer-apt.log 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >>/tmp/deployer-apt.log 2>&1
fi

# PostgreSQL: Debian's cluster, a password login on loopback, a role that may create databases.
pgver=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q "^$pgver main"; then
  pg_createcluster "$pgver" main >&2
fi
pg_ctlcluster "$pgver" main start >/dev/null 2>&1 || true
for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
su postgres -c "psql -q -tAc \"SELECT 1 FROM pg_roles WHERE rolname='deployer'\"" | grep -q 1 ||
  su postgres -c "psql -q -c \"CREATE ROLE deployer LOGIN CREATEDB PASSWORD 'deployer'\"" >&2
su postgres -c "psql -q -tAc \"SELECT 1 FROM pg_database WHERE datname='deployer'\"" | grep -q 1 ||
  su postgres -c "createdb -O deployer deployer" >&2

# Redis on loopback, no persistence.
if ! redis-cli -p 6379 ping >/dev/null 2>&1; then
  redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes >&2
fi
for _ in $(seq 1 50); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done

echo "export DEPLOYER_TEST_DATABASE_URL=postgresql+psycopg://deployer:deployer@127.0.0.1:5432/deployer"
echo "export DEPLOYER_TEST_REDIS_URL=redis://127.0.0.1:6379/0"
