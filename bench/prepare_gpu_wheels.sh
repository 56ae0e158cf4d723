#!/usr/bin/env bash
# Download, here, the wheels that bench/gpu_session.sh installs on the GPU machine, into .whl/ (ignored by git).
#
# The GPU machine runs Python 3.12 on x86-64 and reaches no package registry. Its image already holds torch,
# triton, torchvision, numpy, pillow, scipy, pytest, pytest-benchmark and pytest-xdist
# (/work/.library/device/KINDS.md); of ddx's dependencies it lacks only these two:
#   pytorch-fid  pure Python; Requires-Dist: numpy, pillow, scipy, torch, torchvision (all on the image)
#   nvtx         a compiled wheel (cp312 manylinux); no Requires-Dist
# The versions are the ones this project is developed against. The script fails if a wheel requires
# anything the image lacks. Usage: bash bench/prepare_gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(pytorch-fid==0.3.0 nvtx==0.2.17)
# What the GPU image already has of the wheels' requirements (normalised names).
ON_IMAGE="numpy pillow scipy torch torchvision"

if ! grep -qxF '/.whl/' .git/info/exclude 2>/dev/null; then
    mkdir -p .git/info
    echo '/.whl/' >>.git/info/exclude
fi
rm -rf .whl
mkdir -p .whl

python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d .whl "${WHEELS[@]}"

# Each wheel's Requires-Dist (extras left out) must be on the image.
missing=$(python3 - "$ON_IMAGE" .whl/*.whl <<'PY'
import re, sys, zipfile

on_image = set(sys.argv[1].split())
for wheel in sys.argv[2:]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        for line in archive.read(metadata).decode().splitlines():
            if line.startswith("Requires-Dist:") and "extra ==" not in line:
                name = re.match(r"Requires-Dist:\s*([A-Za-z0-9_.-]+)", line).group(1)
                if re.sub(r"[-_.]+", "-", name).lower() not in on_image:
                    print(f"{wheel} needs {name}, which the GPU image lacks: add it to WHEELS")
PY
)
ls -l .whl
if [[ -n $missing ]]; then
    echo "$missing" >&2
    exit 1
fi
