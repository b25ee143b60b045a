"""The built-in rule evaluator: configured rules -> one :class:`RuleOutcome` per series.

Usage (what the server's :class:`~inferwatch.alerting.AlertRunner` does each cycle)::

    evaluator = RuleEvaluator(rules, slos, band_score=None)
    samples = registry_samples(registry, evaluator.sample_names, labels={"instance": addr})
    evaluator.observe(now, samples)          # or: outcomes = evaluator.cycle(now, samples)
    engine.evaluate(evaluator.outcomes(now), now)

``observe(now, samples)`` records one observation (``now`` a datetime or epoch seconds,
``samples`` plain ``(sample_name, labels, value)`` triples; see :mod:`._samples` for what
is kept and the memory bound); ``outcomes(now)`` judges every rule on every series of its
signal at ``now``.  By default only breaching outcomes are returned: the engine reads a
series absent from a cycle as "condition does not hold", exactly as for an outcome with
``severity=None``, and building 100,000 quiet outcomes a cycle would cost more than
judging them; ``outcomes(now, quiet=True)`` returns every series.

Each signal is computed as the PromQL that :meth:`inferwatch.rules.Signal.expr` generates
would compute it on Prometheus 2 (the Debian ``promtool`` 2.42 the agreement test runs),
read from Prometheus' own code (``promql/functions.go`` ``extrapolatedRate``,
``promql/quantile.go`` ``bucketQuantile``, the aggregations in ``promql/engine.go``) and
written again here: the same float operations in the same order, so the values agree to
the bit (tests/alerting/test_agreement.py):

- ``rate(x[w])``: samples in ``[now - w, now]`` (both ends included, Prometheus 2), at
  least two; counter resets add the value before the drop; the increase is extrapolated
  to the window's edges when the first/last sample is within 1.1 average intervals of
  them (else by half an interval), never below the counter's zero point; divided by ``w``.
- ``sum by (per)``: series summed one after another in label order (Prometheus' series
  order), a group only where at least one series has a result.
- ``a / b`` (ratio, histogram mean): per group present on both sides; ``0 / 0`` is NaN,
  which breaches nothing (PromQL's comparison drops it).
- ``histogram_quantile``: buckets by ``le`` summed per group, sorted, equal bounds merged,
  counts made monotonic, NaN without a ``+Inf`` bucket or observations, linear
  interpolation inside the bucket (from 0 in the first one), the highest finite bound
  when the rank falls in ``+Inf``.
- gauges: ``last`` is the instant value (the newest sample within 5 minutes),
  ``avg/min/max_over_time`` over the window (the average with Prometheus' Kahan-Neumaier
  incremental mean); several versions of a model reduce to the worst (``max`` when high is
  bad, ``min`` when low is).

Each distinct (signal, aggregation, window) is computed once per cycle and shared by every
rule reading it (and each ``rate`` of one sample name over one window once too), as numpy
arrays over all series.  The rules reading one signal with one comparison are judged
together (a rules x series comparison matrix per level), and an outcome whose verdict and
value did not change since the last cycle is reused (found vectorised), so the per-cycle
Python work is per *changed* breaching series, not per rule x series.
bench/alert_engine.py, 1,000 rules over 100 models read from a real registry (9,600
samples, ~4,700 breaching outcomes), on a shared 2-core machine: ``observe`` ~4-5 ms,
``outcomes`` ~19-22 ms (~23x faster than judging each rule on its own); the cycle as a
whole is dominated by ``registry_samples`` (the drift/performance collectors' ``collect``)
and the garbage those collections leave, not by this module.

SLO burn-rate alerts (:class:`inferwatch.rules.SLO`) are judged as :func:`slo_rules`
generates them: the error ratio per window (the recording rules), and per severity the
``(long > f x budget and short > f x budget) or (...)`` conditions; the alert's value is
the long window's ratio of the first pair that holds, labels ``model`` and ``slo``.  The
page (critical) and the ticket (warning) are separate conditions, so each outcome names
only its own level (``levels``).

Threshold-free rules (a truthy ``band`` attribute on the rule) are judged by the injected
``band_score(rule, labels, now, value) -> score | None`` hook with ``rule.severity(score)``;
the outcome's value stays the signal's value.  Without a hook they are skipped.

Not supported (documented limits): native histograms, stale markers (a series that stops
goes stale after the 5-minute lookback, as with a target that stops being scraped), and
non-finite sample values (skipped: NaN marks "no sample" here).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from inferwatch.alerting._model import RuleOutcome, Severity
from inferwatch.alerting._samples import LOOKBACK, LabelKey, Sample, SampleHistory, Table, to_ms
from inferwatch.rules import SIGNALS, SLO, Rule, Signal, render_template
from inferwatch.rules._promql import alert_annotations
from inferwatch.rules._slo import _summary as _slo_summary

__all__ = ["BandScore", "RuleEvaluator", "SignalValues", "bucket_quantile", "parse_matchers"]

#: ``band_score(rule, series_labels, now, value) -> score`` (None: no verdict yet)
BandScore = Callable[[Rule, Mapping[str, str], datetime, float], float | None]
Matcher = tuple[str, str, str]  # (label, op, value)
_GroupKey = tuple[str, tuple[Matcher, ...], tuple[str, ...]]
_Rows = Callable[[Table], NDArray[np.float64]]

_MATCHER: Final = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')
_COMPARE: Final[dict[str, Callable[[NDArray[np.float64], Any], NDArray[np.bool_]]]] = {
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
}
_QUANTILES: Final = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
_EMPTY_F: Final[NDArray[np.float64]] = np.zeros(0)


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """PromQL label matchers (``a="x", b=~"5.."``) as ``(label, op, value)`` triples."""
    out: list[Matcher] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _MATCHER.match(text, pos)
        if m is None:
            raise ValueError(f"cannot read label matchers {text!r} at {pos}")
        value = m.group(3).encode().decode("unicode_escape")
        out.append((m.group(1), m.group(2), value))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise ValueError(f"cannot read label matchers {text!r} at {pos}")
            pos += 1
    return tuple(out)


def _matches(labels: Mapping[str, str], matchers: Sequence[Matcher]) -> bool:
    for name, op, value in matchers:
        got = labels.get(name, "")
        if op == "=":
            ok = got == value
        elif op == "!=":
            ok = got != value
        elif op == "=~":
            ok = re.fullmatch(value, got) is not None
        else:
            ok = re.fullmatch(value, got) is None
        if not ok:
            return False
    return True


def _range_seconds(ms: int) -> float:
    """Go's ``time.Duration.Seconds()`` of a range of ``ms`` milliseconds."""
    sec, rem = divmod(ms, 1000)
    return float(sec) + float(rem * 1_000_000) / 1e9


