"""Fill the openSMILE functionals cache (finetune.opensmile_features.Functionals, $AVPRETEXT_CACHE) of a manifest's
files ahead of the fusion grid: fprewarm.py SET MANIFEST [I N] (shard I of N: every N-th file)."""
import sys, time
import pandas as pd
from finetune.opensmile_features import Functionals

name, manifest = sys.argv[1], sys.argv[2]
i, n = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (0, 1)
paths = list(pd.read_csv(manifest)["path"])[i::n]
t = time.time()
_, skipped = Functionals(name).compute(paths)
print(name, manifest, len(paths), "files", f"{time.time() - t:.0f}s", "skipped", skipped, flush=True)
