"""Fusion grid runner (issue 24, E24): probe (or fine-tuning) cells with ``fuse=<set>``, one init per folder.
    fgrid.py CORPUS MODE INIT FUSE FRACTIONS [SEEDS] [FOLDS]
CORPUS ravdess|baved; MODE probe|finetune; INIT scratch|pretrained; FUSE egemaps|compare.
Same splits as the baseline cells (4 folds, 2 dev speakers, split seed 0, label_subset(fraction, seed))."""
import sys
from pathlib import Path
import finetune.experiment as fe
from experiments.scaling import FINETUNE_SETTINGS, PROBE_SETTINGS
from encoders import build_encoder, save_pretrained

WORK = Path("/work/runs/issue24")
ARCH = WORK / "arch_cnn_stats"  # the pretrained encoder's architecture, random weights: scratch cells read only its config
PRETRAINED = WORK / "pretrain" / "energy_acoustic_stats_120" / "encoder"  # 120 steps: 400 did not fit (README)

corpus, mode, init, fuse = sys.argv[1:5]
fractions = [float(x) for x in sys.argv[5].split(",")]
seeds = [int(x) for x in sys.argv[6].split(",")] if len(sys.argv) > 6 else [0, 1, 2]
folds = sys.argv[7] if len(sys.argv) > 7 else "all"
settings = (PROBE_SETTINGS if mode == "probe" else FINETUNE_SETTINGS) + ["num_folds=4", "split_seed=0", f"fuse={fuse}",
                                                                        "num_workers=0"]  # result-neutral; no worker start-up per cell
base = fe.base_config(str(WORK / f"{corpus}.csv"), settings)
if init == "scratch" and not (ARCH / "config.json").exists():
    from drive import ENC
    save_pretrained(build_encoder("cnn", **ENC), ARCH)
fe.INITS = (init,)  # this folder holds one side of the pair; the report pairs the folders
fe.run_grid(base, str(ARCH if init == "scratch" else PRETRAINED), WORK / "exp" / f"{corpus}_{mode}_{init}_fuse{fuse}",
            [mode], fractions, seeds, folds)
