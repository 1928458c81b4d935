# shellcheck shell=bash
# One place for the local stack's settings. Every value can be overridden from the environment.
# Sourced by dev/stack.sh, the service scripts, the Makefile recipes and the tests' conftest (via env).

K2F_ROOT="${K2F_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
# Running state and logs: one git-ignored folder inside the checkout.
export K2F_STATE_DIR="${K2F_STATE_DIR:-$K2F_ROOT/.stack}"
# Downloads, virtual environments and built jars: shared by every checkout on the machine, so a fresh clone
# (as CI makes) starts warm. Keyed by version or lock-file hash, never overwritten in place.
export K2F_CACHE_DIR="${K2F_CACHE_DIR:-$HOME/.cache/kafka-to-fhir}"

# Versions (pinned; Prism must match apache-beam in requirements.txt).
export BEAM_VERSION="${BEAM_VERSION:-2.77.0}"
export KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
# Maven Central has no Java artifacts for BEAM_VERSION yet: the local KafkaIO expansion service and Java
# worker pool run the newest Beam Java release published there (docs/local-runner.md).
export BEAM_JAVA_VERSION="${BEAM_JAVA_VERSION:-2.73.0}"
export KAFKA_SCALA_VERSION="${KAFKA_SCALA_VERSION:-2.13}"

# Ports on 127.0.0.1.
export KAFKA_PORT="${KAFKA_PORT:-9092}"                       # PLAINTEXT
export KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}" # KRaft controller
export KAFKA_SASL_PORT="${KAFKA_SASL_PORT:-9094}"             # SASL_PLAINTEXT, PLAIN
export HAPI_PORT="${HAPI_PORT:-8080}"
export GCS_PORT="${GCS_PORT:-4443}"
export SECRET_MANAGER_PORT="${SECRET_MANAGER_PORT:-8095}"
# The stand-in's REST face, for the Kafka ConfigProvider on the Java workers; next to the gRPC port.
export SECRET_MANAGER_REST_PORT="${SECRET_MANAGER_REST_PORT:-$((SECRET_MANAGER_PORT + 1))}"
export PRISM_PORT="${PRISM_PORT:-8073}"                       # job service
export PRISM_UI_PORT="${PRISM_UI_PORT:-8074}"
export PY_WORKER_POOL_PORT="${PY_WORKER_POOL_PORT:-50000}"
export JAVA_WORKER_POOL_PORT="${JAVA_WORKER_POOL_PORT:-50001}"
export EXPANSION_SERVICE_PORT="${EXPANSION_SERVICE_PORT:-8097}"
export AIRFLOW_PORT="${AIRFLOW_PORT:-8088}"
export AIRFLOW_HEALTH_PORT="${AIRFLOW_HEALTH_PORT:-8974}"    # the scheduler's health check server

# Local credentials (synthetic, local only).
export KAFKA_SASL_USER="${KAFKA_SASL_USER:-k2f-client}"
export KAFKA_SASL_PASSWORD="${KAFKA_SASL_PASSWORD:-k2f-client-secret}"
export GCP_PROJECT="${GCP_PROJECT:-k2f-local}"
export GCS_ARCHIVE_BUCKET="${GCS_ARCHIVE_BUCKET:-k2f-archive}"
export GCS_ERROR_BUCKET="${GCS_ERROR_BUCKET:-k2f-errors}"
export KAFKA_SECRET_ID="${KAFKA_SECRET_ID:-kafka-connection}"
export KAFKA_SECRET_RESOURCE="projects/$GCP_PROJECT/secrets/$KAFKA_SECRET_ID/versions/latest"

# FHIR: the US Core package the project carries (include/fhir/README.md: provenance and licence).
export US_CORE_PACKAGE="${US_CORE_PACKAGE:-$K2F_ROOT/include/fhir/hl7.fhir.us.core-6.1.0.tgz}"
export HAPI_VALIDATE_US_CORE="${HAPI_VALIDATE_US_CORE:-false}"
export FHIR_BASE_URL="${FHIR_BASE_URL:-http://127.0.0.1:$HAPI_PORT/fhir}"

# Derived addresses the Python side reads.
export KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
export KAFKA_SASL_BOOTSTRAP="127.0.0.1:$KAFKA_SASL_PORT"
export STORAGE_EMULATOR_HOST="http://127.0.0.1:$GCS_PORT"
export SECRET_MANAGER_ENDPOINT="127.0.0.1:$SECRET_MANAGER_PORT"
export SECRET_MANAGER_REST_ENDPOINT="http://127.0.0.1:$SECRET_MANAGER_REST_PORT"
export PRISM_ENDPOINT="127.0.0.1:$PRISM_PORT"
