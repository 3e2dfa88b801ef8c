"""``python -m avpretext.main_job``: the main job, which lives in avpretext/pipeline/main_job.py."""
from avpretext.pipeline.main_job import main

if __name__ == "__main__":
    raise SystemExit(main())
