#!/usr/bin/env bash
# The device check for a lent GPU machine (torch + numpy there; no renderer, DVC or PyYAML):
# the paper-scale model for a fixed number of steps, eager and torch.compile'd, bf16 autocast +
# channels-last. Well under the 8-minute limit; its table goes to stdout (and --out FILE).
#   bash bench/gpu.sh                 # what a session runs on the device
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec timeout 420 python -m bench.gpu --device cuda --steps 60 --group 4 --compile "$@"
