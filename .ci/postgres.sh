#!/usr/bin/env bash
# Start a throwaway PostgreSQL on loopback for the shared-study tests (Debian's packages) and print
# its URL. The tests read it from DENDRISWEEP_TEST_POSTGRES; without it they skip (outside CI).
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  (apt-get install -y -q postgresql || (apt-get update -q && apt-get install -y -q postgresql)) >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
if ! pg_lsclusters -h | grep -q .; then
  pg_createcluster "$version" main >&2
fi
read -r cluster_version cluster_name _ < <(pg_lsclusters -h | head -n 1)
pg_ctlcluster "$cluster_version" "$cluster_name" start >&2 || true
port=$(pg_lsclusters -h | head -n 1 | awk '{print $3}')
su postgres -c "psql -p $port -tAc \"SELECT 1 FROM pg_roles WHERE rolname='dendrisweep'\"" | grep -q 1 ||
  su postgres -c "psql -p $port -c \"CREATE ROLE dendrisweep LOGIN PASSWORD 'dendrisweep'\"" >&2
su postgres -c "psql -p $port -tAc \"SELECT 1 FROM pg_database WHERE datname='dendrisweep'\"" | grep -q 1 ||
  su postgres -c "createdb -p $port -O dendrisweep dendrisweep" >&2
echo "postgresql://dendrisweep:dendrisweep@127.0.0.1:$port/dendrisweep"
