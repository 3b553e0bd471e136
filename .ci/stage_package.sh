#!/usr/bin/env bash
# Assemble the package as it is installed (isosweep/ with orchestrator/, trainers/ and analysis/
# inside it) as plain files under DEST, for tools that cannot follow the editable install's
# package-dir mapping: the type checker, and a machine that runs the checkout without installing it.
#     bash .ci/stage_package.sh DEST      -> DEST/isosweep
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:?usage: stage_package.sh DEST}"
rm -rf "$dest/isosweep"
mkdir -p "$dest"
cp -r isosweep "$dest/isosweep"
for layer in orchestrator trainers analysis; do
    cp -r "$layer" "$dest/isosweep/$layer"
done
find "$dest/isosweep" -name __pycache__ -prune -exec rm -rf {} +
