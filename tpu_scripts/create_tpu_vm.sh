#!/usr/bin/env bash
# Creates a Cloud TPU VM for keras_si pretraining.
#   PROJECT=my-project BUCKET=gs://my-bucket ./tpu_scripts/create_tpu_vm.sh
set -euo pipefail
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "$0")/common.sh"

gcloud compute tpus tpu-vm create "$TPU_NAME" \
  --project="$PROJECT" \
  --zone="$ZONE" \
  --accelerator-type="$ACCELERATOR_TYPE" \
  --version="$RUNTIME_VERSION"

echo "Created $TPU_NAME ($ACCELERATOR_TYPE) in $ZONE. Next: ./tpu_scripts/setup_tpu_vm.sh"
