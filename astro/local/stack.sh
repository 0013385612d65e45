#!/usr/bin/env bash
# GPUBroker local stack on loopback: installs what is missing, then starts, stops or shows every
# service. Idempotent: `up` on a running stack changes nothing; `down` stops only what `up` started.
#
#   stack.sh install     install system packages, virtualenvs and Maven-resolved jars
#   stack.sh up          install, then start every service and run one sync
#   stack.sh up --no-sync
#   stack.sh down | status | logs SERVICE
#   stack.sh stop SERVICE      stop one service (`up` starts it again), e.g. to rehearse an outage
#   stack.sh airflow up|down   start or stop only Airflow (see "Airflow" below for a second instance)
#   stack.sh kafka up|down     start or stop only Kafka (its brokers, principals, ACLs and topics)
#   stack.sh redis up|down     start or stop only Redis
#   stack.sh services          the stack's services, one a line
#
# State, logs and pids live under .stack/ (GPUBROKER_STATE to move it). GPUBROKER_PORT_<SERVICE> moves a
# service's port (e.g. GPUBROKER_PORT_KAFKA=19092, GPUBROKER_PORT_REDIS=16379): with another state
# directory, a second Kafka or Redis beside the stack's. GPUBROKER_KAFKA_BROKERS=3: Kafka as a cluster
# of three brokers (see "Kafka" below).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/astro/local
STATE=${GPUBROKER_STATE:-$ROOT/.stack}
RUN=$STATE/run
LOGS=$STATE/logs
VENV=$ROOT/.venv
FLINK_VENV=$ROOT/.venv-flink
PY=$VENV/bin/python
UV_VERSION=0.13.8
AIRFLOW_USER=admin
# PostgreSQL refuses to run as root: its files live where the `postgres` user can reach them.
PG_HOME=/var/lib/gpubroker/$(printf '%s' "$STATE" | sha1sum | cut -c1-12)

declare -A PORT=([postgres]=5432 [redis]=6379 [kafka]=9092 [replay]=8765 [airflow-api-server]=8080 [webapp]=8000
                 [flink-jobmanager]=8081 [flink-rpc]=6123 [vault]=8200)
for name in "${!PORT[@]}"; do
  var=GPUBROKER_PORT_${name^^} && var=${var//-/_} && PORT[$name]=${!var:-${PORT[$name]}}
done

# Kafka: one broker by default (its footprint), or GPUBROKER_KAFKA_BROKERS=3, three in one KRaft cluster
# (replication factor 3, min.insync.replicas 2). Node i listens for clients on the Kafka port + 2(i-1)
# and for its controller on the next port: 9092/9093, 9094/9095, 9096/9097.
KAFKA_BROKERS=${GPUBROKER_KAFKA_BROKERS:-1}
case $KAFKA_BROKERS in
  1) KAFKA_NODES=(kafka) ;;
  3) KAFKA_NODES=(kafka kafka-2 kafka-3) ;;
  *) echo "error: GPUBROKER_KAFKA_BROKERS is 1 or 3, not '$KAFKA_BROKERS'" >&2; exit 2 ;;
esac
KAFKA_BOOTSTRAP=
for i in "${!KAFKA_NODES[@]}"; do
  PORT[${KAFKA_NODES[$i]}]=$((PORT[kafka] + 2 * i))
  KAFKA_BOOTSTRAP+=${KAFKA_BOOTSTRAP:+,}127.0.0.1:${PORT[${KAFKA_NODES[$i]}]}
done
export GPUBROKER_KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP

SERVICES=(postgres redis "${KAFKA_NODES[@]}" replay vault airflow-api-server airflow-scheduler airflow-dag-processor
          airflow-triggerer flink-jobmanager flink-taskmanager-1 flink-taskmanager-2 webapp feed-bridge)
# only with GPUBROKER_EXECUTOR=celery (astro/docker-compose.yaml runs the LocalExecutor: no service there)
CELERY_SERVICES=(airflow-celery-worker-1 airflow-celery-worker-2)

red() { printf '\033[31m%s\033[0m\n' "$*" >&2; }
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { red "error: $*"; exit 1; }

# --- install -------------------------------------------------------------------------------
APT_UPDATED=
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
  say "apt-get install ${missing[*]}"
  [ -n "$APT_UPDATED" ] || { apt-get update -qq >/dev/null; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

check_tools() {
  command -v java >/dev/null || die "Java 17+ is needed for Kafka and Flink: apt-get install openjdk-17-jre-headless"
  local v; v=$(java -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/{print $2}')
  [ "${v%%.*}" -ge 17 ] 2>/dev/null || die "Java 17+ is needed for Kafka and Flink (found Java $v)"
  command -v python3.11 >/dev/null || die "Python 3.11 is needed (python3.11 not on PATH)"
}

install_python() {
  command -v uv >/dev/null || { say "installing uv $UV_VERSION"; python3.11 -m pip install -q "uv==$UV_VERSION"; }
  [ -x "$PY" ] || uv venv -q --python python3.11 "$VENV"
  # Only when the lock or pyproject changed: `uv pip sync` takes our editable package out and the
  # install puts it back, and a service the stack restarts meanwhile would start without it for good.
  if [ "$(cat "$VENV/.synced" 2>/dev/null)" != "$(stamp "$HERE/requirements.lock" "$ROOT/pyproject.toml")" ]; then
    # bytecode compiled once here: every Airflow task, test and service imports from it (GX: ~3x less CPU)
    uv pip sync -q --compile-bytecode --python "$PY" "$HERE/requirements.lock"
    uv pip install -q --python "$PY" --no-deps -e "$ROOT"
    stamp "$HERE/requirements.lock" "$ROOT/pyproject.toml" >"$VENV/.synced"
  fi
  [ -x "$FLINK_VENV/bin/python" ] || uv venv -q --python python3.11 "$FLINK_VENV"
  if [ "$(cat "$FLINK_VENV/.synced" 2>/dev/null)" != "$(stamp "$ROOT/flink/requirements.lock")" ]; then
    uv pip sync -q --python "$FLINK_VENV/bin/python" "$ROOT/flink/requirements.lock"
    stamp "$ROOT/flink/requirements.lock" >"$FLINK_VENV/.synced"
  fi
}

stamp() { cat "$@" | sha1sum | cut -c1-40; }  # stamp FILE...: what an install was made from

install_jars() {
  local made=$STATE/jars.stamp sum
  sum=$(stamp "$HERE/pom.xml")
  [ "$(cat "$made" 2>/dev/null)" = "$sum" ] && return 0
  say "resolving Kafka and the Flink Kafka connector from Maven Central"
  rm -rf "$STATE/kafka/libs" "$STATE/flink/lib"
  mvn -q -B -f "$HERE/pom.xml" -Dstack.dir="$STATE" package >"$LOGS/maven.log" 2>&1 \
    || { tail -n 20 "$LOGS/maven.log" >&2; die "maven could not resolve the stack's jars (log: $LOGS/maven.log)"; }
  echo "$sum" >"$made"
}

install() {
  mkdir -p "$RUN" "$LOGS"
  apt_install postgresql redis-server maven
  check_tools
  install_python
  install_jars
}

# --- process helpers -----------------------------------------------------------------------
pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }
running() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure_port_free() {
  local name=$1 port=${PORT[$1]:-}
  [ -z "$port" ] && return 0
  port_open "$port" || return 0
  local who; who=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'users:(([^)]*' | head -1 | cut -d'"' -f2)
  die "port $port, needed by $name, is taken by ${who:-another process}; stop it and run again"
}

