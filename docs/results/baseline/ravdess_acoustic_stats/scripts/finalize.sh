#!/bin/bash
# archive: report (appends to the baseline summary), the pretraining curve, pool/label stats, the scripts that ran
cd /work/main
export PYTHONPATH=/work/main
OUT=docs/results/baseline/ravdess_acoustic_stats
nice -n 10 .venv/bin/python runs/issue24/report.py --append > runs/issue24/report.log 2>&1 || { cat runs/issue24/report.log; exit 1; }
.venv/bin/python - <<'PY'
import json, pandas as pd
rows = [json.loads(l) for l in open("runs/issue24/pretrain/energy_acoustic_stats/metrics.jsonl")]
val = pd.DataFrame([r for r in rows if r["split"] == "val"])
cols = ["step", "elapsed_s", "energy/uar", "acoustic/r_mean", "acoustic/ccc_mean", "acoustic/loss"] + \
       sorted(c for c in val if c.startswith("acoustic/r/"))
val[cols].to_csv("docs/results/baseline/ravdess_acoustic_stats/pretrain_val.csv", index=False, float_format="%.4f")
PY
mkdir -p $OUT/scripts
cp runs/issue24/{drive.py,prewarm.py,grid.py,report.py,ft_chain.sh,finalize.sh} $OUT/scripts/
cp runs/issue24/pretrain/energy_acoustic_stats/config.json $OUT/pretrain_config.json
cp runs/issue24/pool_subset/label_stats.json $OUT/label_stats.json
cp runs/issue24/timings.json $OUT/timings.json
cat runs/issue24/report.log
