#!/usr/bin/env bash
# Launches SIBERT (or BERT) pretraining with TPUStrategy on every worker of the TPU VM.
#   PROJECT=my-project BUCKET=gs://my-bucket ./tpu_scripts/launch_pretraining.sh [extra pretrain flags...]
# Defaults follow the paper for SIBERT-base; pass e.g. --model=bert or --config=large to change them.
set -euo pipefail
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "$0")/common.sh"

: "${MODEL:=sibert}"
: "${CONFIG:=base}"
: "${GLOBAL_BATCH_SIZE:=256}"
: "${TRAIN_STEPS:=1000000}"
: "${RUN_NAME:=${MODEL}_${CONFIG}}"

extra=""
for arg in "$@"; do
  extra+=" $(printf '%q' "$arg")"
done

# --tpu=local: the TPU is attached to this VM. Input and model_dir on Cloud Storage.
tpu_ssh "cd ~/$REPO_DIR && nohup .venv/bin/python -m official.nlp.pretrain \
  --strategy=tpu --tpu=local \
  --model=$MODEL --config=$CONFIG \
  --input_files='$BUCKET/data/*.tfrecord*' --vocab_file=$BUCKET/data/vocab.txt \
  --global_batch_size=$GLOBAL_BATCH_SIZE --train_steps=$TRAIN_STEPS \
  --steps_per_execution=1000 --mixed_precision_policy=mixed_bfloat16 \
  --model_dir=$BUCKET/runs/$RUN_NAME$extra > ~/pretrain_$RUN_NAME.log 2>&1 &"

echo "Launched. Follow with: gcloud compute tpus tpu-vm ssh $TPU_NAME --zone=$ZONE --worker=0 --command='tail -f ~/pretrain_$RUN_NAME.log'"
echo "TensorBoard: tensorboard --logdir=$BUCKET/runs/$RUN_NAME"
