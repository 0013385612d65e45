#!/usr/bin/env bash
# One node of docker-compose.yaml's three-broker Kafka cluster (apache/kafka image): the local stack's
# node configuration (kafka/server.properties, SASL and ACLs) with this node's id and host name; the
# storage is formatted at the first start. Environment: KAFKA_NODE_ID, KAFKA_HOST, KAFKA_VOTERS,
# KAFKA_CLUSTER_ID, KAFKA_PASSWORD_BROKER (the nodes' own user).
set -euo pipefail
conf=/tmp/server.properties data=/var/lib/kafka/data
text=$(</opt/gpubroker/kafka/server.properties)
for pair in NODE_ID="$KAFKA_NODE_ID" VOTERS="$KAFKA_VOTERS" BIND= HOST="$KAFKA_HOST" CLIENT_PORT=9092 \
            CONTROLLER_PORT=9093 DATA="$data" REPLICAS=3 MIN_ISR=2 BROKER_PASSWORD="$KAFKA_PASSWORD_BROKER"; do
  text=${text//@${pair%%=*}@/${pair#*=}}  # bash only: the password never reaches a command line
done
(umask 077 && printf '%s\n' "$text" >"$conf")
[ -f "$data/meta.properties" ] || /opt/kafka/bin/kafka-storage.sh format --cluster-id="$KAFKA_CLUSTER_ID" -c "$conf"
exec /opt/kafka/bin/kafka-server-start.sh "$conf"
