#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one go, for a machine that has one (CI has none):
#   1. tests/gpu: models, layer placement, every engine's workers and RLlib's DQN learner on CUDA,
#      each against the same computation on the CPU;
#   2. benchmarks/dqn_network.py: the seed's Q-network's learner updates/s and actions/s, CPU and GPU;
#   3. benchmarks/ps_gpu.py (one round): parameter-server workers on the GPU, shards on CPUs, beside
#      allreduce on the GPU and the plain loop there, N=1 and N=2 sharing it;
#   4. the seed's Ms. Pac-Man DQN (jobs/mspacman_dqn.yaml) with its learner on the GPU for
#      DQN_SECONDS of training, then `skate report` (its learning curve).
# Each step has a time limit and a failure does not stop the next. Usage, from the repository root:
#   PYTHON=.venv/bin/python benchmarks/gpu_checks.sh OUT_DIR [DQN_SECONDS=300] [TOTAL_SECONDS]
# With TOTAL_SECONDS, the Ms. Pac-Man run is shortened so that the whole script ends within it.
# OUT_DIR gets at most 9 files: gpu.txt, tests.log, dqn_network.jsonl, ps_gpu.jsonl, mspacman.log, and the Ms. Pac-Man
# run's metrics.parquet, learning_curves.png and summary.json (prefixed mspacman_).
set -u
out=${1:?usage: gpu_checks.sh OUT_DIR [DQN_SECONDS]}
seconds=${2:-300}
total=${3:-}
start=$(date +%s)
python=${PYTHON:-python3}
runs=$(mktemp -d)
mkdir -p "$out"
export PYTHONUNBUFFERED=1

stamp() { echo "== $(date +%T) $*"; }

stamp "gpu"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
$python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())" \
  | tee -a "$out/gpu.txt"

stamp "tests/gpu"
timeout 300 $python -m pytest -q -s -p no:cacheprovider tests/gpu > "$out/tests.log" 2>&1
echo "pytest exit $?" >> "$out/tests.log"
grep -E "difference|passed|failed|error" "$out/tests.log" | tail -12

stamp "benchmarks/dqn_network.py"
timeout 150 $python benchmarks/dqn_network.py --seconds 3 2>&1 | tee "$out/dqn_network.jsonl"

stamp "benchmarks/ps_gpu.py"
timeout 300 $python benchmarks/ps_gpu.py --rounds 1 2>&1 | tee "$out/ps_gpu.jsonl"

if [ -n "$total" ]; then  # leave ~80 s for building the algorithm, the last iteration and the report
  left=$((start + total - $(date +%s) - 80))
  [ "$left" -lt "$seconds" ] && seconds=$left
fi
stamp "mspacman_dqn on the gpu for ${seconds}s"
timeout $((seconds + 150)) $python -m skate run jobs/mspacman_dqn.yaml --set rl.gpus_per_learner=1 \
  --set rl.stop.time_s="$seconds" --no-progress --root "$runs" > "$out/mspacman.log" 2>&1
echo "skate run exit $?" >> "$out/mspacman.log"
tail -25 "$out/mspacman.log"
run=$(ls -d "$runs"/mspacman_dqn-* 2>/dev/null | tail -1)
if [ -n "$run" ]; then
  timeout 60 $python -m skate report "$run" >> "$out/mspacman.log" 2>&1
  for f in metrics.parquet learning_curves.png summary.json; do
    [ -f "$run/$f" ] && cp "$run/$f" "$out/mspacman_$f"
  done
fi
stamp "done"
