"""The words the pool and its worker processes exchange: what a request asks for, why a run came back empty."""

from __future__ import annotations

from sinecheck.core.enums import TextEnum


class RequestKind(TextEnum):
    """What a JSON-line request asks a worker to do (its ``"kind"`` field)."""

    TRAIN = "train"  # train a config, save the RunResult, answer with its path
    SHUFFLE_ORDERS = "shuffle_orders"  # the sample orders fit would use for the first epochs
    TRACE = "trace"  # train with the step-by-step recorder of `sinecheck diverge`
    BENCH_FIT = "bench_fit"  # time epochs of fit on a model built once per (config, epochs per call)
    VALIDATE = "validate"  # build a model spec once on its data and check them (`validate_model_spec`)
    EXIT = "exit"  # leave the request loop


class RunErrorKind(TextEnum):
    """Why a run produced no result."""

    STARTUP = "startup"  # the worker process never became ready
    CRASH = "crash"  # it died while serving the request
    TIMEOUT = "timeout"  # it did not answer in time
    EXCEPTION = "exception"  # training (or reading its result) raised
    REFUSED = "refused"  # the config asks for what this model cannot do (a one-line ConfigError, e.g. a new rate
    # on a learning-rate schedule): a stated refusal, not a failure
    UNAVAILABLE = "unavailable"  # a run this one depends on failed
