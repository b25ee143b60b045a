#!/usr/bin/env bash
# Creates bench/.venv-anchors with the tools inferwatch is measured against (Evidently 0.7).
# They are not dependencies of inferwatch; Evidently 0.7 needs pandas < 3.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv-anchors
.venv-anchors/bin/python -m pip install -q --upgrade pip
.venv-anchors/bin/python -m pip install -q "evidently>=0.7,<0.8" "pandas<3" pyarrow
echo "anchors ready: $(.venv-anchors/bin/python -c 'import evidently; print("evidently", evidently.__version__)')"

# whylogs 1.6 (the profile-ingestion anchor) needs numpy < 2 and pandas < 2.3: its own venv.
python3 -m venv .venv-whylogs
.venv-whylogs/bin/python -m pip install -q --upgrade pip
.venv-whylogs/bin/python -m pip install -q "whylogs>=1.6,<1.7" "numpy<2" "pandas<2.3"
echo "whylogs ready: run bench/profile_ingest.py --whylogs-python bench/.venv-whylogs/bin/python"