@dataclass(frozen=True, slots=True)
class SignalValues:
    """One signal's result at one time: a value per series (PromQL's instant vector).

    ``keys[i]`` is series ``i``'s identifying labels as sorted items, ``labels[i]`` the same
    as a dict; ``values[i]`` may be NaN (a ``0 / 0`` ratio), which breaches nothing.
    """

    keys: list[LabelKey]
    labels: list[dict[str, str]]
    values: NDArray[np.float64]

    def as_dict(self) -> dict[LabelKey, float]:
        return {k: float(v) for k, v in zip(self.keys, self.values, strict=True)}


_NONE: Final = SignalValues([], [], _EMPTY_F)


class _Grouping:
    """The rows of a table matching some matchers, in label order, and their groups."""

    __slots__ = ("gidx", "keys", "labels", "order", "single")

    def __init__(self, table: Table, matchers: Sequence[Matcher], by: Sequence[str]) -> None:
        rows = [i for i, lab in enumerate(table.labels) if _matches(lab, matchers)]
        rows.sort(key=lambda i: table.keys[i])
        groups: dict[tuple[str, ...], int] = {}
        gidx = []
        for i in rows:
            lab = table.labels[i]
            gidx.append(groups.setdefault(tuple(lab.get(b, "") for b in by), len(groups)))
        self.order = np.asarray(rows, dtype=np.intp)
        self.gidx = np.asarray(gidx, dtype=np.intp)
        #: every group holds exactly one row, in group order
        self.single = bool(len(groups) == len(rows) and (self.gidx == np.arange(len(rows))).all())
        self.keys: list[LabelKey] = []
        self.labels: list[dict[str, str]] = []
        for vals in groups:
            lab = {b: v for b, v in zip(by, vals, strict=True) if v}
            self.labels.append(lab)
            self.keys.append(tuple(sorted(lab.items())))

    def result(self, seen: NDArray[np.bool_], values: NDArray[np.float64]) -> SignalValues:
        """The groups that had a series with a result (all of them, usually: then this
        grouping's own key lists, shared, which also keys the bucket-layout cache)."""
        if seen.all():
            return SignalValues(self.keys, self.labels, values)
        idx = np.flatnonzero(seen).tolist()
        return SignalValues(
            [self.keys[i] for i in idx], [self.labels[i] for i in idx], values[seen]
        )


class _Cycle:
    """Everything computed at one evaluation time, each once."""

    def __init__(self, evaluator: RuleEvaluator, now_ms: int) -> None:
        self.ev = evaluator
        self.now = now_ms
        self.rates: dict[tuple[str, int], NDArray[np.float64]] = {}
        self.instants: dict[str, NDArray[np.float64]] = {}
        self.over: dict[tuple[str, str, int], NDArray[np.float64]] = {}
        self.signals: dict[tuple[str, str, float], SignalValues] = {}

    # -- per row ---------------------------------------------------------------------
    def rate(self, table: Table, name: str, range_ms: int) -> NDArray[np.float64]:
        got = self.rates.get((name, range_ms))
        if got is None:
            got = self.rates[(name, range_ms)] = _rate(table, self.now, range_ms)
        return got

    def instant(self, table: Table, name: str) -> NDArray[np.float64]:
        got = self.instants.get(name)
        if got is None:
            _, values = table.window(self.now - round(LOOKBACK * 1000), self.now)
            got = _last(values)
            self.instants[name] = got
        return got

    def over_time(self, table: Table, name: str, fn: str, range_ms: int) -> NDArray[np.float64]:
        got = self.over.get((name, fn, range_ms))
        if got is None:
            _, values = table.window(self.now - range_ms, self.now)
            if fn == "avg":
                got = _avg_over_time(values)
            elif values.shape[1] == 0:
                got = np.full(values.shape[0], np.nan)
            else:
                ufunc = np.fmax if fn == "max" else np.fmin
                got = ufunc.reduce(values, axis=1)
            self.over[(name, fn, range_ms)] = got
        return got


