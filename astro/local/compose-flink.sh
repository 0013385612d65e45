#!/usr/bin/env bash
# One process of docker-compose.yaml's Flink session cluster: `jobmanager` (which then submits the
# jobs) or `taskmanager`, run as the local stack runs them (astro/local/stack.sh, flink/cluster.py).
# The TaskManagers share the JobManager's network namespace and its volumes for /app/.venv-flink and
# /app/.stack, so the cluster's loopback addresses and paths hold unchanged.
set -euo pipefail
cd /app
apt-get update -qq && apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless maven curl >/dev/null
export FLINK_CONF_DIR=/app/.stack/flink/conf FLINK_LOG_DIR=/app/.stack/logs/flink GPUBROKER_FLINK_LIB=/app/.stack/flink/lib
mkdir -p "$FLINK_LOG_DIR"
flink_bin() { ls -d /app/.venv-flink/lib/python3*/site-packages/pyflink/bin; }
overview() { curl -sf http://127.0.0.1:8081/overview; }

case ${1:-} in
  jobmanager)
    [ -x /app/.venv-flink/bin/python ] || python -m venv /app/.venv-flink
    /app/.venv-flink/bin/pip install -q -r flink/requirements.lock
    mvn -q -B -f astro/local/pom.xml -Dstack.dir=/app/.stack package
    /app/.venv-flink/bin/python flink/cluster.py conf /app/.stack/flink >/dev/null
    bash "$(flink_bin)/jobmanager.sh" start-foreground &
    until overview | grep -q '"taskmanagers":2'; do sleep 2; done
    for job in price_changes:gpubroker-price-changes analytics:gpubroker-analytics health_scores:gpubroker-health-scores; do
      /app/.venv-flink/bin/python flink/cluster.py submit "$FLINK_CONF_DIR" "flink/${job%%:*}.py" --name "${job#*:}"
    done
    wait ;;
  taskmanager)
    until overview >/dev/null; do sleep 2; done
    exec bash "$(flink_bin)/taskmanager.sh" start-foreground ;;
  *) echo "usage: $0 jobmanager|taskmanager" >&2; exit 2 ;;
esac
