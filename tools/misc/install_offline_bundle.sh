#!/usr/bin/env bash
# Install a bundle of tools/misc/offline_bundle.sh on a machine that has its
# own torch but no package index (e.g. a GPU machine), without touching its
# Python: the wheels go into a folder of their own (SITE, default
# /tmp/dcama_mm_site_<uid>), mmcv is built against the machine's own torch
# unless the bundle carries a wheel that imports (CPU ops only:
# tools/misc/build_mmcv.sh, about 32 CPU-minutes, in parallel through the
# carried ninja), and the stack is checked by importing it. Use it with
#   export PYTHONPATH=SITE:<this repository>
# as the last line printed says (tools/analysis_tools/gpu_check.sh
# --bundle DIR does all of this itself).
#
# Usage: bash tools/misc/install_offline_bundle.sh BUNDLE [SITE]
# Python: $PYTHON, else python3. A SITE that already holds this bundle's
# installation (and imports) is reused; an existing folder that this script
# did not make is refused (installing replaces folders such as bin/ in it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ "$#" -lt 1 ] || [ "$#" -gt 2 ]; then
    echo "usage: bash tools/misc/install_offline_bundle.sh BUNDLE [SITE]" >&2
    exit 2
fi
SITE="${2:-/tmp/dcama_mm_site_$(id -u)}"
PY="${PYTHON:-python3}"
CHECK="${DCAMA_MM_BUNDLE_CHECK:-import mmcv.ops, mmseg.models, mmpretrain.models, pycocotools, dcama_mm}"
MARK=.dcama_mm_site    # made with the folder: it is ours
STAMP=.dcama_mm_bundle # the BUNDLE.txt of a finished installation
log() { printf '[install_offline_bundle] %s\n' "$*" >&2; }

if [ ! -d "$1" ]; then
    echo "error: the bundle folder '$1' does not exist; make one with" \
        "'bash tools/misc/offline_bundle.sh --python-version X.Y' where a package" \
        "index is reachable, and carry it here." >&2
    exit 2
fi
BUNDLE="$(cd "$1" && pwd)"
if [ ! -f "$BUNDLE/BUNDLE.txt" ]; then
    echo "error: '$1' is not a bundle of tools/misc/offline_bundle.sh (no BUNDLE.txt in it);" \
        "make one with 'bash tools/misc/offline_bundle.sh --python-version X.Y' where" \
        "a package index is reachable, and carry the folder here." >&2
    exit 2
fi
if ! PY="$(command -v "$PY")" || ! "$PY" -c 'import torch' >/dev/null 2>&1; then
    echo "error: ${PYTHON:-python3} cannot import torch: the bundle holds no torch; set" \
        "PYTHON to the interpreter that has the machine's torch." >&2
    exit 2
fi
case "$PY" in /*) ;; *) PY="$PWD/$PY" ;; esac
HAVE="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
WANT="$(sed -n 's/^# dcama_mm offline bundle for CPython \([0-9.]*\) .*/\1/p' "$BUNDLE/BUNDLE.txt")"
if [ "$HAVE" != "$WANT" ]; then
    echo "error: the bundle '$BUNDLE' is for Python $WANT, but $PY is Python $HAVE;" \
        "make one with 'bash tools/misc/offline_bundle.sh --python-version $HAVE'." >&2
    exit 2
fi
if [ -e "$SITE" ]; then
    if [ ! -d "$SITE" ] || [ ! -O "$SITE" ] \
        || { [ -n "$(ls -A "$SITE")" ] && [ ! -f "$SITE/$MARK" ]; }; then
        echo "error: the install folder '$SITE' already exists and was not made by this" \
            "script for you (installing would replace folders such as bin/ in it);" \
            "give a new folder as SITE (gpu_check.sh: --site)." >&2
        exit 2
    fi
fi
mkdir -p "$SITE"
touch "$SITE/$MARK"
SITE="$(cd "$SITE" && pwd)"

export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$SITE/bin:$PATH"  # the carried ninja, for the mmcv build
if [ -f "$SITE/$STAMP" ] && cmp -s "$SITE/$STAMP" "$BUNDLE/BUNDLE.txt" \
    && "$PY" -c "$CHECK" >/dev/null 2>&1; then
    log "reusing the installation in $SITE"
    printf 'export PYTHONPATH=%q\n' "$PYTHONPATH"
    exit 0
fi

START=$SECONDS
rm -f "$SITE/$STAMP"
shopt -s nullglob
WHEELS=("$BUNDLE"/*.whl)
log "installing ${#WHEELS[@]} wheels into $SITE"
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --disable-pip-version-check --upgrade --target "$SITE" "${WHEELS[@]}"
SOURCES=("$BUNDLE"/mmcv-*.tar.gz)
PREBUILT=("$BUNDLE"/mmcv-*.whl)
MMCV_STATUS=0
if [ "${#SOURCES[@]}" -gt 0 ]; then
    MMCV_ERR="$("$PY" -c 'import mmcv.ops' 2>&1)" || MMCV_STATUS=$?
fi
if [ "$MMCV_STATUS" -ne 0 ]; then
    if [ "${#PREBUILT[@]}" -gt 0 ]; then
        # a wheel of another torch raises an ImportError; a damaged one can
        # kill Python without a word (e.g. SIGBUS, status 135)
        WHY="$(echo "$MMCV_ERR" | tail -n1)"
        log "the bundle's $(basename "${PREBUILT[0]}") does not import with this torch" \
            "(${WHY:-'import mmcv.ops' exits with status $MMCV_STATUS and prints nothing}):" \
            "building mmcv here instead"
    fi
    MMCV_WHEEL="$(bash "$ROOT/tools/misc/build_mmcv.sh" "$PY" "${SOURCES[0]}" "$SITE/.mmcv_wheel" | tail -n1)"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --disable-pip-version-check --upgrade --target "$SITE" "$MMCV_WHEEL"
fi
if ! ERR="$("$PY" -c "$CHECK" 2>&1)"; then
    echo "error: after installing '$BUNDLE' into $SITE the stack does not import" \
        "($CHECK):" >&2
    echo "$ERR" | tail -n 5 >&2
    exit 1
fi
cp "$BUNDLE/BUNDLE.txt" "$SITE/$STAMP"
log "installed in $((SECONDS - START)) s; the stack imports"
printf 'export PYTHONPATH=%q\n' "$PYTHONPATH"
