"""Train / valid / test segments: defaults derived from the data's calendar, overridable per date, or rolling
(the scheduled retraining's window ending at the latest labelled day)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

SEGMENT_NAMES = ("train", "valid", "test")


@dataclass(frozen=True)
class Segments:
    train: tuple[dt.date, dt.date]
    valid: tuple[dt.date, dt.date]
    test: tuple[dt.date, dt.date]

    def __post_init__(self) -> None:
        for name in SEGMENT_NAMES:
            lo, hi = getattr(self, name)
            if hi < lo:
                raise ValueError(f"segment {name} ends ({hi}) before it starts ({lo})")
        if not (self.train[1] < self.valid[0] and self.valid[1] < self.test[0]):
            raise ValueError(f"segments must be ordered and must not overlap: {self.describe()}")

    def describe(self) -> str:
        return ", ".join(f"{n} {getattr(self, n)[0]}..{getattr(self, n)[1]}" for n in SEGMENT_NAMES)

    def as_dict(self) -> dict[str, list[str]]:
        return {n: [getattr(self, n)[0].isoformat(), getattr(self, n)[1].isoformat()] for n in SEGMENT_NAMES}

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> Segments:
        return cls(**{n: tuple(dt.date.fromisoformat(d) for d in data[n]) for n in SEGMENT_NAMES})

    @property
    def fit(self) -> tuple[dt.date, dt.date]:
        """The processors' fit window: the train segment, as in Qlib's benchmark configs."""
        return self.train


def default_segments(calendar: list[dt.date]) -> Segments:
    """Nine years or more: 7 years train, 2 valid, the rest test (Qlib's split shape; for the CSI300 data,
    train 2010-2016, valid 2017-2018, test 2019 to the end). Shorter: 60% / 20% / 20% of trading days."""
    if len(calendar) < 30:
        raise ValueError(f"the calendar has {len(calendar)} trading days; at least 30 are needed for three segments")
    first, last = calendar[0], calendar[-1]
    if (last - first).days >= 9 * 365:
        y0 = first.year
        return Segments(
            train=(first, max(d for d in calendar if d.year <= y0 + 6)),
            valid=(min(d for d in calendar if d.year == y0 + 7), max(d for d in calendar if d.year <= y0 + 8)),
            test=(min(d for d in calendar if d.year >= y0 + 9), last),
        )
    n = len(calendar)
    a, b = int(n * 0.6), int(n * 0.8)
    return Segments(train=(first, calendar[a - 1]), valid=(calendar[a], calendar[b - 1]), test=(calendar[b], last))


def parse_segments(text: str) -> Segments:
    """``TRAIN_START:TRAIN_END,VALID_START:VALID_END,TEST_START:TEST_END`` (the PIPELINE_SEGMENTS format)."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3 or any(p.count(":") != 1 for p in parts):
        raise ValueError(
            f"segments {text!r} must look like 2010-01-01:2016-12-31,2017-01-01:2018-12-31,2019-01-01:2020-12-31"
        )
    try:
        ranges = [tuple(dt.date.fromisoformat(x) for x in p.split(":")) for p in parts]
    except ValueError as exc:
        raise ValueError(f"segments {text!r}: {exc}") from None
    return Segments(*ranges)


def rolling_segments(calendar: list[dt.date], latest_labelled: dt.date) -> Segments:
    """Valid ends at the latest labelled day and train precedes it, each as many trading days as the default
    segments; test is whatever comes after (empty before new days arrive: the day after valid)."""
    base = default_segments(calendar)
    days = [d for d in calendar if d <= latest_labelled]
    n_valid = sum(1 for d in calendar if base.valid[0] <= d <= base.valid[1])
    n_train = sum(1 for d in calendar if base.train[0] <= d <= base.train[1])
    if len(days) < n_valid + 30:
        raise ValueError(f"rolling segments need more than {n_valid + 30} labelled days, have {len(days)}")
    valid = (days[-n_valid], days[-1])
    train = (days[max(0, len(days) - n_valid - n_train)], days[-n_valid - 1])
    later = [d for d in calendar if d > valid[1]]
    test = (later[0], calendar[-1]) if later else (valid[1] + dt.timedelta(days=1),) * 2
    return Segments(train=train, valid=valid, test=test)


def resolve_segments(
    calendar: list[dt.date],
    dates: Mapping[str, tuple[str | None, str | None]] | None = None,
    *,
    rolling: bool = False,
    latest_labelled: dt.date | None = None,
) -> Segments:
    """The segments a run uses: rolling ones when asked for (and labels exist), else the defaults of
    ``calendar`` with each date of ``dates`` (segment -> (start, end), ISO strings or None) put over them."""
    if rolling and latest_labelled is not None:
        return rolling_segments(calendar, latest_labelled)
    base = default_segments(calendar)
    dates = dates or {}
    unknown = set(dates) - set(SEGMENT_NAMES)
    if unknown:
        raise ValueError(f"unknown segment(s) {sorted(unknown)}; segments are {', '.join(SEGMENT_NAMES)}")
    out = {}
    for name in SEGMENT_NAMES:
        lo, hi = dates.get(name, (None, None))
        default = getattr(base, name)
        out[name] = (
            dt.date.fromisoformat(lo) if lo else default[0],
            dt.date.fromisoformat(hi) if hi else default[1],
        )
    return Segments(**out)
