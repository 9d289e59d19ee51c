#!/usr/bin/env bash
# Copies pretraining TFRecords and the vocabulary to Cloud Storage, where the TPU reads them.
#   PROJECT=my-project BUCKET=gs://my-bucket ./tpu_scripts/copy_data_to_bucket.sh DATA_DIR [VOCAB_FILE]
# DATA_DIR holds the *.tfrecord* shards written by `python -m official.nlp.data.create_pretraining_data`.
set -euo pipefail
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "$0")/common.sh"

data_dir="${1:?usage: $0 DATA_DIR [VOCAB_FILE]}"
vocab_file="${2:-$(dirname "$0")/../official/nlp/corpus/vocab.txt}"

shopt -s nullglob
shards=("$data_dir"/*.tfrecord*)
if [[ ${#shards[@]} -eq 0 ]]; then
  echo "error: no *.tfrecord* files in $data_dir" >&2
  exit 1
fi
gcloud storage cp "${shards[@]}" "$BUCKET/data/"
gcloud storage cp "$vocab_file" "$BUCKET/data/vocab.txt"
echo "Copied ${#shards[@]} shards to $BUCKET/data/. Next: ./tpu_scripts/launch_pretraining.sh"