# start NAME CMD...: run CMD in its own session (so `down` stops its children too), log to logs/NAME.log
start() {
  local name=$1; shift
  if running "$name"; then echo "  $name: already running"; return 0; fi
  ensure_port_free "$name"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

# start_supervised NAME CMD...: `start`, and CMD started again 5 s after it exits, as systemd's
# Restart=always or a Kubernetes pod would: Airflow's scheduler, triggerer and DAG processor exit when
# PostgreSQL goes away, and must come back with it. `stop` still ends CMD gracefully (TERM, then wait).
start_supervised() {
  local name=$1; shift
  start "$name" bash -c 'trap "kill -TERM \$child 2>/dev/null; wait \$child; exit 0" TERM INT
    while true; do
      "$@" & child=$!; wait "$child"; code=$?
      echo "$(date -u +%FT%TZ) stack.sh: exited with status $code; starting again in 5 s"
      sleep 5 & wait $!
    done' "$name" "$@"
}

wait_for() {  # wait_for NAME SECONDS CHECK...
  local name=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" 2>/dev/null; do
    if ! running "$name"; then tail -n 25 "$LOGS/$name.log" >&2 || true; die "$name exited while starting (log: $LOGS/$name.log)"; fi
    [ $SECONDS -lt $deadline ] || { tail -n 25 "$LOGS/$name.log" >&2 || true; die "$name not ready after ${seconds}s (log: $LOGS/$name.log)"; }
    sleep 1
  done
}

stop() {
  local name=$1 pid; pid=$(pid_of "$name")
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    echo "  $name: stopped"
  fi
  rm -f "$RUN/$name.pid"
}

# --- services ------------------------------------------------------------------------------
pg_bin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1; }
# (cd /: the postgres user may not be allowed into the checkout's directory)
pg() { (cd / && runuser -u postgres -- "$(pg_bin)/$1" "${@:2}"); }
psql_admin() { (cd / && runuser -u postgres -- psql -h "$PG_HOME" -p "${PORT[postgres]}" -v ON_ERROR_STOP=1 -qAtX "$@"); }

# --- generated credentials -----------------------------------------------------------------
# $STATE/secrets.env (mode 600), written at the first `up` and kept: the PostgreSQL roles' passwords,
# the database URLs made from them, the webapp's secret key, and a password for each Kafka principal
# (KAFKA_PASSWORD_<PRINCIPAL>: include/gpubroker/access.py) and each Redis user (REDIS_PASSWORD_<USER>:
# redis/users.acl). Every service started here gets the database settings in its environment, and
# the Kafka principal and Redis user of its own (`as_principal`), never another's. A shell gets them
# with `set -a; . .stack/secrets.env; set +a`, and is then Kafka's and Redis's admin (the file's last lines).
SECRETS=$STATE/secrets.env
token() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }
KAFKA_PRINCIPALS=()  # the nodes' own `broker`, then include/gpubroker/access.py's PRINCIPALS
REDIS_USERS=()       # the users of redis/users.acl (`default` is off)
OPERATOR=(GPUBROKER_KAFKA_USER GPUBROKER_KAFKA_PASSWORD GPUBROKER_REDIS_URL)  # an operator's shell: the admin

