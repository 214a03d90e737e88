#!/usr/bin/env bash
# Run the pipeline on the small CI params at BASE and at HEAD, then gate HEAD's metrics against
# BASE's: a Markdown report on stdout (and in metrics-report.md), exit 1 on a regression.
#   usage: bash ci/metrics.sh [BASE]     (default origin/main; needs `make install` first)
set -euo pipefail
base=${1:-origin/main}
root=$(git rev-parse --show-toplevel)
bin="$root/.venv/bin"
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/base" 2>/dev/null || true;
      git -C "$root" worktree remove --force "$work/head" 2>/dev/null || true; rm -rf "$work"' EXIT
mapfile -t sets < <(grep -v '^\s*#' "$root/ci/small-overrides.txt" | grep -v '^\s*$' | sed 's/^/--set=/')
for side in base head; do
  rev=$([ "$side" = base ] && echo "$base" || echo HEAD)
  git -C "$root" worktree add --quiet --detach "$work/$side" "$rev"
  # PYTHONPATH makes each side run its own code with the shared environment.
  (cd "$work/$side" && export PYTHONPATH="$work/$side" PATH="$bin:$PATH" &&
   dcign params "${sets[@]}" --write params.yaml &&
   dvc repro --quiet)
done
report="$root/metrics-report.md"
rc=0
"$bin/dcign" gate --base "$work/base/metrics" --new "$work/head/metrics" \
  --params "$work/head/params.yaml" --out "$report" || rc=$?
# Beside the gate's verdicts: the committed default-run metrics of the two revisions.
{ echo; echo "Committed metrics of the default run (\`dvc metrics diff $base HEAD\`):"; echo;
  (cd "$root" && "$bin/dvc" metrics diff "$base" HEAD --md) || echo "(dvc metrics diff failed)"
} >> "$report"
exit "$rc"
