#!/usr/bin/env bash
# Every wheel this project needs, in one folder, for a Linux x86-64 machine that reaches no
# package registry (docs/offline-install.md). Run from the project root on a machine that has one:
#
#   bash scripts/offline_wheels.sh                     # CPU target, Python 3.11, into .whl/
#   bash scripts/offline_wheels.sh --gpu --python 3.12 # + jax's CUDA 12 plugin and NVIDIA libraries
#
# Options: --python X.Y (the target's Python), --glibc 2.N (the target's glibc: newer wheels are
# skipped), --dir DIR, --gpu (CUDA 12), --cuda 13 (a GPU whose driver wants CUDA 13). Then carry
# DIR over and, on the target, from a checkout:
#   python -m pip install --no-index --find-links .whl ".[test]"
set -euo pipefail

python_version=3.11 glibc=2.28 dir=.whl cuda=""
while (($#)); do
  case $1 in
    --python) python_version=$2; shift ;;
    --glibc) glibc=$2; shift ;;
    --dir) dir=$2; shift ;;
    --gpu) cuda=${cuda:-12} ;;
    --cuda) cuda=$2; shift ;;
    *) echo "usage: $0 [--python X.Y] [--glibc 2.N] [--dir DIR] [--gpu] [--cuda N]" >&2
       exit 2 ;;
  esac
  shift
done
[[ -f pyproject.toml ]] || { echo "run from the project root" >&2; exit 2; }

# pip takes a wheel for the target only if one of its tags is listed: every manylinux tag the
# target's glibc can load, in both spellings (manylinux_2_17 is also manylinux2014)
platforms=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64
           --platform manylinux1_x86_64)
for ((minor = ${glibc#2.}; minor >= 5; minor--)); do
  platforms+=(--platform "manylinux_2_${minor}_x86_64")
done

mkdir -p "$dir"
# the project's own wheel (pure Python): the target can then install without a checkout too
rm -f "$dir"/mjx_cikd-*.whl
python3 -m pip wheel -q --no-deps -w "$dir" .
wheel=$(ls "$dir"/mjx_cikd-*.whl)

requirements=("$wheel[test]" "setuptools>=68")  # setuptools: to install from a checkout too
if [[ -n $cuda ]]; then
  jax_pin=$(sed -n 's/^ *"jax==\([^"]*\)".*/\1/p' pyproject.toml)
  requirements+=("jax[cuda$cuda]==$jax_pin")
fi
python3 -m pip download -q --only-binary=:all: --implementation cp \
  --python-version "$python_version" "${platforms[@]}" -d "$dir" "${requirements[@]}"
echo "$(find "$dir" -name '*.whl' | wc -l) wheels, $(du -sh "$dir" | cut -f1), in $dir"
