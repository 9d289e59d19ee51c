#!/usr/bin/env bash
# Settings shared by the TPU scripts. Override any of them in the environment.
# Sourced, not run: `source "$(dirname "$0")/common.sh"`.

: "${PROJECT:?set PROJECT to your Google Cloud project id}"
: "${ZONE:=us-central2-b}"
: "${TPU_NAME:=keras-si-tpu}"
: "${ACCELERATOR_TYPE:=v4-8}"
# A TPU VM image with a TensorFlow-ready runtime; see the Cloud TPU docs for the
# image that matches TensorFlow 2.21 in your zone.
: "${RUNTIME_VERSION:=tpu-vm-tf-2.18.0-pjrt}"
# Where the pretraining data and the model directory live: TPUs read input from
# and write checkpoints to Cloud Storage, not the VM's disk.
: "${BUCKET:?set BUCKET to a gs:// bucket the TPU service account can read and write}"
: "${REPO_DIR:=keras_si}"

export PROJECT ZONE TPU_NAME ACCELERATOR_TYPE RUNTIME_VERSION BUCKET REPO_DIR

tpu_ssh() {
  # Runs a command on every worker of the TPU VM.
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" --project="$PROJECT" --zone="$ZONE" --worker=all --command="$1"
}
