"""Issue 24 grid runner (H8): one init of one mode per folder (so scratch can run while pretraining runs).
    grid.py MODE INIT FRACTIONS   (MODE probe|finetune|egemaps; INIT scratch|pretrained|logreg)"""
import sys
from pathlib import Path
import finetune.experiment as fe
from experiments.scaling import FINETUNE_SETTINGS, PROBE_SETTINGS
from encoders import build_encoder, save_pretrained

WORK = Path("/work/main/runs/issue24")
ARCH = WORK / "arch_cnn_stats"  # the pretrained encoder's architecture, random weights: scratch cells read only its config
PRETRAINED = WORK / "pretrain" / "energy_acoustic_stats" / "encoder"

mode, init, fractions = sys.argv[1], sys.argv[2], [float(x) for x in sys.argv[3].split(",")]
seeds = [int(x) for x in sys.argv[4].split(",")] if len(sys.argv) > 4 else [0, 1, 2]
folds = sys.argv[5] if len(sys.argv) > 5 else "all"  # e.g. "2,3": folds split over parallel processes
suffix = sys.argv[6] if len(sys.argv) > 6 else ""  # a parallel process writes its own folder
if len(sys.argv) > 7:  # another pretraining run of drive.py (its folder name)
    PRETRAINED = WORK / "pretrain" / sys.argv[7] / "encoder"
settings = (PROBE_SETTINGS if mode == "probe" else FINETUNE_SETTINGS) + ["num_folds=4", "split_seed=0"]
base = fe.base_config(str(WORK / "ravdess.csv"), settings)
if mode == "egemaps":
    fe.run_grid(base, "", WORK / "exp" / "baseline", ["egemaps"], fractions, seeds)
else:
    if init == "scratch" and not (ARCH / "config.json").exists():
        from drive import ENC
        save_pretrained(build_encoder("cnn", **ENC), ARCH)
    fe.INITS = (init,)  # this folder holds one side of the pair; the report pairs the two folders
    fe.run_grid(base, str(ARCH if init == "scratch" else PRETRAINED), WORK / "exp" / f"{mode}_{init}{suffix}", [mode],
                fractions, seeds, folds)
