"""The streaming engine: an append-only log with Kafka's semantics, the online joiner, and
the pipeline that wires them (paper §2.2, Figures 4 and 5).

* :mod:`.log`: topics, keyed partitions, offsets, consumer groups, a durable on-disk form;
* :mod:`.simulate`: when features and (late, duplicated) actions arrive;
* :mod:`.codec`: features and examples as bytes;
* :mod:`.kvstore`: the on-disk store of waiting features (SQLite);
* :mod:`.joiner`: the online joiner, negative sampling and log-odds correction;
* :mod:`.pipeline`: events -> log -> joiner -> log -> trainer.

See: book/ch09_streaming.md
"""

from .codec import JoinedBatch, decode_examples, decode_features, encode_examples, encode_features, request_key
from .joiner import (Example, JoinerConfig, JoinerStats, OnlineJoiner, corrected_probability, keep_negative,
                     log_odds_correction)
from .kvstore import SQLiteStore
from .log import Consumer, CorruptLogError, Log, LogError, Producer, Record
from .pipeline import (ACTIONS, EXAMPLES, FEATURES, PipelineResult, join_arrivals, publish, read_examples,
                       release_times, run_joiner, run_pipeline, time_ordered)
from .simulate import ArrivalConfig, Arrivals, arrivals

__all__ = [
    "Record", "LogError", "CorruptLogError", "Log", "Producer", "Consumer",
    "ArrivalConfig", "Arrivals", "arrivals",
    "JoinedBatch", "encode_features", "decode_features", "encode_examples", "decode_examples", "request_key",
    "SQLiteStore",
    "JoinerConfig", "Example", "JoinerStats", "OnlineJoiner", "keep_negative", "log_odds_correction",
    "corrected_probability",
    "FEATURES", "ACTIONS", "EXAMPLES", "publish", "time_ordered", "run_joiner", "read_examples", "release_times", "join_arrivals", "PipelineResult",
    "run_pipeline",
]