stack_secrets() {
  if [ ! -f "$SECRETS" ]; then
    local gpubroker airflow
    gpubroker=$(token) airflow=$(token)
    (umask 077 && cat >"$SECRETS" <<EOF
# GPUBroker local stack credentials, generated by astro/local/stack.sh. Keep this file private.
GPUBROKER_DB_PASSWORD=$gpubroker
AIRFLOW_DB_PASSWORD=$airflow
GPUBROKER_DATABASE_URL=postgresql://gpubroker:$gpubroker@127.0.0.1:${PORT[postgres]}/gpubroker
AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg2://airflow:$airflow@127.0.0.1:${PORT[postgres]}/airflow
GPUBROKER_SECRET_KEY=$(token)$(token)
EOF
    )
  fi
  chmod 600 "$SECRETS"
  [ ${#KAFKA_PRINCIPALS[@]} -gt 0 ] || KAFKA_PRINCIPALS=(broker $("$PY" -c 'from gpubroker.access import PRINCIPALS; print(*PRINCIPALS)'))
  [ ${#REDIS_USERS[@]} -gt 0 ] || REDIS_USERS=($(awk '$1 == "user" && $2 != "default" {print $2}' "$HERE/redis/users.acl"))
  local name lines=
  for name in "${KAFKA_PRINCIPALS[@]/#/KAFKA_PASSWORD_}" "${REDIS_USERS[@]/#/REDIS_PASSWORD_}"; do
    name=${name^^}
    grep -q "^$name=" "$SECRETS" || lines+="$name=$(token)"$'\n'  # (a stack from before these principals)
  done
  grep -q '^GPUBROKER_VAULT_TOKEN=' "$SECRETS" || lines+="GPUBROKER_VAULT_TOKEN=$(token)"$'\n'
  [ -z "$lines" ] || printf '%s' "$lines" >>"$SECRETS"
  set -a && . "$SECRETS" && set +a
  # the operator's lines, last and always current (a moved Redis port): a shell loading the file is the admin
  local operator="GPUBROKER_KAFKA_USER=admin
GPUBROKER_KAFKA_PASSWORD=$KAFKA_PASSWORD_ADMIN
GPUBROKER_REDIS_URL=$(redis_url admin)"
  local lines_of_operator; lines_of_operator="^($(IFS='|'; echo "${OPERATOR[*]}"))="
  if [ "$(grep -E "$lines_of_operator" "$SECRETS")" != "$operator" ]; then
    (umask 077 && { grep -v -E "$lines_of_operator" "$SECRETS"; printf '%s\n' "$operator"; } >"$SECRETS.new") \
      && mv "$SECRETS.new" "$SECRETS"
  fi
  # ... but no service started here is: each gets its own principal (`as_principal`); none inherits another's password
  unset "${OPERATOR[@]}"
  export -n $(compgen -v KAFKA_PASSWORD_) $(compgen -v REDIS_PASSWORD_) GPUBROKER_VAULT_TOKEN
  export GPUBROKER_ENV=local GPUBROKER_STATE=$STATE
}

redis_url() { local password=REDIS_PASSWORD_${1^^}; echo "redis://$1:${!password}@127.0.0.1:${PORT[redis]}/${2:-0}"; }

# as_principal KAFKA_PRINCIPAL [REDIS_USER]: this (sub)shell's Kafka principal and Redis user, for what it
# starts next (`(as_principal bridge bridge; start feed-bridge ...)`); without a Redis user, none.
as_principal() {
  local password=KAFKA_PASSWORD_${1^^}
  export GPUBROKER_KAFKA_USER=$1 GPUBROKER_KAFKA_PASSWORD=${!password}
  if [ -n "${2:-}" ]; then export GPUBROKER_REDIS_URL; GPUBROKER_REDIS_URL=$(redis_url "$2"); else unset GPUBROKER_REDIS_URL; fi
}

# The Airflow UI login: a password generated at the first `up` (or for a stack still on admin/admin).
airflow_password() {
  local file=$STATE/airflow/passwords.json
  if [ ! -f "$file" ] || grep -q "\"$AIRFLOW_USER\": \"admin\"" "$file"; then
    mkdir -p "$STATE/airflow"
    (umask 077 && printf '{"%s": "%s"}\n' "$AIRFLOW_USER" "$(token)" >"$file")
    say "generated the Airflow password for $AIRFLOW_USER (kept in $file)"
  fi
  chmod 600 "$file"
}

start_postgres() {
  stack_secrets
  if running postgres; then echo "  postgres: already running"; else run_postgres; fi
  if [ "$(psql_admin -c 'SHOW track_commit_timestamp')" != on ]; then  # started by an older stack.sh
    say "restarting PostgreSQL with track_commit_timestamp on"
    stop_postgres && run_postgres
  fi
  local role
  for role in gpubroker airflow; do
    psql_admin -c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role') THEN
                     CREATE ROLE $role LOGIN CREATEDB; END IF; END\$\$;"
    [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$role'")" = 1 ] \
      || psql_admin -c "CREATE DATABASE $role OWNER $role"
  done
  # The generated passwords, set at every start (so a stack made with the old ones moves to them);
  # through stdin, never on a command line.
  psql_admin <<SQL
ALTER ROLE gpubroker PASSWORD '$GPUBROKER_DB_PASSWORD';
ALTER ROLE airflow PASSWORD '$AIRFLOW_DB_PASSWORD';
SQL
}

run_postgres() {
  ensure_port_free postgres
  mkdir -p "$PG_HOME" && chown postgres:postgres "$PG_HOME" && chmod 700 "$PG_HOME"
  ln -sfn "$PG_HOME" "$STATE/postgres"
  if [ ! -f "$PG_HOME/data/PG_VERSION" ]; then
    say "initialising PostgreSQL in $PG_HOME/data"
    pg initdb -D "$PG_HOME/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >"$LOGS/postgres-init.log"
    cat >>"$PG_HOME/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = ${PORT[postgres]}
unix_socket_directories = '$PG_HOME'
max_connections = 200
shared_buffers = 256MB
EOF
  fi
  # commit timestamps: the outbox relay stamps each event with its landing's commit time (landed_at)
  pg pg_ctl -D "$PG_HOME/data" -l "$PG_HOME/postgres.log" -o "-c track_commit_timestamp=on -c port=${PORT[postgres]}" -w -t 60 start >/dev/null \
    || { tail -n 20 "$PG_HOME/postgres.log" >&2; die "PostgreSQL did not start"; }
  ln -sfn "$PG_HOME/postgres.log" "$LOGS/postgres.log"
  head -1 "$PG_HOME/data/postmaster.pid" >"$RUN/postgres.pid"
}

stop_postgres() {
  running postgres || { rm -f "$RUN/postgres.pid"; return 0; }
  pg pg_ctl -D "$PG_HOME/data" -m fast -w stop >/dev/null && echo "  postgres: stopped"
  rm -f "$RUN/postgres.pid"
}

# render TEMPLATE OUT NAME=VALUE...: TEMPLATE with each @NAME@ replaced, written mode 600. Bash only:
# the values (passwords among them) never reach a command line.
render() {
  local text pair
  text=$(<"$1")
  for pair in "${@:3}"; do text=${text//@${pair%%=*}@/${pair#*=}}; done
  (umask 077 && printf '%s\n' "$text" >"$2")
}

sha256() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }  # (printf is a builtin: no command line)

start_redis() {
  mkdir -p "$STATE/redis"
  local user pairs=()
  for user in "${REDIS_USERS[@]}"; do local password=REDIS_PASSWORD_${user^^}; pairs+=("${user^^}=$(sha256 "${!password}")"); done
  render "$HERE/redis/users.acl" "$STATE/redis/users.acl.new" "${pairs[@]}"
  (umask 077 && grep -v '^#' "$STATE/redis/users.acl.new" >"$STATE/redis/users.acl") && rm "$STATE/redis/users.acl.new"
  # Append-only file, synced every second: a restart keeps the feed stream, sessions, rate-limit
  # windows, breakers and the data version (a clean stop loses nothing, a crash at most 1 s).
  start redis redis-server --bind 127.0.0.1 --port "${PORT[redis]}" --dir "$STATE/redis" --save "" --appendonly yes \
    --appendfsync everysec --aclfile "$STATE/redis/users.acl"
  wait_for redis 30 port_open "${PORT[redis]}"
}

# Redis answers a client that gave no password: a Redis started before its ACL users
redis_open() {
  local reply
  exec 3<>"/dev/tcp/127.0.0.1/${PORT[redis]}" || return 1
  printf 'PING\r\n' >&3 && read -r -t 2 reply <&3
  exec 3>&-
  [[ $reply == +PONG* ]]
} 2>/dev/null

KAFKA_JAVA=(java -Xms256m -Xmx1g -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" -cp "$STATE/kafka/libs/*")
KAFKA_DATA=$STATE/kafka/data
# What Kafka's storage was formatted for; storage of another layout (before SASL: none) is formatted again.
KAFKA_LAYOUT="sasl-scram brokers=$KAFKA_BROKERS"
kafka_layout_changed() { [ -d "$KAFKA_DATA" ] && [ "$(cat "$KAFKA_DATA/layout" 2>/dev/null)" != "$KAFKA_LAYOUT" ]; }

# kafka_conf I: node I's server.properties (1-based), from kafka/server.properties
kafka_conf() {
  local i=$1 voters= n
  for n in $(seq 1 "$KAFKA_BROKERS"); do voters+=${voters:+,}$n@127.0.0.1:$((PORT[kafka] + 2 * (n - 1) + 1)); done
  local port=$((PORT[kafka] + 2 * (i - 1)))
  mkdir -p "$KAFKA_DATA/$i"
  render "$HERE/kafka/server.properties" "$STATE/kafka/server-$i.properties" NODE_ID="$i" VOTERS="$voters" \
    BIND=127.0.0.1 HOST=127.0.0.1 CLIENT_PORT="$port" CONTROLLER_PORT="$((port + 1))" DATA="$KAFKA_DATA/$i" \
    REPLICAS="$((KAFKA_BROKERS < 3 ? KAFKA_BROKERS : 3))" MIN_ISR="$((KAFKA_BROKERS < 3 ? 1 : 2))" \
    BROKER_PASSWORD="$KAFKA_PASSWORD_BROKER"
  echo "$STATE/kafka/server-$i.properties"
}

start_kafka() {
  local i node conf
  if kafka_layout_changed; then
    say "Kafka's storage is of another layout ($(cat "$KAFKA_DATA/layout" 2>/dev/null || echo 'no SASL, one broker')): formatting it again for $KAFKA_LAYOUT"
    say "(the topics start empty: the outbox keeps every event not yet published, and the relay sends it once Kafka is up)"
    for node in kafka kafka-2 kafka-3; do stop "$node"; done
    rm -rf "$KAFKA_DATA" "$STATE/kafka/server.properties"
  fi
  if [ ! -f "$KAFKA_DATA/layout" ]; then
    say "formatting Kafka (KRaft) storage: $KAFKA_LAYOUT"
    local cluster formats=() pid  # (the nodes at once: a JVM each; the id's first byte 0: it never starts with '-')
    cluster=$("$PY" -c 'import base64, uuid; print(base64.urlsafe_b64encode(b"\x00" + uuid.uuid4().bytes[1:]).decode().rstrip("="))')
    for i in $(seq 1 "$KAFKA_BROKERS"); do
      conf=$(kafka_conf "$i")
      "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format --cluster-id="$cluster" -c "$conf" >>"$LOGS/kafka-format.log" 2>&1 &
      formats+=($!)
    done
    for pid in "${formats[@]}"; do
      wait "$pid" || { tail -n 20 "$LOGS/kafka-format.log" >&2; die "kafka storage format failed"; }
    done
    echo "$KAFKA_LAYOUT" >"$KAFKA_DATA/layout"
  fi
  for i in "${!KAFKA_NODES[@]}"; do
    conf=$(kafka_conf $((i + 1)))
    start "${KAFKA_NODES[$i]}" "${KAFKA_JAVA[@]}" kafka.Kafka "$conf"
  done
  for node in "${KAFKA_NODES[@]}"; do wait_for "$node" 90 port_open "${PORT[$node]}"; done
  # the principals' SCRAM credentials and ACLs (as the nodes' own user), then the topics (as the admin)
  (export $(compgen -v KAFKA_PASSWORD_); "$PY" -m gpubroker.access --brokers "$KAFKA_BROKERS") >>"$LOGS/kafka.log" 2>&1 \
    || die "could not create the Kafka principals and ACLs (log: $LOGS/kafka.log)"
  (as_principal admin; "$PY" -m gpubroker.events) >>"$LOGS/kafka.log" 2>&1 \
    || die "could not create Kafka topics (log: $LOGS/kafka.log)"
}

replay_env() {
  export GPUBROKER_REPLAY_URL=http://127.0.0.1:${PORT[replay]}
  if [ "${GPUBROKER_VENDOR_MODE:-replay}" = replay ]; then
    eval "$("$PY" -m gpubroker_provider.replay.connections "$GPUBROKER_REPLAY_URL")"
  fi
}

# --- Vault ---------------------------------------------------------------------------------
# No Vault binary can be installed here, so the stack's Vault is the KV-v2-compatible test double the
# tests use (tests/vault_server.py; the compose file runs the real one), with one token
# (GPUBROKER_VAULT_TOKEN in secrets.env). Airflow's tasks and the webapp reach it as the connection
# gpubroker_vault: owners' integrations live there, and syncs read vendor keys from it first. It keeps
# secrets in memory only, so each `up` stores the pipeline's vendor keys in it again.
start_vault() {
  (export GPUBROKER_VAULT_TOKEN && cd "$ROOT" && start vault "$PY" -m tests.vault_server --port "${PORT[vault]}")
  wait_for vault 30 port_open "${PORT[vault]}"
}

vault_env() {
  export AIRFLOW_CONN_GPUBROKER_VAULT
  AIRFLOW_CONN_GPUBROKER_VAULT=$(PORT=${PORT[vault]} TOKEN=$GPUBROKER_VAULT_TOKEN "$PY" -c 'import json, os
print(json.dumps({"conn_type": "vault", "host": "127.0.0.1", "port": int(os.environ["PORT"]), "password": os.environ["TOKEN"],
                  "extra": {"auth_type": "token", "kv_engine_version": 2, "use_tls": False}}))')
}

store_pipeline_keys() {  # each vendor connection's key into Vault as the pipeline's (those not there yet)
  (airflow_env && "$PY" -m gpubroker_provider.integrations store-pipeline-keys) >>"$LOGS/vault.log" 2>&1 \
    || die "could not store the pipeline's vendor keys in Vault (log: $LOGS/vault.log)"
}

# --- Airflow -------------------------------------------------------------------------------
# The stack's Airflow: home .stack/airflow, metadata database `airflow`, UI/API on 8080. With
# GPUBROKER_AIRFLOW_INSTANCE=NAME a second, separate one beside it (home .stack/airflow-NAME, database
# airflow_NAME, port GPUBROKER_AIRFLOW_PORT, services NAME-airflow-*, DAGs paused at creation, no
# schedules, no triggerer; its metadata database is recreated at each start) shares the stack's PostgreSQL, Redis, Kafka, replay server and secrets:
# `GPUBROKER_AIRFLOW_INSTANCE=NAME GPUBROKER_AIRFLOW_PORT=8091 stack.sh airflow up|down`.
# Executor: GPUBROKER_EXECUTOR=local (LocalExecutor, default) or celery (CeleryExecutor: broker Redis
# database GPUBROKER_CELERY_REDIS_DB, default 2 (the app uses 0); results in the metadata database;
# one `airflow celery worker` of 4 task slots per CELERY_SERVICES). Switching a running stack: `stack.sh
# airflow down`, then `GPUBROKER_EXECUTOR=celery stack.sh up --no-sync`.
AF_INSTANCE=${GPUBROKER_AIRFLOW_INSTANCE:-}
AF=${AF_INSTANCE:+$AF_INSTANCE-}
AF_PORT=${GPUBROKER_AIRFLOW_PORT:-${PORT[airflow-api-server]}}
PORT[${AF}airflow-api-server]=$AF_PORT

executor_env() {
  case ${GPUBROKER_EXECUTOR:-local} in
    local) export AIRFLOW__CORE__EXECUTOR=LocalExecutor ;;
    celery)
      export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
      export AIRFLOW__CELERY__BROKER_URL; AIRFLOW__CELERY__BROKER_URL=$(redis_url pipeline "${GPUBROKER_CELERY_REDIS_DB:-2}")
      export AIRFLOW__CELERY__WORKER_CONCURRENCY=4
      export AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=gpubroker_provider.celery_config.CELERY_CONFIG ;;
    *) die "GPUBROKER_EXECUTOR is local or celery, not '$GPUBROKER_EXECUTOR'" ;;
  esac
}

airflow_env() {
  local secrets=$STATE/airflow home=$STATE/airflow${AF_INSTANCE:+-$AF_INSTANCE}
  mkdir -p "$secrets" "$home"
  [ -f "$secrets/fernet.key" ] || "$PY" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' >"$secrets/fernet.key"
  [ -f "$secrets/jwt.secret" ] || "$PY" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$secrets/jwt.secret"
  [ -f "$secrets/webhook.secret" ] || "$PY" -c 'import base64, os; print("whsec_" + base64.b64encode(os.urandom(24)).decode())' >"$secrets/webhook.secret"
  stack_secrets
  airflow_password
  [ -z "$AF_INSTANCE" ] || export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN%/*}/airflow_${AF_INSTANCE//-/_}
  export AIRFLOW_HOME=$home
  export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
  # The GPUBroker plugin is registered by its entry point (pyproject.toml); an empty plugins folder
  # spares every task process importing each module under plugins/ (hooks, CLI, replay server).
  export AIRFLOW__CORE__PLUGINS_FOLDER=$home/plugins
  mkdir -p "$AIRFLOW__CORE__PLUGINS_FOLDER"
  executor_env
  export AIRFLOW__CORE__LOAD_EXAMPLES=False
  export AIRFLOW__CORE__PARALLELISM=8
  export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=$([ -n "$AF_INSTANCE" ] && echo True || echo False)
  # a second instance runs only what is triggered: no scheduled runs (the stack's Airflow has them)
  export AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=$([ -n "$AF_INSTANCE" ] && echo False || echo True)
  export AIRFLOW__CORE__FERNET_KEY=$(cat "$secrets/fernet.key")
  export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$AF_PORT/execution/
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=$AIRFLOW_USER:admin
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$secrets/passwords.json
  export AIRFLOW__API__BASE_URL=http://127.0.0.1:$AF_PORT
  export AIRFLOW__API__WORKERS=1
  export AIRFLOW__API_AUTH__JWT_SECRET=$(cat "$secrets/jwt.secret")
  export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=20
  export AIRFLOW__LOGGING__BASE_LOG_FOLDER=$LOGS/airflow${AF_INSTANCE:+-$AF_INSTANCE}
  export AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT=300
  # The LocalExecutor's workers come from a forkserver that imported the heavy libraries once
  # (Great Expectations: ~8.5 s of CPU), so every task process starts with them (preload.py).
  export AIRFLOW__SCHEDULER__MP_START_METHOD=forkserver
  export AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD=gpubroker_provider.preload
  export GPUBROKER_STAGING_DIR=$STATE/staging
  export GPUBROKER_WEBHOOK_SECRET=$(cat "$secrets/webhook.secret")
  export GPUBROKER_WEBHOOK_ALLOWLIST=${GPUBROKER_WEBHOOK_ALLOWLIST:-}
  replay_env
  vault_env
}

# The triggerer's Kafka connection (its webhook AssetWatcher), as the principal of this shell
webhook_watcher_connection() {
  "$PY" -c 'import json; from gpubroker import settings
print(json.dumps({"conn_type": "kafka", "extra": settings.kafka_config() | {"group.id": settings.Groups.WEBHOOK_WATCHER,
      "auto.offset.reset": "earliest", "enable.auto.commit": False}}))'
}

start_airflow() {
  airflow_env
  local airflow=$VENV/bin/airflow migrated=$LOGS/${AF}airflow-migrate.log i
  if ! running "${AF}airflow-api-server"; then
    if [ -n "$AF_INSTANCE" ]; then airflow_database; else airflow_database_of_this_key; fi
    say "migrating the Airflow metadata database"
    "$airflow" db migrate >"$migrated" 2>&1 || { tail -n 20 "$migrated" >&2; die "airflow db migrate failed"; }
    "$airflow" pools set vendor_api 8 "Concurrent calls to GPU vendor APIs" >>"$migrated" 2>&1 \
      || die "could not create the vendor_api pool (log: $migrated)"
  fi
  # Each process as its own principal: the tasks (run by the scheduler's LocalExecutor, or the Celery
  # workers) as the pipeline, the triggerer's webhook watcher as `triggerer`; the API server and the
  # DAG processor use neither Kafka nor Redis. No log servers (they would listen on every address):
  # task logs are read from the shared log folder.
  start_supervised "${AF}airflow-api-server" "$airflow" api-server --port "$AF_PORT" --host 127.0.0.1
  (as_principal pipeline pipeline && start_supervised "${AF}airflow-scheduler" "$airflow" scheduler --skip-serve-logs)
  start_supervised "${AF}airflow-dag-processor" "$airflow" dag-processor
  # one triggerer per stack: its Kafka watcher's consumer group would be shared with a second one
  [ -n "$AF_INSTANCE" ] || (
    as_principal triggerer && export AIRFLOW_CONN_GPUBROKER_KAFKA && AIRFLOW_CONN_GPUBROKER_KAFKA=$(webhook_watcher_connection)
    start_supervised airflow-triggerer "$airflow" triggerer --skip-serve-logs)
  if [ "$AIRFLOW__CORE__EXECUTOR" = CeleryExecutor ]; then
    # Without DJANGO_SETTINGS_MODULE (e.g. inherited from pytest-django): Celery would set up Django,
    # which is the webapp's, not Airflow's.
    for i in $(seq 1 "${#CELERY_SERVICES[@]}"); do
      (as_principal pipeline pipeline && start "${AF}airflow-celery-worker-$i" env -u DJANGO_SETTINGS_MODULE "$airflow" \
        celery worker --celery-hostname "${AF}worker$i@%h" --skip-serve-logs)
    done
  fi
  wait_for "${AF}airflow-api-server" 180 curl -sf "http://127.0.0.1:$AF_PORT/api/v2/monitor/health" -o /dev/null
}

stop_airflow() {
  local name
  for name in celery-worker-2 celery-worker-1 triggerer dag-processor scheduler api-server; do stop "${AF}airflow-$name"; done
}

airflow_database() {  # a second instance's own metadata database, new at each start (no runs left over)
  local db=${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN##*/}
  psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db OWNER airflow"
}

# The metadata database holds rows encrypted with the Fernet key (triggers' arguments, connections,
# variables); a triggerer that cannot decrypt one dies. PostgreSQL's data lives outside the checkout
# (PG_HOME), so a checkout deleted and cloned again at the same path meets its predecessor's database
# with a new key: a database holding a row this key cannot decrypt is made again (its run history is
# unreadable anyway).
airflow_database_of_this_key() {
  local db=${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN##*/}
  [ -n "$(psql_admin -d "$db" -c "SELECT 1 FROM pg_tables WHERE tablename = 'alembic_version'")" ] || return 0
  psql_admin -d "$db" -c "SELECT kwargs FROM trigger WHERE kwargs NOT LIKE '{%'
    UNION ALL SELECT password FROM connection WHERE is_encrypted AND password IS NOT NULL
    UNION ALL SELECT extra FROM connection WHERE is_extra_encrypted AND extra IS NOT NULL
    UNION ALL SELECT val FROM variable WHERE is_encrypted AND val IS NOT NULL" | "$PY" -c '
import os, sys
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
keys = MultiFernet([Fernet(k) for k in os.environ["AIRFLOW__CORE__FERNET_KEY"].split(",")])
try:
    for token in sys.stdin.read().split():
        keys.decrypt(token.encode())
except InvalidToken:
    sys.exit(1)' && return 0
  say "the Airflow database '$db' holds rows another Fernet key encrypted (a new checkout at this path?): making it again"
  airflow_database
}

# The webapp: uvicorn with several worker processes (each its own event loop; rate limits, the L1
# cache and the data version are shared in Redis), Prometheus metrics merged across them.
export GPUBROKER_WEB_WORKERS=${GPUBROKER_WEB_WORKERS:-2}
# The pipeline's API key (unlimited plan; cache warming asks the webapp with it): created at the
# first start, kept in secrets.env like the passwords.
pipeline_key() {
  grep -q '^GPUBROKER_WEBAPP_API_KEY=' "$SECRETS" && return
  local key
  key=$(cd "$ROOT/webapp" && "$PY" manage.py create_api_key --plan unlimited --name pipeline | tail -n 1) \
    || die "could not create the pipeline's API key"
  printf 'GPUBROKER_WEBAPP_API_KEY=%s\n' "$key" >>"$SECRETS"
  export GPUBROKER_WEBAPP_API_KEY=$key
}

SERVICES+=(alert-matcher)  # alert rules -> webhook requests (webapp/alerts/matcher.py)
SERVICES+=(outbox-relay)  # each landing's events to Kafka as it commits (include/gpubroker/relay.py)
start_webapp() {
  export GPUBROKER_STAGING_DIR=$STATE/staging
  # Thousands of live WebSocket clients: one file descriptor each. Frames above 1 MiB close the
  # socket (1009); the app answers larger-than-64-KiB ones with an error frame (feed/protocol.py).
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  (
    as_principal api webapp
    (cd "$ROOT/webapp" && "$PY" manage.py migrate --no-input >"$LOGS/webapp-migrate.log" 2>&1) \
      || { tail -n 20 "$LOGS/webapp-migrate.log" >&2; die "webapp migrations failed"; }
    pipeline_key
    # The admin routes (webapp/admin_api) start warming and syncs as DAG runs through Airflow's REST API,
    # as the UI's user; with Airflow away, a sync runs in the webapp (a `gpubroker sync` subprocess, with
    # replay_env's vendor connections and an Airflow home of its own).
    airflow_password
    export GPUBROKER_AIRFLOW_API_URL=http://127.0.0.1:${PORT[airflow-api-server]} GPUBROKER_AIRFLOW_API_USER=$AIRFLOW_USER
    export GPUBROKER_AIRFLOW_API_PASSWORD
    GPUBROKER_AIRFLOW_API_PASSWORD=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
      "$STATE/airflow/passwords.json" "$AIRFLOW_USER")
    export AIRFLOW_HOME=$STATE/webapp-airflow
    replay_env
    vault_env  # integrations: owners' vendor keys (webapp/integrations)
    export PROMETHEUS_MULTIPROC_DIR=$RUN/prometheus  # emptied at each (re)start: old workers' counters go
    running webapp || { rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"; }
    # The live feed's fan-out (bench/push.py): uvicorn's sans-I/O WebSocket protocol (leaner per frame
    # and per connection), no permessage-deflate (it compressed every frame once per client, and kept
    # over 100 KiB of zlib state for each), glibc's malloc for Python objects (so the memory of clients that
    # left can go back to the system: feed/hub.py), and a worker busy for seconds (a full garbage
    # collection over 5,000 connections on a loaded machine) is not killed for one missed health check.
    export PYTHONMALLOC=malloc
    start webapp "$PY" -m uvicorn --app-dir "$ROOT/webapp" gpubroker_web.asgi:application \
      --host 127.0.0.1 --port "${PORT[webapp]}" --workers "$GPUBROKER_WEB_WORKERS" --lifespan on --no-access-log \
      --ws websockets-sansio --ws-per-message-deflate false --ws-max-size 1048576 --ws-ping-interval 20 \
      --ws-ping-timeout 20 --timeout-worker-healthcheck 30 \
      --forwarded-allow-ips "${GPUBROKER_TRUSTED_PROXIES:-}"  # X-Forwarded-For believed only from these (astro/README.md)
  )
  (as_principal bridge bridge && start feed-bridge "$PY" "$ROOT/webapp/manage.py" forward_events)
  (as_principal matcher && start alert-matcher "$PY" "$ROOT/webapp/manage.py" match_alerts)
  (as_principal pipeline && start outbox-relay "$PY" -m gpubroker.relay)
  wait_for webapp 60 curl -sf "http://127.0.0.1:${PORT[webapp]}/readyz" -o /dev/null
}

# Flink: a standalone session cluster (JobManager + 2 TaskManagers) from the distribution in the
# apache-flink wheel, configured by flink/cluster.py (state and checkpoints in .stack/flink); then the
# jobs, each submitted only when no job of its name runs (flink/README.md).
FLINK_CLUSTER=("$FLINK_VENV/bin/python" "$ROOT/flink/cluster.py")
FLINK_JOBS=(price_changes:gpubroker-price-changes analytics:gpubroker-analytics health_scores:gpubroker-health-scores)

flink_env() {
  export FLINK_CONF_DIR=$STATE/flink/conf FLINK_LOG_DIR=$LOGS/flink GPUBROKER_FLINK_LIB=$STATE/flink/lib
  mkdir -p "$FLINK_LOG_DIR"
}

flink_task_managers() {  # at least $1 TaskManagers registered
  local n; n=$(curl -sf "http://127.0.0.1:${PORT[flink-jobmanager]}/overview" | grep -o '"taskmanagers":[0-9]*' | cut -d: -f2)
  [ "${n:-0}" -ge "$1" ]
}

start_flink() {
  flink_env
  local home; home=$(dirname "$(ls -d "$FLINK_VENV"/lib/python3*/site-packages/pyflink/bin)")
  running flink-jobmanager || "${FLINK_CLUSTER[@]}" conf "$STATE/flink" --rest-port "${PORT[flink-jobmanager]}" \
    --rpc-port "${PORT[flink-rpc]}" >/dev/null \
    || die "could not write the Flink configuration"
  start flink-jobmanager bash "$home/bin/jobmanager.sh" start-foreground
  wait_for flink-jobmanager 120 curl -sf "http://127.0.0.1:${PORT[flink-jobmanager]}/overview" -o /dev/null
  start flink-taskmanager-1 bash "$home/bin/taskmanager.sh" start-foreground
  start flink-taskmanager-2 bash "$home/bin/taskmanager.sh" start-foreground
  wait_for flink-taskmanager-2 120 flink_task_managers 2
  local job
  for job in "${FLINK_JOBS[@]}"; do  # one `up` at a time submits: two would both find the job missing
    # as the `flink` principal: the job's Kafka tables carry its credentials (flink/common.py)
    (as_principal flink && flock "$RUN/flink-submit.lock" "${FLINK_CLUSTER[@]}" submit "$FLINK_CONF_DIR" "$ROOT/flink/${job%%:*}.py" \
      --name "${job#*:}" >>"$LOGS/flink/submit.log" 2>&1) \
      || { tail -n 20 "$LOGS/flink/submit.log" >&2; die "could not submit the Flink job ${job#*:} (log: $LOGS/flink/submit.log)"; }
  done
}

sync_once() {
  airflow_env
  say "running one sync (gpubroker_data_sync) from the ${GPUBROKER_VENDOR_MODE:-replay} vendors"
  "$PY" -m gpubroker_provider.airflow_api trigger gpubroker_data_sync --wait 600 \
    || die "the first sync did not succeed: see the Airflow UI (http://127.0.0.1:8080) and $LOGS/airflow"
}

up() {
  local do_sync=1
  [ "${1:-}" = --no-sync ] && do_sync=
  install
  stack_secrets
  if stack_outdated; then
    say "this stack was started before Kafka and Redis asked for credentials, or with another number of Kafka brokers:"
    say "stopping it, to start every service again with its own credentials"
    down
  fi
  say "starting the GPUBroker stack (state: $STATE)"
  start_postgres
  start_redis
  start_kafka
  replay_env
  start replay "$PY" -m gpubroker_provider.replay.server --port "${PORT[replay]}"
  wait_for replay 30 port_open "${PORT[replay]}"
  start_vault
  start_webapp
  start_flink
  start_airflow
  store_pipeline_keys
  [ -z "$do_sync" ] || sync_once
  status
  cat <<EOF

  Airflow UI   http://127.0.0.1:${PORT[airflow-api-server]}   (login: $AIRFLOW_USER / $(sed 's/.*: "\(.*\)".*/\1/' "$STATE/airflow/passwords.json"), kept in $STATE/airflow/passwords.json)
  Offers API   http://127.0.0.1:${PORT[webapp]}/api/v1/offers      (docs: /api/v1/docs)
  WebSocket    ws://127.0.0.1:${PORT[webapp]}/ws/providers/
  Replay       http://127.0.0.1:${PORT[replay]}/__replay__/health  (recorded vendor payloads)
EOF
}

# A stack started before Kafka and Redis asked for credentials, or with another number of brokers
stack_outdated() { kafka_layout_changed || { running redis && redis_open; }; }

down() {
  local i name
  for name in "${CELERY_SERVICES[@]}"; do stop "$name"; done
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    case ${SERVICES[$i]} in
      postgres) stop_postgres ;;
      kafka) stop_kafka ;;
      kafka-*) ;;
      *) stop "${SERVICES[$i]}" ;;
    esac
  done
}

stop_kafka() { local node; for node in kafka-3 kafka-2 kafka; do stop "$node"; done; }  # whatever GPUBROKER_KAFKA_BROKERS says now

url_of() {
  case $1 in
    postgres) echo "postgresql://gpubroker@127.0.0.1:${PORT[postgres]}/gpubroker" ;;
    redis) echo "redis://127.0.0.1:${PORT[redis]}/0 (ACL users)" ;;
    kafka*) echo "127.0.0.1:${PORT[$1]} (KRaft, SASL/SCRAM)" ;;
    replay) echo "http://127.0.0.1:${PORT[replay]}" ;;
    vault) echo "http://127.0.0.1:${PORT[vault]} (KV-v2 test double: tests/vault_server.py)" ;;
    airflow-api-server) echo "http://127.0.0.1:${PORT[airflow-api-server]}" ;;
    webapp) echo "http://127.0.0.1:${PORT[webapp]}/api/v1/offers" ;;
    flink-jobmanager) echo "http://127.0.0.1:${PORT[flink-jobmanager]} (Flink web UI)" ;;
    *) echo "-" ;;
  esac
}

