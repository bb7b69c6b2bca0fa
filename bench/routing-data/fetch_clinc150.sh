#!/bin/sh
# Fetches the held-out CLINC150 set (clinc/oos-eval, data_full.json, CC BY 3.0) beside this
# script, for `cargo bench --bench routing_quality -- --clinc150`. Not committed: it is the
# held-out check of issue 22 and nothing is tuned on it.
set -eu
here=$(dirname "$0")
mkdir -p "$here/clinc150"
curl -fsSL -o "$here/clinc150/data_full.json" \
  https://raw.githubusercontent.com/clinc/oos-eval/master/data/data_full.json