def _last(values: NDArray[np.float64]) -> NDArray[np.float64]:
    rows, k = values.shape
    out = np.full(rows, np.nan)
    if k == 0:
        return out
    valid = ~np.isnan(values)
    last = k - 1 - valid[:, ::-1].argmax(axis=1)
    has = valid.any(axis=1)
    out[has] = values[np.flatnonzero(has), last[has]]
    return out


def _avg_over_time(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """``avg_over_time`` per row as Prometheus 2.42 computes it: an incremental mean with
    Kahan-Neumaier compensation, ``mean + c`` at the end (finite values).

    A window where every row has every sample (the usual case) runs with the count as a
    scalar and each step's compensation picked before it is added: the same float
    operations on the same operands, fewer array passes."""
    rows, k = values.shape
    mean = np.zeros(rows)
    comp = np.zeros(rows)
    if k and rows and not np.isnan(values).any():
        with np.errstate(invalid="ignore", divide="ignore"):
            for j in range(k):
                n = float(j + 1)
                inc = values[:, j] / n - mean / n
                t = mean + inc
                comp = comp + np.where(
                    np.abs(mean) >= np.abs(inc), (mean - t) + inc, (inc - t) + mean
                )
                mean = t
            return mean + comp
    count = np.zeros(rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        for j in range(k):
            col = values[:, j]
            m = ~np.isnan(col)
            every = m.all()
            if not every and not m.any():
                continue
            count = count + 1.0 if every else np.where(m, count + 1.0, count)
            inc = col / count - mean / count
            t = mean + inc
            c = np.where(
                np.abs(mean) >= np.abs(inc), comp + ((mean - t) + inc), comp + ((inc - t) + mean)
            )
            if every:
                mean, comp = t, c
            else:
                mean = np.where(m, t, mean)
                comp = np.where(m, c, comp)
        out = mean + comp
    out[count == 0] = np.nan
    return out


def _rate(table: Table, now: int, range_ms: int) -> NDArray[np.float64]:
    """``rate(x[range])`` of every row of ``table`` at ``now`` (NaN: no result).

    The table's prefix counts give each row's number of samples and counter resets in the
    window in O(rows); a row with every sample present and no reset (almost all) takes
    its first and last column directly, the others find theirs, and a row with a reset
    walks its samples as ``extrapolatedRate`` does."""
    start = now - range_ms
    a, b = table.span(start, now)
    rows = len(table.keys)
    out = np.full(rows, np.nan)
    k = b - a
    if k < 2 or rows == 0:
        return out
    cnt = table.cv[:rows, b] - table.cv[:rows, a]
    ok = cnt >= 2
    if not ok.any():
        return out
    values = table.values
    times = table.times
    first = np.full(rows, a)
    last = np.full(rows, b - 1)
    odd = np.flatnonzero(ok & (cnt != k))
    if len(odd):
        valid = ~np.isnan(values[odd, a:b])
        first[odd] = a + valid.argmax(axis=1)
        last[odd] = a + k - 1 - valid[:, ::-1].argmax(axis=1)
    r = np.arange(rows)
    vf = values[r, first]
    vl = values[r, last]
    result = vl - vf
    resets = table.cd[r, last + 1] - table.cd[r, first + 1]
    for i in np.flatnonzero(ok & (resets > 0)).tolist():
        # the exact loop of extrapolatedRate: a reset adds the value before it
        row = values[i, first[i] : last[i] + 1]
        seq = row[~np.isnan(row)].tolist()
        res = seq[-1] - seq[0]
        prev = seq[0]
        for v in seq[1:]:
            if v < prev:
                res += prev
            prev = v
        result[i] = res
    t0 = times[first]
    t1 = times[last]
    with np.errstate(invalid="ignore", divide="ignore"):
        to_start = (t0 - start) / 1000.0
        to_end = (now - t1) / 1000.0
        sampled = (t1 - t0) / 1000.0
        average = sampled / (cnt - 1).astype(np.float64)
        to_zero = sampled * (vf / result)
        to_start = np.where((result > 0) & (vf >= 0) & (to_zero < to_start), to_zero, to_start)
        threshold = average * 1.1
        half = average / 2
        interval = sampled + np.where(to_start < threshold, to_start, half)
        interval = interval + np.where(to_end < threshold, to_end, half)
        factor = interval / sampled
        factor = factor / _range_seconds(range_ms)
        rate = result * factor
    out[ok] = rate[ok]
    return out


def _bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' ``bucketQuantile`` (promql/quantile.go, 2.42) over ``(le, count)``."""
    buckets.sort(key=lambda b: b[0])
    if not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return math.nan
    merged: list[list[float]] = [list(buckets[0])]
    for le, count in buckets[1:]:
        if le == merged[-1][0]:
            merged[-1][1] += count
        else:
            merged.append([le, count])
    top = merged[0][1]
    for pair in merged[1:]:
        if pair[1] > top:
            top = pair[1]
        elif pair[1] < top:
            pair[1] = top
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    n = len(merged) - 1
    b = next((i for i in range(n) if merged[i][1] >= rank), n)
    if b == n:
        return merged[n - 1][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start = 0.0
    end = merged[b][0]
    count = merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return start + (end - start) * (rank / count)


#: the public name of Prometheus' ``bucketQuantile`` (inferwatch.history reads its latency
#: quantiles with it, so the dashboard's p99 is the alert rules' p99)
bucket_quantile = _bucket_quantile


class _Match:
    """How two results' series line up for ``a / b`` (one-to-one on identical labels)."""

    __slots__ = ("a", "b", "ia", "ib", "keys", "labels")

    def __init__(self, a: SignalValues, b: SignalValues) -> None:
        index = {k: i for i, k in enumerate(b.keys)}
        ia, ib = [], []
        for i, k in enumerate(a.keys):
            j = index.get(k)
            if j is not None:
                ia.append(i)
                ib.append(j)
        self.a, self.b = a.keys, b.keys
        self.ia = np.asarray(ia, dtype=np.intp)
        self.ib = np.asarray(ib, dtype=np.intp)
        self.keys = [a.keys[i] for i in ia]
        self.labels = [a.labels[i] for i in ia]


def _divide(
    a: SignalValues, b: SignalValues, matches: dict[tuple[int, int], _Match]
) -> SignalValues:
    """``a / b`` matched one-to-one on the series labels (PromQL vector division).

    The matching is cached on the identity of the two key lists (a grouping's own lists,
    shared while its table's series do not change), so a steady cycle divides arrays."""
    key = (id(a.keys), id(b.keys))
    m = matches.get(key)
    if m is None or m.a is not a.keys or m.b is not b.keys:
        if len(matches) > 256:
            matches.clear()
        m = matches[key] = _Match(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = a.values[m.ia] / b.values[m.ib]
    return SignalValues(m.keys, m.labels, values)


class _Annotations(Mapping[str, str]):
    """A rule's annotations for one series, rendered on first read: the engine keeps every
    breaching outcome's annotations but only notifications and ``GET /v1/alerts`` read
    them, so rendering thousands of summaries a cycle up front would be wasted."""

    __slots__ = ("_labels", "_rendered", "_templates", "_value")

    def __init__(self, templates: Mapping[str, str], labels: Mapping[str, str], value: float):
        self._templates = templates
        self._labels = labels
        self._value = value
        self._rendered: dict[str, str] | None = None

    def _get(self) -> dict[str, str]:
        if self._rendered is None:
            lab = dict(self._labels)
            self._rendered = {
                k: render_template(t, lab, self._value) for k, t in self._templates.items()
            }
        return self._rendered

    def __getitem__(self, key: str) -> str:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._templates)

    def __repr__(self) -> str:
        return repr(self._get())


class _Judged:
    """A rule prepared for judging: comparisons, levels, annotations."""

    __slots__ = (
        "annotations", "band", "cmp", "critical", "key", "levels", "rule", "spec", "warning",
    )  # fmt: skip

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.key = (rule.signal, rule.aggregation, rule.window)
        self.spec = rule.spec
        self.cmp = _COMPARE[rule.comparison]
        self.critical = rule.critical
        self.warning = rule.warning
        levels: tuple[Severity, ...] = tuple(
            s for s in ("warning", "critical") if getattr(rule, s) is not None
        )
        self.levels = levels
        self.annotations = alert_annotations(rule)
        self.band = bool(getattr(rule, "band", None))


class _Verdicts:
    """A bank's last cycle: its series and values, the (rule, series) pairs it returned
    (rules x series) and their outcomes (an object matrix, None elsewhere)."""

    __slots__ = ("keys", "outs", "values", "want")

    def __init__(
        self, keys: list[LabelKey], values: NDArray[np.float64], want: NDArray[np.bool_],
        outs: NDArray[np.object_],
    ) -> None:  # fmt: skip
        self.keys = keys
        self.values = values
        self.want = want
        self.outs = outs


class _Bank:
    """The rules that read one signal with one comparison: judged together."""

    __slots__ = ("_shared", "cmp", "critical", "key", "last", "rules", "spec", "warning")

    def __init__(self, rules: list[_Judged]) -> None:
        self.rules = rules
        self.key = rules[0].key
        self.spec = rules[0].spec
        self.cmp = rules[0].cmp
        nan = math.nan
        self.critical = np.asarray(
            [nan if j.critical is None else j.critical for j in rules], dtype=np.float64
        )[:, None]
        self.warning = np.asarray(
            [nan if j.warning is None else j.warning for j in rules], dtype=np.float64
        )[:, None]
        #: the last cycle's verdicts and outcomes (reused when verdict and value hold)
        self.last: _Verdicts | None = None
        #: per rule: what every outcome of it shares
        self._shared = [
            (j.rule.name, j.rule.labels, j.rule.for_, j.annotations, j.levels) for j in rules
        ]

    def make(
        self, r: int, i: int, crit: bool, hit: bool, value: float, labels: list[dict[str, str]]
    ) -> RuleOutcome:
        """Rule ``r``'s outcome on series ``i`` (what ``RuleEvaluator._outcome`` builds)."""
        name, extra, for_, templates, levels = self._shared[r]
        series = labels[i]
        sev: Severity | None = "critical" if crit else "warning" if hit else None
        ann = _Annotations(templates, series, value) if sev is not None else {}
        return RuleOutcome(
            name, {**series, **extra} if extra else series, sev, value, for_, ann, levels
        )


class RuleEvaluator:
    """Judges ``rules`` (and ``slos``) over the samples it is fed (module docstring).

    ``points_per_window``: the history's resolution bound (:mod:`._samples`).
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        slos: Sequence[SLO] = (),
        *,
        band_score: BandScore | None = None,
        points_per_window: int = 240,
    ) -> None:
        self.rules = list(rules)
        self.slos = list(slos)
        self.band_score = band_score
        self._judged = [_Judged(r) for r in self.rules]
        self._banded = [j for j in self._judged if j.band]
        banks: dict[tuple[tuple[str, str, float], str], list[_Judged]] = {}
        for j in self._judged:
            if not j.band:
                banks.setdefault((j.key, j.rule.comparison), []).append(j)
        self._banks = [_Bank(js) for js in banks.values()]
        horizons: dict[str, float] = {}

        def need(name: str, seconds: float) -> None:
            horizons[name] = max(horizons.get(name, 0.0), seconds)

        for rule in self.rules:
            for name, seconds in _reads(rule.spec, rule.aggregation, rule.window):
                need(name, seconds)
        for slo in self.slos:
            for _, _, long, short in slo.windows():
                for w in (long, short):
                    for name, seconds in _slo_reads(slo, w):
                        need(name, seconds)
        self.history = SampleHistory(horizons, points_per_window=points_per_window)
        self._groupings: dict[
            tuple[str, tuple[Matcher, ...], tuple[str, ...]], tuple[int, _Grouping]
        ] = {}
        self._matchers: dict[str, tuple[Matcher, ...]] = {}
        #: bucket layouts by the identity of the (shared) key list they were built for
        self._layouts: dict[int, tuple[list[LabelKey], _BucketLayout]] = {}
        #: ratio matchings by the identities of the two key lists (see _divide)
        self._matches: dict[tuple[int, int], _Match] = {}

    @property
    def sample_names(self) -> frozenset[str]:
        """The sample names the rules read (hand only these to :meth:`observe`)."""
        return frozenset(self.history.tables)

    # -- feeding ---------------------------------------------------------------------
    def observe(self, now: datetime | float, samples: Iterable[Sample]) -> bool:
        """Record one observation of every series (see :meth:`SampleHistory.observe`)."""
        return self.history.observe(now, samples)

    def cycle(self, now: datetime, samples: Iterable[Sample]) -> list[RuleOutcome]:
        """``observe`` then ``outcomes``: one call per runner cycle."""
        self.observe(now, samples)
        return self.outcomes(now)

    # -- signals ---------------------------------------------------------------------
    def _grouping(
        self, name: str, table: Table, matchers: tuple[Matcher, ...], by: tuple[str, ...]
    ) -> _Grouping:
        key = (name, matchers, by)
        got = self._groupings.get(key)
        if got is None or got[0] != table.version:
            got = (table.version, _Grouping(table, matchers, by))
            self._groupings[key] = got
        return got[1]

    def _layout(self, buckets: SignalValues) -> _BucketLayout:
        """The bucket layout of a bucket sum, cached on its group keys."""
        cached = self._layouts.get(id(buckets.keys))
        if cached is not None and cached[0] is buckets.keys:
            return cached[1]
        if len(self._layouts) > 64:
            self._layouts.clear()
        layout = _BucketLayout(buckets)
        self._layouts[id(buckets.keys)] = (buckets.keys, layout)
        return layout

    def _m(self, text: str) -> tuple[Matcher, ...]:
        got = self._matchers.get(text)
        if got is None:
            got = self._matchers[text] = parse_matchers(text)
        return got

    def _sum_by(
        self,
        name: str,
        matchers: tuple[Matcher, ...],
        by: tuple[str, ...],
        rows: Callable[[Table], NDArray[np.float64]],
    ) -> SignalValues:
        table = self.history.table(name)
        if table is None or not table.keys:
            return _NONE
        g = self._grouping(name, table, matchers, by)
        if len(g.order) == 0:
            return _NONE
        v = rows(table)[g.order]
        present = ~np.isnan(v)
        n = len(g.keys)
        sums = np.bincount(g.gidx[present], weights=v[present], minlength=n).astype(np.float64)
        seen = np.bincount(g.gidx[present], minlength=n) > 0
        return g.result(seen, sums)

    def _worst_by(
        self, name: str, matchers: tuple[Matcher, ...], by: tuple[str, ...], worst: str,
        rows: _Rows,
    ) -> SignalValues:  # fmt: skip
        table = self.history.table(name)
        if table is None or not table.keys:
            return _NONE
        g = self._grouping(name, table, matchers, by)
        if len(g.order) == 0:
            return _NONE
        v = rows(table)[g.order]
        present = ~np.isnan(v)
        n = len(g.keys)
        if g.single:  # one series per group (one version per model): nothing to reduce
            return g.result(present, v)
        if worst == "max":
            acc = np.full(n, -np.inf)
            np.maximum.at(acc, g.gidx[present], v[present])
        else:
            acc = np.full(n, np.inf)
            np.minimum.at(acc, g.gidx[present], v[present])
        seen = np.bincount(g.gidx[present], minlength=n) > 0
        return g.result(seen, acc)

    def signal(self, cyc: _Cycle, sig: Signal, aggregation: str, window: float) -> SignalValues:
        key = (sig.name, aggregation, window)
        got = cyc.signals.get(key)
        if got is None:
            got = cyc.signals[key] = self._compute(cyc, sig, aggregation, window)
        return got

    def _compute(self, cyc: _Cycle, sig: Signal, aggregation: str, window: float) -> SignalValues:
        w = round(window * 1000)
        sel = self._m(sig.selector)
        per = sig.per

        def rate_of(name: str) -> Callable[[Table], NDArray[np.float64]]:
            return lambda t: cyc.rate(t, name, w)

        if sig.kind == "histogram":
            if aggregation == "mean":
                s, c = f"{sig.metric}_sum", f"{sig.metric}_count"
                return _divide(
                    self._sum_by(s, sel, per, rate_of(s)),
                    self._sum_by(c, sel, per, rate_of(c)),
                    self._matches,
                )
            name = f"{sig.metric}_bucket"
            buckets = self._sum_by(name, sel, (*per, "le"), rate_of(name))
            return _quantiles(_QUANTILES[aggregation], buckets, self._layout(buckets))
        if sig.kind == "ratio":
            num = self._m(", ".join(m for m in (sig.selector, sig.numerator) if m))
            return _divide(
                self._sum_by(sig.metric, num, per, rate_of(sig.metric)),
                self._sum_by(sig.metric, sel, per, rate_of(sig.metric)),
                self._matches,
            )
        if sig.kind == "rate":
            return self._sum_by(sig.metric, sel, per, rate_of(sig.metric))
        worst = "min" if sig.bad == "below" else "max"
        name = sig.metric
        if aggregation == "last":
            return self._worst_by(name, sel, per, worst, lambda t: cyc.instant(t, name))
        return self._worst_by(
            name, sel, per, worst, lambda t: cyc.over_time(t, name, aggregation, w)
        )

    def values(self, now: datetime | float) -> dict[tuple[str, str, float], SignalValues]:
        """Every (signal, aggregation, window) the rules read, computed at ``now``."""
        cyc = _Cycle(self, to_ms(now))
        for j in self._judged:
            self.signal(cyc, j.rule.spec, j.rule.aggregation, j.rule.window)
        return cyc.signals

    def slo_ratio(self, cyc: _Cycle, slo: SLO, window: float) -> SignalValues:
        """The error ratio of ``slo`` over ``window`` per model (its recording rule)."""
        key = (f"slo:{slo.sli}:{slo.threshold}", "ratio", window)
        got = cyc.signals.get(key)
        if got is not None:
            return got
        if slo.sli == "availability":
            got = self.signal(cyc, SIGNALS["error_rate"], "ratio", window)
        elif slo.sli == "latency":
            w = round(window * 1000)
            base = "inferwatch_request_duration_seconds"
            le = self._m(f'le="{float(slo.threshold or 0.0)!r}"')
            b, c = f"{base}_bucket", f"{base}_count"
            ratio = _divide(
                self._sum_by(b, le, ("model",), lambda t: cyc.rate(t, b, w)),
                self._sum_by(c, (), ("model",), lambda t: cyc.rate(t, c, w)),
                self._matches,
            )
            got = SignalValues(ratio.keys, ratio.labels, 1 - ratio.values)
        else:
            acc = self.signal(cyc, SIGNALS["accuracy"], "avg", window)
            got = SignalValues(acc.keys, acc.labels, 1 - acc.values)
        cyc.signals[key] = got
        return got

    # -- judging ---------------------------------------------------------------------
    def outcomes(self, now: datetime | float, *, quiet: bool = False) -> list[RuleOutcome]:
        """Every rule judged on every series of its signal at ``now``; only the breaching
        ones unless ``quiet`` (see the module docstring)."""
        now_ms = to_ms(now)
        at = now if isinstance(now, datetime) else datetime.fromtimestamp(now, UTC)
        cyc = _Cycle(self, now_ms)
        out: list[RuleOutcome] = []
        signals = cyc.signals
        for j in self._banded:
            rule = j.rule
            vals = signals.get(j.key) or self.signal(cyc, j.spec, rule.aggregation, rule.window)
            if vals.keys and self.band_score is not None:
                self._band(j, vals, at, quiet, out)
        for bank in self._banks:
            vals = signals.get(bank.key) or self.signal(cyc, bank.spec, *bank.key[1:])
            if not vals.keys:
                bank.last = None
                continue
            self._judge(bank, vals, quiet, out)
        for slo in self.slos:
            self._slo(cyc, slo, quiet, out)
        return out

    def _judge(self, bank: _Bank, vals: SignalValues, quiet: bool, out: list[RuleOutcome]) -> None:
        """Judge every rule of ``bank`` on every series at once: one comparison matrix per
        level (rules x series), the breaching pairs from one ``nonzero``.

        A pair whose verdict and value did not change since the last cycle keeps its
        outcome (a gauge that did not move costs nothing, not a new outcome): the last
        cycle's outcomes are kept as a rules x series object matrix beside its values (a
        bank's thresholds are fixed, so the same value is the same verdict), so finding
        and reusing them is vectorised and the Python work is per new outcome only.  The
        matrix holds while the series are the same (the signal's key list is the same
        object: its grouping is cached); else every outcome is new."""
        v = vals.values
        with np.errstate(invalid="ignore"):
            crit = bank.cmp(v[None, :], bank.critical)  # a NaN threshold never holds
            hit = crit | bank.cmp(v[None, :], bank.warning)
        want = np.ones_like(hit) if quiet else hit
        rr, ii = np.nonzero(want)
        outs = np.empty(hit.shape, dtype=object)
        last = bank.last
        if len(rr):
            if last is not None and last.keys is vals.keys:
                # a bank's thresholds are fixed: the same value is the same verdict
                same = last.want[rr, ii] & (v[ii] == last.values[ii])
                kr, ki = rr[same], ii[same]
                outs[kr, ki] = last.outs[kr, ki]
                nr, ni = rr[~same], ii[~same]
            else:
                nr, ni = rr, ii
            if len(nr):
                values = v[ni].tolist()
                crits = crit[nr, ni].tolist()
                hits = hit[nr, ni].tolist()
                made = np.empty(len(nr), dtype=object)
                made[:] = list(map(bank.make, nr.tolist(), ni.tolist(), crits, hits, values,
                                   [vals.labels] * len(values)))  # fmt: skip
                outs[nr, ni] = made
            out.extend(outs[rr, ii].tolist())
        bank.last = _Verdicts(vals.keys, v, want, outs)

    def _outcome(
        self, j: _Judged, vals: SignalValues, i: int, sev: Severity | None, value: float
    ) -> RuleOutcome:
        series = vals.labels[i]
        rule = j.rule
        ann = _Annotations(j.annotations, series, value) if sev is not None else {}
        labels = {**series, **rule.labels} if rule.labels else series
        return RuleOutcome(rule.name, labels, sev, value, rule.for_, ann, j.levels)

    def _band(
        self, j: _Judged, vals: SignalValues, at: datetime, quiet: bool, out: list[RuleOutcome]
    ) -> None:
        assert self.band_score is not None
        for i, value in enumerate(vals.values.tolist()):
            score = self.band_score(j.rule, vals.labels[i], at, value)
            sev = None if score is None else j.rule.severity(score)
            if sev is not None or quiet:
                out.append(self._outcome(j, vals, i, sev, value))  # type: ignore[arg-type]

    def _slo(self, cyc: _Cycle, slo: SLO, quiet: bool, out: list[RuleOutcome]) -> None:
        name = f"{slo.name}_ErrorBudgetBurn"
        for severity in ("critical", "warning"):
            held: dict[LabelKey, tuple[dict[str, str], float]] = {}
            seen: dict[LabelKey, dict[str, str]] = {}
            for sev, factor, long, short in slo.windows():
                if sev != severity:
                    continue
                limit = factor * slo.budget
                lv = self.slo_ratio(cyc, slo, long)
                sv = self.slo_ratio(cyc, slo, short).as_dict()
                for k, lab, v in zip(lv.keys, lv.labels, lv.values.tolist(), strict=True):
                    seen.setdefault(k, lab)
                    s = sv.get(k)
                    if k not in held and v > limit and s is not None and s > limit:
                        held[k] = (lab, v)  # `or`: the first pair that holds gives the value
            kind = "page" if severity == "critical" else "ticket"
            template = _slo_summary(slo, "{{ $labels.model }}", kind)
            levels: tuple[Severity, ...] = (severity,)
            for k, lab in seen.items():
                hit = held.get(k)
                if hit is None and not quiet:
                    continue
                value = hit[1] if hit is not None else math.nan
                labels = {**lab, "slo": slo.name}
                sev_: Severity | None = severity if hit is not None else None
                ann = {"summary": render_template(template, lab, value)} if hit else {}
                out.append(RuleOutcome(name, labels, sev_, value, 0.0, ann, levels))


class _BucketLayout:
    """Where each (series, le) group of a bucket sum lands in a series x bucket matrix."""

    __slots__ = ("bounds", "col", "keys", "labels", "row")

    def __init__(self, buckets: SignalValues) -> None:
        series: dict[LabelKey, int] = {}
        self.labels: list[dict[str, str]] = []
        bounds: dict[float, int] = {}
        rows, cols = [], []
        for lab in buckets.labels:
            try:
                bound = float(lab.get("le", "x"))
            except ValueError:
                rows.append(-1)  # Prometheus skips a malformed or missing le
                cols.append(-1)
                continue
            rest = {k: v for k, v in lab.items() if k != "le"}
            key = tuple(sorted(rest.items()))
            r = series.get(key)
            if r is None:
                r = series[key] = len(self.labels)
                self.labels.append(rest)
            rows.append(r)
            cols.append(bounds.setdefault(bound, len(bounds)))
        order = sorted(bounds, key=lambda b: b)
        rank = {bounds[b]: i for i, b in enumerate(order)}
        self.keys = list(series)
        self.bounds = np.asarray(order, dtype=np.float64)
        self.row = np.asarray(rows, dtype=np.intp)
        self.col = np.asarray([rank.get(c, -1) for c in cols], dtype=np.intp)


def _quantiles(q: float, buckets: SignalValues, layout: _BucketLayout) -> SignalValues:
    """``histogram_quantile(q, ...)`` over summed bucket rates keyed by ``per`` and ``le``,
    vectorised over series; a series missing a bucket takes :func:`_bucket_quantile`."""
    n, k = len(layout.keys), len(layout.bounds)
    if n == 0:
        return _NONE
    ok = layout.row >= 0
    sums = np.zeros((n, k))
    seen = np.zeros((n, k), dtype=np.intp)
    # add, not assign: two le spellings of one bound ("1", "1.0") are one bucket
    np.add.at(sums, (layout.row[ok], layout.col[ok]), buckets.values[ok])
    np.add.at(seen, (layout.row[ok], layout.col[ok]), 1)
    m = np.where(seen > 0, sums, np.nan)
    out = np.full(n, np.nan)
    full = ~np.isnan(m).any(axis=1)
    if k >= 2 and math.isinf(layout.bounds[-1]) and layout.bounds[-1] > 0 and full.any():
        c = np.maximum.accumulate(m[full], axis=1)  # ensureMonotonic
        obs = c[:, -1]
        rank = q * obs
        hit = c[:, :-1] >= rank[:, None]
        b = np.where(hit.any(axis=1), hit.argmax(axis=1), k - 1)
        r = np.arange(len(b))
        bounds = layout.bounds
        end = bounds[np.minimum(b, k - 1)]
        prev = np.maximum(b - 1, 0)
        start = np.where(b > 0, bounds[prev], 0.0)
        count = np.where(b > 0, c[r, np.minimum(b, k - 1)] - c[r, prev], c[r, 0])
        rnk = np.where(b > 0, rank - c[r, prev], rank)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = start + (end - start) * (rnk / count)
        v = np.where(b == k - 1, bounds[k - 2], v)
        v = np.where((b == 0) & (bounds[0] <= 0), bounds[0], v)
        v = np.where(obs == 0, np.nan, v)
        out[full] = v
    for i in np.flatnonzero(~full).tolist():
        got = [(float(layout.bounds[j]), float(m[i, j])) for j in range(k) if not np.isnan(m[i, j])]
        out[i] = _bucket_quantile(q, got) if got else np.nan
    present = ~np.isnan(m).all(axis=1)
    if present.all():  # the layout's own lists: the same objects while it is cached
        return SignalValues(layout.keys, layout.labels, out)
    idx = np.flatnonzero(present).tolist()
    return SignalValues(
        [layout.keys[i] for i in idx], [layout.labels[i] for i in idx], out[present]
    )


def _reads(sig: Signal, aggregation: str, window: float) -> list[tuple[str, float]]:
    """The sample names a signal reads and how many seconds of them."""
    if sig.kind == "histogram":
        if aggregation == "mean":
            return [(f"{sig.metric}_sum", window), (f"{sig.metric}_count", window)]
        return [(f"{sig.metric}_bucket", window)]
    if sig.kind in ("ratio", "rate"):
        return [(sig.metric, window)]
    return [(sig.metric, LOOKBACK if aggregation == "last" else window)]


def _slo_reads(slo: SLO, window: float) -> list[tuple[str, float]]:
    if slo.sli == "availability":
        return [("inferwatch_requests_total", window)]
    if slo.sli == "latency":
        base = "inferwatch_request_duration_seconds"
        return [(f"{base}_bucket", window), (f"{base}_count", window)]
    return [("inferwatch_model_performance", window)]
