"""Fill the acoustic task's per-item LLD cache (pretext.tasks.acoustic.cached_llds) ahead of the label stage,
in parallel shards: worker I of N takes every N-th finished item. The label stage then reads the caches."""
import sys, zlib
from pathlib import Path
from pretext.tasks.acoustic import cached_llds, lld_path

i, n = int(sys.argv[1]), int(sys.argv[2])
# the hashed order of experiments.scaling.rung_table, so what is computed by any time is a nested random subset
items = sorted((p for p in Path("/work/runs/issue24/pool_extract/items").iterdir() if (p / "meta.json").exists()),
               key=lambda p: zlib.crc32(p.name.encode()))
done = 0
for k, item in enumerate(items):
    if k % n != i or not (item / "audio.flac").exists() or lld_path(item / "audio.flac").exists():
        continue
    try:
        cached_llds(item / "audio.flac"); done += 1
    except Exception as err:
        print(item.name, err)
print("computed", done, "of", len(items))
