"""The bottom layer: what every stage needs and no stage owns. It imports no other avpretext package.

* :mod:`.io`: atomic writes (readers see the old file or the whole new one), temp-file debris, JSON;
* :mod:`.audio`: reading 16 kHz audio with seeking, one-line audio errors;
* :mod:`.batches`: segment datasets, collation, per-process batch arithmetic, media-level splits;
* :mod:`.schedules`: the seeded epoch sampler and the warm-up + cosine learning-rate schedule;
* :mod:`.cli`: a command line from a config dataclass.
"""
