#!/usr/bin/env bash
# The device check for a lent GPU machine (torch, numpy 2, h5py, scikit-learn there; no renderer,
# DVC or dvclive), one call of at most 8 minutes (150 s + 320 s, and the copies):
#   1. `bench.gpu`: the paper-scale model (150 px, 200-d code) on synthetic minibatches, eager
#      and torch.compile'd, bf16 autocast + channels-last: images/s, ms/step, GPU memory, and
#      whether the loss fell (at most GPU_BENCH_S seconds).
#   2. If the faces shards were carried (data/faces), `bench.identity_curve` on them: the faces
#      DC-IGN trained for CURVE_STEPS steps, far past what 2 CPU cores do in 30 minutes, scored
#      every CURVE_EVERY steps (identity retrieval, test MSE) and at the end as the evaluate
#      stage scores it. Three runs side by side, each cut at CURVE_S seconds: today's defaults
#      at seeds 0 and 1, and the paper's widths (200-d code, enc 96/48/24, dec 48/96/96).
#      On the H200 (2026-12-04) 20,000 steps took ~270 s and the final scoring up to ~150 s
#      more: a cut final is scored at home, `python -m bench.identity_curve --name NAME
#      --score-only` with the model in bench/out/identity/NAME/run/ (bench/RESULTS.md).
# Everything lands flat in $OUT (the device tool's folder; bench/out/gpu elsewhere), at most
# 8 files: log.txt, gpu.md, curve-NAME.json and model-NAME.pt (the finished model, or the last
# checkpoint of a run that was cut; no optimizer state).
#   device run: command "bash bench/gpu.sh", carry ["data/faces"], timeout_s 540
#   a dry run on a CPU: BENCH_ARGS="--device cpu --size 40 --latent 8 --steps 4 --warmup 1" \
#       CURVE_DEVICE=cpu CURVE_STEPS=4 CURVE_EVERY=2 bash bench/gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench/out/gpu}
work=${WORK:-$(mktemp -d)}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}  # the lent machine has python3, not python
exec > >(tee -a "$out/log.txt") 2>&1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$py" -c "import torch, numpy, h5py, sklearn; print('torch', torch.__version__, 'numpy',
numpy.__version__, 'h5py', h5py.__version__, 'sklearn', sklearn.__version__)"
nproc

if [[ ${BENCH:-1} == 1 ]]; then  # BENCH=0: the identity curves alone
    # shellcheck disable=SC2086  # BENCH_ARGS is a list of arguments
    timeout "${GPU_BENCH_S:-150}" "$py" -m bench.gpu \
        ${BENCH_ARGS:---device cuda --steps 60 --group 4 --compile} --out "$out/gpu.md"
    echo "bench.gpu exit $?"
fi

if [[ ! -d data/faces/train ]]; then
    echo "no data/faces: identity curves skipped (carry data/faces)"
    exit 0
fi
steps=${CURVE_STEPS:-20000}
every=${CURVE_EVERY:-2500}
dev=${CURVE_DEVICE:-cuda}
paper=(--set train.latent_dim=200 --set "train.enc_channels=[96,48,24]"
       --set "train.dec_channels=[48,96,96]")
curve() {  # NAME ARGS...: one time-boxed run
    local name=$1
    shift
    timeout "${CURVE_S:-320}" "$py" -m bench.identity_curve --name "$name" --root "$work" \
        --steps "$steps" --every "$every" --threads 4 --no-curves \
        --set "train.device=$dev" "$@" > "$work/$name.log" 2>&1
    echo "identity_curve $name exit $?"
}
pids=()
curve gpu-default-s0 --seed 0 & pids+=($!)
curve gpu-default-s1 --seed 1 & pids+=($!)
curve gpu-paper-widths --seed 0 "${paper[@]}" & pids+=($!)
wait "${pids[@]}"  # not a bare wait: that would also wait for the log's tee
for run in gpu-default-s0 gpu-default-s1 gpu-paper-widths; do
    echo "== $run"
    tail -n 5 "$work/$run.log"
    cp "$work/$run/curve.json" "$out/curve-$run.json" 2>/dev/null
    for ckpt in "$work/$run/run/model.pt" "$work/$run/run/partial/last.pt"; do
        if [[ -f $ckpt ]]; then  # without Adam's moments: under the tool's 16 MiB a file
            "$py" -c "import sys, torch; c = torch.load(sys.argv[1], weights_only=False)
c['optimizer_state'] = None; torch.save(c, sys.argv[2])" "$ckpt" "$out/model-$run.pt"
            break
        fi
    done
done
ls -la "$out"
