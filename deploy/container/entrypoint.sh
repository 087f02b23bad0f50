#!/bin/sh
# The image's entrypoint: prepare ARGUS_HOME (a volume), then run `argus "$@"`.
#
# - The detector converted at build time (ARGUS_SEED_MODELS) is copied into
#   $ARGUS_HOME/models at the first start (each container has a volume of its own), where
#   `argus models quantize` / `add` can register more.  A volume kept across an image
#   upgrade keeps the model it has: delete $ARGUS_HOME/models/<name> to take the new one.
# - With onnxruntime-gpu's CUDA and cuDNN wheels (the GPU image), their libraries are put on
#   LD_LIBRARY_PATH so the CUDA provider finds them.
set -eu

home="${ARGUS_HOME:-/var/lib/argus}"
seed="${ARGUS_SEED_MODELS:-}"
if [ -n "$seed" ] && [ -d "$seed" ]; then
    mkdir -p "$home/models"
    for model in "$seed"/*/; do
        name=$(basename "$model")
        if [ ! -e "$home/models/$name/manifest.json" ]; then
            rm -rf "$home/models/$name.partial" "$home/models/$name"   # a copy cut short
            cp -R "$model" "$home/models/$name.partial"
            mv "$home/models/$name.partial" "$home/models/$name"
            echo "argus-entrypoint: model $name copied into $home/models" >&2
        fi
    done
fi

nvidia=$(python -c 'import glob, os, sys; print(":".join(sorted(glob.glob(os.path.join(sys.prefix, "lib", "python3*", "site-packages", "nvidia", "*", "lib")))))')
if [ -n "$nvidia" ]; then
    export LD_LIBRARY_PATH="$nvidia${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

exec argus "$@"