status() {
  printf '\n%-24s %-6s %-8s %s\n' SERVICE STATE PID URL
  local name state
  for name in "${SERVICES[@]}" "${CELERY_SERVICES[@]}"; do
    if running "$name"; then state=up; else state=down; fi
    printf '%-24s %-6s %-8s %s\n' "$name" "$state" "$(pid_of "$name")" "$(url_of "$name")"
  done
  ! running flink-jobmanager || "${FLINK_CLUSTER[@]}" status "http://127.0.0.1:${PORT[flink-jobmanager]}" || true
}

mkdir -p "$RUN" "$LOGS"
case ${1:-} in
  install) install ;;
  test-tools) apt_install chromium fonts-liberation ;;  # the page tests' headless browser (tests/browser.py)
  up) up "${2:-}" ;;
  down) down ;;
  stop) case ${2:?usage: stack.sh stop SERVICE} in postgres) stop_postgres ;; *) stop "$2" ;; esac ;;
  airflow) case ${2:-} in up) start_airflow ;; down) stop_airflow ;; *) echo "usage: $0 airflow up|down" >&2; exit 2 ;; esac ;;
  kafka) case ${2:-} in up) install_jars; stack_secrets; start_kafka ;; down) stop_kafka ;; *) echo "usage: $0 kafka up|down" >&2; exit 2 ;; esac ;;
  redis) case ${2:-} in up) stack_secrets; start_redis ;; down) stop redis ;; *) echo "usage: $0 redis up|down" >&2; exit 2 ;; esac ;;
  services) printf '%s\n' "${SERVICES[@]}" ;;
  status) status ;;
  env) airflow_env; env | grep -E '^(AIRFLOW|GPUBROKER)' | grep -v -E 'FERNET|JWT|_CONN|SECRET|PASSWORD|DATABASE_URL|REDIS_URL|BROKER_URL|API_KEY' ;;
  logs) tail -n 100 -f "$LOGS/${2:?usage: stack.sh logs SERVICE}.log" ;;
  *) echo "usage: $0 install|test-tools|up [--no-sync]|down|stop SERVICE|airflow up|down|kafka up|down|redis up|down|services|status|logs SERVICE" >&2; exit 2 ;;
esac
