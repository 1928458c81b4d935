#!/usr/bin/env bash
# Apache Kafka, one node in KRaft mode, from Maven Central jars.
# Listeners: PLAINTEXT on $KAFKA_PORT, SASL_PLAINTEXT (PLAIN) on $KAFKA_SASL_PORT, controller on
# $KAFKA_CONTROLLER_PORT. The SASL user stands in for a Confluent Cloud apiKey/apiSecret.
source "$(dirname "$0")/../lib.sh"

JARS="$K2F_CACHE_DIR/kafka/$KAFKA_VERSION/libs"
DATA="$K2F_DATA_DIR/kafka"
CONF="$K2F_STATE_DIR/kafka/server.properties"

install() {
  maven_fetch "$JARS" "$K2F_ROOT/dev/kafka/pom.xml"
}

# The file holds the SASL user's password (the broker's JAAS line): readable by its owner only.
write_config() {
  mkdir -p "$(dirname "$CONF")" "$DATA"
  rm -f "$CONF"
  (umask 077 && cat > "$CONF") <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$KAFKA_SASL_PASSWORD";
log.dirs=$DATA
num.partitions=2
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
}

health() {
  port_open "$KAFKA_PORT" && port_open "$KAFKA_SASL_PORT" \
    && grep -q "Kafka Server started" "$K2F_LOG_DIR/kafka.log" 2>/dev/null
}

start() {
  if pid_alive kafka && health; then return 0; fi
  install
  port_free_or_die "$KAFKA_PORT" kafka
  write_config
  local cp="$JARS/*"
  local l4j="-Dlog4j.configuration=file:$K2F_ROOT/dev/kafka/log4j.properties"
  if [[ ! -f "$DATA/meta.properties" ]]; then
    log "formatting Kafka storage in $DATA"
    java "$l4j" -cp "$cp" kafka.tools.StorageTool format --ignore-formatted \
      -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null)" -c "$CONF" >&2
  fi
  : > "$K2F_LOG_DIR/kafka.log"
  start_bg kafka java -Xms256m -Xmx512m -XX:+UseG1GC "$l4j" -cp "$cp" kafka.Kafka "$CONF"
  wait_until 120 kafka health
  log "kafka healthy on 127.0.0.1:$KAFKA_PORT (PLAINTEXT) and :$KAFKA_SASL_PORT (SASL_PLAINTEXT)"
}

stop() { stop_bg kafka 30; }

service_main "$@"
