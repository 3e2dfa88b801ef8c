"""Where a result was made: one JSON line per start, earlier lines kept."""
import json

import torch

from avpretext.common.environment import ENVIRONMENT_FILE, environment_info, record_environment


def test_each_start_appends_one_line_and_keeps_the_earlier_ones(tmp_path):
    first = record_environment(tmp_path)
    (tmp_path / ENVIRONMENT_FILE).write_text(first.read_text().replace('"host": "', '"host": "elsewhere-'))
    record_environment(tmp_path)
    lines = [json.loads(line) for line in first.read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["host"].startswith("elsewhere-") and not lines[1]["host"].startswith("else")
    info = environment_info()
    assert info["torch"] == torch.__version__ and info["torch_threads"] == torch.get_num_threads()
    assert info["numpy"] and info["cpu"] and info["python"].count(".") == 2
