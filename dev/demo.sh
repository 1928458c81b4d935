#!/usr/bin/env bash
# `make demo`: start the local stack and run the main job on it.
source "$(dirname "$0")/lib.sh"
cd "$K2F_ROOT"
bash dev/stack.sh up
bash dev/stack.sh status
cat <<MSG

The local stack is up:
  Kafka          127.0.0.1:$KAFKA_PORT (PLAINTEXT), 127.0.0.1:$KAFKA_SASL_PORT (SASL_PLAINTEXT)
  HAPI FHIR      $FHIR_BASE_URL
  GCS emulator   $STORAGE_EMULATOR_HOST (buckets $GCS_ARCHIVE_BUCKET, $GCS_ERROR_BUCKET)
  Secret Manager $SECRET_MANAGER_ENDPOINT (secret projects/$GCP_PROJECT/secrets/$KAFKA_SECRET_ID)
  Beam (Prism)   job service 127.0.0.1:$PRISM_PORT, UI http://127.0.0.1:$PRISM_UI_PORT
  Airflow        http://127.0.0.1:$AIRFLOW_PORT (login admin / admin)

The streaming pipeline and its DAGs are not built yet, so the demo stops here. Try the mapping on the
sample messages without Kafka:
  $(k2f_python) -m beam_pipeline.transform --input include/sample_messages/01_original_readme_sample.json

Stop everything with: make down
MSG
