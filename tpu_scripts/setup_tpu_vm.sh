#!/usr/bin/env bash
# Copies this checkout to every worker of the TPU VM and installs it in a virtualenv there.
#   PROJECT=my-project BUCKET=gs://my-bucket ./tpu_scripts/setup_tpu_vm.sh
set -euo pipefail
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "$0")/common.sh"

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
archive="$(mktemp -t keras_si.XXXXXX.tar.gz)"
trap 'rm -f "$archive"' EXIT
# Only the tracked files: no local virtualenv, runs or data.
git -C "$repo_root" archive --format=tar.gz --prefix="$REPO_DIR/" -o "$archive" HEAD

gcloud compute tpus tpu-vm scp "$archive" "$TPU_NAME:~/keras_si.tar.gz" \
  --project="$PROJECT" --zone="$ZONE" --worker=all

# tensorflow-tpu comes from Google's libtpu index; the rest from PyPI.
tpu_ssh "set -e
rm -rf ~/$REPO_DIR && tar -xzf ~/keras_si.tar.gz -C ~
cd ~/$REPO_DIR
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q 'tensorflow-tpu==2.21.*' -f https://storage.googleapis.com/libtpu-tf-releases/index.html
.venv/bin/pip install -q -r requirements.txt -e .
.venv/bin/python -c 'import keras_si, tensorflow as tf; print(\"keras_si ok, tf\", tf.__version__)'"

echo "Installed on $TPU_NAME. Next: ./tpu_scripts/copy_data_to_bucket.sh"
