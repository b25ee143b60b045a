#!/usr/bin/env bash
# Creates the virtualenvs of the tools inferwatch is measured against; they are not
# dependencies of inferwatch.
#   bash bench/setup_anchors.sh            # all
#   bash bench/setup_anchors.sh evidently  # bench/.venv-anchors only (drift_report.py)
#   bash bench/setup_anchors.sh whylogs    # bench/.venv-whylogs only (profile_ingest.py)
#   bash bench/setup_anchors.sh nannyml    # bench/.venv-nannyml only (performance_estimation.py)
set -euo pipefail
cd "$(dirname "$0")"
which="${1:-all}"
case "$which" in all | evidently | whylogs | nannyml) ;; *)
    echo "usage: $0 [all|evidently|whylogs|nannyml]" >&2
    exit 2
    ;;
esac

if [ "$which" = all ] || [ "$which" = evidently ]; then
    # Evidently 0.7 (the drift-report anchor) needs pandas < 3.
    python3 -m venv .venv-anchors
    .venv-anchors/bin/python -m pip install -q --upgrade pip
    .venv-anchors/bin/python -m pip install -q "evidently>=0.7,<0.8" "pandas<3" pyarrow
    echo "anchors ready: $(.venv-anchors/bin/python -c 'import evidently; print("evidently", evidently.__version__)')"
fi

if [ "$which" = all ] || [ "$which" = whylogs ]; then
    # whylogs 1.6 (the profile-ingestion anchor) needs numpy < 2 and pandas < 2.3: its own venv.
    python3 -m venv .venv-whylogs
    .venv-whylogs/bin/python -m pip install -q --upgrade pip
    .venv-whylogs/bin/python -m pip install -q "whylogs>=1.6,<1.7" "numpy<2" "pandas<2.3"
    echo "whylogs ready: run bench/profile_ingest.py --whylogs-python bench/.venv-whylogs/bin/python"
fi

if [ "$which" = all ] || [ "$which" = nannyml ]; then
    # NannyML 0.13.1 (the performance-estimation anchor) imports statsmodels without declaring
    # it; its own venv keeps its pins away from Evidently's.
    python3 -m venv .venv-nannyml
    .venv-nannyml/bin/python -m pip install -q --upgrade pip
    .venv-nannyml/bin/python -m pip install -q "nannyml==0.13.1" statsmodels
    echo "nannyml ready: $(NML_DISABLE_USAGE_LOGGING=1 .venv-nannyml/bin/python -c 'import nannyml; print("nannyml", nannyml.__version__)')"
fi
