"""The default ensemble for many series at once: one numpy step updates every series.

Why: a Python object per series costs a few microseconds per point, which caps one core near
100k points/s; a platform watching every route of every service needs more. This is the same
algorithm as :class:`~stanch.core.detectors.ensemble.EnsembleDetector`, still streaming and
causal (each step sees only the values given so far), with its state in arrays of one row per
series: under 2 KB per series (the sequence-novelty bitsets are packed into bytes). Scores
match the scalar detector's to within 1e-12 (a test pins this; only the order of a few float
operations differs), so either API can serve a series.

``weekly_ratio=True`` learns weekdays as ratios for every series of the batch, as
``EnsembleDetector(weekly_ratio=True)`` does (count-like series; see ``SeasonalBaseline``).

All series in a batch share the step's timestamp, as the engine's buckets do. A value that is
not finite (NaN, +-inf) means "no data for this series at this step": its state is left untouched
and its score is 0, exactly as the scalar detector treats it; a timestamp that is not finite is
no data for every series.

>>> import numpy as np
>>> b = BatchEnsemble(3)
>>> rng = np.random.default_rng(5)
>>> for i in range(1000):
...     _ = b.update(60.0 * i, 50 + rng.normal(0, 2, 3))
>>> scores = b.update(60.0 * 1000, np.array([50.0, 90.0, np.nan]))
>>> [bool(v >= 0.5) for v in scores]
[False, True, False]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from stanch.core.detectors._ew import MAD_TO_SIGMA, TINY
from stanch.core.detectors.ensemble import (
    CALIBRATION,
    SCALES,
    TAIL_LEVELS,
    TAIL_MIN,
    TAIL_SHARE,
)
from stanch.core.detectors.seasonal import (
    _LOG_CLIP,
    DAY,
    DAY_COVERAGE,
    FACTOR_FLOOR,
    FACTOR_RATE,
    RUNNING_MIN_S,
    VISIT_BLOCKS,
    VISIT_SPAN_MAX,
)

Array = npt.NDArray[np.float64]


class _Stats:
    """Vectorized :class:`~stanch.core.detectors._ew.EwRobust` over rows (and optional groups)."""

    __slots__ = ("alpha", "clip", "count", "dev", "level", "warmup")

    def __init__(self, shape: tuple[int, ...], alpha: float, warmup: int, clip: float) -> None:
        self.alpha = alpha
        self.warmup = warmup
        self.clip = clip
        self.level = np.zeros(shape)
        self.dev = np.zeros(shape)
        self.count = np.zeros(shape, dtype=np.int64)

    def spread(self) -> Array:
        return np.maximum(np.maximum(self.dev * MAD_TO_SIGMA, 1e-9 * np.abs(self.level)), TINY)

    def z(self, x: Array) -> Array:
        out: Array = np.where(self.count > 0, (x - self.level) / self.spread(), 0.0)
        return out

    def learn(self, x: Array, z: Array, mask: npt.NDArray[np.bool_]) -> None:
        count = self.count + mask
        first = mask & (count == 1)
        warm = mask & (count > 1) & (count <= self.warmup)
        steady = mask & (count > self.warmup)
        with np.errstate(divide="ignore"):
            alpha = np.where(warm, np.maximum(self.alpha, 1.0 / np.maximum(count, 1)), self.alpha)
        bounded = self.level + np.clip(z, -self.clip, self.clip) * self.spread()
        target = np.where(steady, bounded, x)
        move = (warm | steady).astype(np.float64) * alpha
        self.dev = self.dev + move * (np.abs(target - self.level) - self.dev)
        level = self.level + move * (target - self.level)
        self.level = np.where(first, x, level)
        self.count = count


class BatchEnsemble:
    """``update(t, values) -> scores`` for ``n`` series, each as ``EnsembleDetector`` would."""

    def __init__(
        self,
        n: int,
        *,
        half_life: float = 1000.0,
        warmup: int = 150,
        quiet: int = 200,
        scales: tuple[int, ...] = SCALES,
        record_half_life: float = 4000.0,
        margin: float = 3.0,
        record_lag: int = 72,
        boost: float = 0.3,
        levels: int = 8,
        order: int = 2,
        mute: int = 29,
        period: float = DAY,
        bins: int = 144,
        seasonal_rate: float = 0.5,
        weekly: bool = True,
        weekly_days: float = 1.0 / 3.0,
        weekly_ratio: bool = False,
        clip: float = 3.0,
        tail_cost: float = 0.3,
        tail_half_life: float = 1000.0,
    ) -> None:
        if n < 1 or not scales or min(scales) < 1 or quiet < warmup or margin <= 0 or mute < 0:
            raise ValueError("n >= 1, scales >= 1, quiet >= warmup, margin > 0, mute >= 0")
        if not 0.0 <= boost < 1.0 or levels < 2 or order < 1 or levels**order > 4096:
            raise ValueError("0 <= boost < 1, levels >= 2, order >= 1, levels ** order <= 4096")
        alpha = 1.0 - 0.5 ** (1.0 / half_life)
        self.n = n
        self.warmup = warmup
        self.quiet = quiet
        self.scales = tuple(scales)
        self.margin = margin
        self.record_lag = max(1, record_lag)
        self.boost = boost
        self.mute = mute
        self.period = period
        self.bins = bins
        self.rate = seasonal_rate
        self.weekly = weekly
        self.weekly_days = weekly_days
        self.weekly_ratio = weekly_ratio
        self.record_decay = 0.5 ** (1.0 / record_half_life)
        self.level = _Stats((n,), alpha, warmup, clip)
        self.residual = _Stats((n,), alpha, warmup, clip)
        self.scale_stats = [_Stats((n,), alpha, warmup, clip) for _ in self.scales]
        self.daily = np.full((n, bins), np.nan)
        self.weekly_offsets = np.zeros((n, 7))
        # Each series' visit not yet folded into its profile (see SeasonalBaseline.learn): its
        # number (t // slot width, -1: none), current sub-block with that block's sum and count,
        # and the means of its finished sub-blocks (NaN: none).
        self.visit_number = np.full(n, -1, dtype=np.int64)
        self.visit_block = np.zeros(n, dtype=np.int64)
        self.block_sum = np.zeros(n)
        self.block_count = np.zeros(n, dtype=np.int64)
        self.blocks = np.full((n, VISIT_BLOCKS), np.nan)
        # Multiplicative weekday factors (NaN: not measured yet) and the day being measured (see
        # SeasonalBaseline._measure): its number (-1: none), value and profile sums, the time
        # they cover; and whether a series ever went negative (then weekdays are offsets).
        self.factors = np.full((n, 7), np.nan)
        self.day_number = np.full(n, -1, dtype=np.int64)
        self.day_value = np.zeros(n)
        self.day_profile = np.zeros(n)
        self.day_covered = np.zeros(n)
        self.signed = np.zeros(n, dtype=bool)
        width = max(self.scales)
        self.ring = np.zeros((n, width))
        self.pos = np.zeros(n, dtype=np.int64)  # next slot to write, per series
        self.sums = np.zeros((len(self.scales), n))
        self.count = np.zeros(n, dtype=np.int64)
        n_scales = len(self.scales)
        self.top = np.zeros((n_scales, n))
        self.runner_up = np.zeros((n_scales, n))
        self.pending = np.zeros((n_scales, n))
        self.block = np.zeros(n, dtype=np.int64)
        self.muted = np.zeros(n, dtype=np.int64)
        # Each series' EW shares of past scores at or above each of TAIL_LEVELS (step 6).
        self.tail_cost = tail_cost
        self.tail_decay = 1.0 - 0.5 ** (1.0 / tail_half_life)
        self.tail_levels = np.asarray(TAIL_LEVELS)
        self.tail = np.zeros((n, len(TAIL_LEVELS)), dtype=np.float32)  # shares need no more
        self.tail_n = np.zeros(n, dtype=np.int64)
        self.novelty = _BatchNovelty(n, levels, order)
        self._rows = np.arange(n)

    def nbytes(self) -> int:
        """Bytes of learned state (all arrays), for the memory budget."""
        arrays: list[Any] = [
            self.daily,
            self.weekly_offsets,
            self.visit_number,
            self.visit_block,
            self.block_sum,
            self.block_count,
            self.blocks,
            self.factors,
            self.day_number,
            self.day_value,
            self.day_profile,
            self.day_covered,
            self.signed,
            self.ring,
            self.pos,
            self.sums,
            self.count,
            self.top,
            self.runner_up,
            self.pending,
            self.block,
            self.muted,
            self.tail,
            self.tail_n,
            *self.novelty.arrays(),
        ]
        for s in [self.level, self.residual, *self.scale_stats]:
            arrays += [s.level, s.dev, s.count]
        return sum(int(a.nbytes) for a in arrays)

    def update(self, t: float, values: npt.ArrayLike) -> Array:
        """Score one step of every series (NaN or +-inf: no data), then learn from it."""
        x = np.asarray(values, dtype=np.float64)
        if x.shape != (self.n,):
            raise ValueError(f"expected {self.n} values, got shape {x.shape}")
        if not math.isfinite(t):  # no timestamp: no data for any series, nothing learned
            return np.zeros(self.n)
        mask = np.isfinite(x)
        x = np.where(mask, x, 0.0)
        self.count = self.count + mask

        level = self.level
        z_level = level.z(x)
        expected = np.where(level.count > 0, level.level, x)
        residual = x - expected

        slot = int((t % self.period) / self.period * self.bins) % self.bins
        today = int(t // DAY)
        weekly = self.weekly_offsets[:, today % 7] if self.weekly else np.zeros(self.n)
        visit = self._visit_value()  # one median per step: learning only resets it
        s_expected = self._expected(today, slot, visit)
        seen = ~np.isnan(s_expected)
        s_ready = self.residual.count > self.residual.warmup
        use_seasonal = seen & s_ready & (self.residual.spread() < level.spread())
        residual = np.where(use_seasonal, x - s_expected, residual)

        level.learn(x, z_level, mask)
        self._learn_seasonal(t, x, mask, slot, weekly, visit, today)

        novelty = self.novelty.update(x, mask)
        width = self.ring.shape[1]
        ratio = np.full(self.n, -1.0)
        z_abs = np.zeros((len(self.scales), self.n))
        for i, k in enumerate(self.scales):
            leaving = self.ring[self._rows, (self.pos - k) % width]
            self.sums[i] = np.where(mask, self.sums[i] + residual - leaving, self.sums[i])
            stat = self.scale_stats[i]
            mean = self.sums[i] / k
            z = stat.z(mean)
            stat.learn(mean, z, mask)
            z_abs[i] = np.abs(z)
            ratio = np.maximum(ratio, z_abs[i] / (self.runner_up[i] + self.margin))
        self.ring[self._rows, self.pos] = np.where(mask, residual, self.ring[self._rows, self.pos])
        self.pos = np.where(mask, (self.pos + 1) % width, self.pos)

        scoring = mask & (self.count > self.warmup)
        self._learn_records(z_abs, scoring)
        emit = scoring & (self.count > self.quiet)
        muting = emit & (self.muted > 0)
        self.muted = np.where(muting, self.muted - 1, self.muted)
        size = np.maximum(ratio, 0.0) / (1.0 + np.maximum(ratio, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            sharpened = np.where(
                size > 0.0, size ** ((1.0 - self.boost * novelty) * CALIBRATION), 0.0
            )
        penalty = self._tail_penalty(sharpened, emit)
        out: Array = np.where(emit & ~muting, np.maximum(sharpened - penalty, 0.0), 0.0)
        self.muted = np.where(out >= 0.5, self.mute, self.muted)
        return out

    def _tail_penalty(self, score: Array, emit: npt.NDArray[np.bool_]) -> Array:
        """Each series' penalty from its own score tail (see EnsembleDetector), then learn."""
        levels = self.tail_levels
        # Shares fall with the level, so the highest level reaching TAIL_SHARE is the count of
        # levels that do, minus one (-1: none).
        highest = np.count_nonzero(self.tail >= TAIL_SHARE, axis=1) - 1
        trusted = (self.tail_n >= TAIL_MIN) & (highest >= 0)
        penalty: Array = np.where(
            trusted, self.tail_cost * (levels[np.maximum(highest, 0)] - levels[0]), 0.0
        )
        self.tail_n = self.tail_n + emit
        rate = np.maximum(self.tail_decay, 1.0 / np.maximum(self.tail_n, 1))
        above = (score[:, None] >= levels[None, :]).astype(np.float64)
        learned = (self.tail + rate[:, None] * (above - self.tail)).astype(np.float32)
        self.tail = np.where(emit[:, None], learned, self.tail)
        return np.maximum(penalty, 0.0)

    def _learn_records(self, z_abs: Array, scoring: npt.NDArray[np.bool_]) -> None:
        """Each scale's decaying top two block maxima of |z|, as the scalar detector keeps."""
        decay = np.where(scoring, self.record_decay, 1.0)
        top = self.top * decay
        runner_up = self.runner_up * decay
        pending = np.where(scoring, np.maximum(self.pending, z_abs), self.pending)
        block = self.block + scoring
        merge = scoring & (block >= self.record_lag)
        new_top = merge & (pending > top)
        new_runner_up = merge & ~new_top & (pending > runner_up)
        self.runner_up = np.where(new_top, top, np.where(new_runner_up, pending, runner_up))
        self.top = np.where(new_top, pending, top)
        self.pending = np.where(merge, 0.0, pending)
        self.block = np.where(merge, 0, block)

    def _multiplicative(self) -> npt.NDArray[np.bool_]:
        """Series whose weekdays scale the profile (see SeasonalBaseline.multiplicative)."""
        out: npt.NDArray[np.bool_] = ~self.signed & (self.weekly and self.weekly_ratio)
        return out

    def _norm(self, today: int) -> Array:
        """What each series divides a value of day ``today`` by before its profile learns it:
        the weekday factor once known, else the day's running ratio (SeasonalBaseline._norm)."""
        factor = self.factors[:, today % 7]
        prior = self.residual.spread() * (self.period / self.bins)
        den = self.day_profile + prior
        running = (self.day_number == today) & (den > 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.maximum(FACTOR_FLOOR, (self.day_value + prior) / den)
        out: Array = np.where(np.isnan(factor), np.where(running, ratio, 1.0), factor)
        return out

    def _expected(self, today: int, slot: int, visit: Array) -> Array:
        """Each series' seasonal expectation at ``slot`` of day ``today``, counting the visit
        under way whose value is ``visit`` (SeasonalBaseline.expected)."""
        weekday = today % 7
        if not (self.weekly and self.weekly_ratio):  # offsets only: skip the ratio arithmetic
            base = self._slot_value(slot, visit)
            return base + self.weekly_offsets[:, weekday] if self.weekly else base
        multiplicative = self._multiplicative()
        norm = self._norm(today)
        value = np.where(multiplicative, visit / norm, visit)
        base = self._slot_value(slot, value)
        additive = base + self.weekly_offsets[:, weekday]
        running = (self.day_number == today) & (self.day_covered >= RUNNING_MIN_S)
        scale = np.where(np.isnan(self.factors[:, weekday]) & ~running, 1.0, norm)
        out: Array = np.where(multiplicative, base * scale, additive)
        return out

    def _slot_value(self, slot: int, value: Array) -> Array:
        """Each series' profile at ``slot``, counting a visit of that slot not yet committed,
        whose value is ``value`` (for a slot seen before; a slot never seen has no value until
        its first visit ends)."""
        daily = self.daily[:, slot]
        pending = (self.visit_number % self.bins == slot) & ~np.isnan(daily) & ~np.isnan(value)
        return np.where(pending, self._learned(daily, value), daily)

    def _visit_value(self) -> Array:
        """Each series' median of its visit's sub-block means so far (NaN: no point yet)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            current = np.where(self.block_count > 0, self.block_sum / self.block_count, np.nan)
        means = np.concatenate([self.blocks, current[:, None]], axis=1)
        k = np.count_nonzero(~np.isnan(means), axis=1)
        ordered = np.sort(means, axis=1)  # NaN sort last
        low = ordered[self._rows, np.maximum((k - 1) // 2, 0)]
        high = ordered[self._rows, np.minimum(k // 2, means.shape[1] - 1)]
        out: Array = np.where(k > 0, 0.5 * (low + high), np.nan)
        return out

    def _learned(self, current: Array, value: Array) -> Array:
        return np.where(np.isnan(current), value, current + self.rate * self._step(value - current))

    def _step(self, r: Array) -> Array:
        stat = self.residual
        limit = stat.clip * stat.spread()
        return np.where(stat.count > stat.warmup, np.clip(r, -limit, limit), r)

    def _learn_seasonal(
        self,
        t: float,
        x: Array,
        mask: npt.NDArray[np.bool_],
        slot: int,
        weekly: Array,
        visit: Array,
        today: int,
    ) -> None:
        flip = mask & (x < 0.0) & ~self.signed
        if flip.any():  # a negative value: not a rate, weekdays are offsets from here on
            self.signed = self.signed | flip
            self.factors[flip] = np.nan
        width = self.period / self.bins
        number = int(t // width)
        starting = mask & (self.visit_number != number)
        collected = (self.block_count > 0) | ~np.all(np.isnan(self.blocks), axis=1)
        commit = starting & collected
        if commit.any():
            self._commit(commit, width, visit, number)
        self.visit_number = np.where(starting, number, self.visit_number)
        self.visit_block = np.where(starting, 0, self.visit_block)
        self.block_sum = np.where(starting, 0.0, self.block_sum)
        self.block_count = np.where(starting, 0, self.block_count)
        self.blocks[starting] = np.nan

        stat = self.residual
        expected = self._expected(today, slot, np.where(starting, np.nan, visit))
        learn = mask & ~np.isnan(expected)
        r = np.where(learn, x - expected, 0.0)
        stat.learn(r, stat.z(r), learn)

        block = min(VISIT_BLOCKS - 1, int((t - number * width) / width * VISIT_BLOCKS))
        finish = mask & (self.visit_block != block) & (self.block_count > 0)
        if finish.any():
            rows = self._rows[finish]
            self.blocks[rows, self.visit_block[finish]] = (
                self.block_sum[finish] / self.block_count[finish]
            )
            self.block_sum = np.where(finish, 0.0, self.block_sum)
            self.block_count = np.where(finish, 0, self.block_count)
        self.visit_block = np.where(mask, block, self.visit_block)
        self.block_sum = np.where(mask, self.block_sum + (x - weekly), self.block_sum)
        self.block_count = self.block_count + mask

    def _commit(
        self, commit: npt.NDArray[np.bool_], width: float, value: Array, number: int
    ) -> None:
        slots = self.visit_number % self.bins
        current = self.daily[self._rows, slots]
        span = np.maximum(0, number - self.visit_number) * width
        day = (self.visit_number * width // DAY).astype(np.int64)
        multiplicative = self._multiplicative()
        measured = commit & multiplicative & ~np.isnan(current)
        if measured.any():
            self._measure(measured, day, value, current, np.minimum(span, VISIT_SPAN_MAX))
        norm = np.ones(self.n)
        for today in np.unique(day[commit & multiplicative]):
            norm = np.where(day == today, self._norm(int(today)), norm)
        learned_value = np.where(multiplicative, value / norm, value)
        self.daily[self._rows, slots] = np.where(
            commit, self._learned(current, learned_value), current
        )
        if self.weekly:
            alpha = np.minimum(1.0, span / (DAY * self.weekly_days))
            days = day % 7
            step = self._step(value - current)
            learned = commit & ~multiplicative & ~np.isnan(current)
            self.weekly_offsets[self._rows, days] += np.where(
                learned, alpha * (1.0 - self.rate) * step, 0.0
            )

    def _measure(
        self,
        rows: npt.NDArray[np.bool_],
        day: npt.NDArray[np.int64],
        value: Array,
        profile: Array,
        span: Array,
    ) -> None:
        """Add each of ``rows``' committed visit to its day's measure, first closing a day that
        ended (SeasonalBaseline._measure and _close_day)."""
        new = rows & (self.day_number != day)
        close = new & (self.day_number >= 0) & (self.day_covered >= DAY_COVERAGE)
        close &= self.day_profile > 0.0
        if close.any():
            weekday = self.day_number % 7
            current = self.factors[self._rows, weekday]
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.maximum(FACTOR_FLOOR, self.day_value / self.day_profile)
                step = np.clip(np.log(ratio / current), -_LOG_CLIP, _LOG_CLIP)
                moved = np.maximum(FACTOR_FLOOR, current * np.exp(FACTOR_RATE * step))
            learned = np.where(np.isnan(current), ratio, moved)
            self.factors[self._rows, weekday] = np.where(close, learned, current)
            pinned = close & ~np.isnan(self.factors).any(axis=1)
            if pinned.any():  # a geometric mean of 1 (see SeasonalBaseline._close_day)
                logs = np.log(self.factors[pinned])
                mean = np.exp(np.sum(logs, axis=1) / 7.0)
                self.factors[pinned] /= mean[:, None]
                self.daily[pinned] *= mean[:, None]
        self.day_number = np.where(new, day, self.day_number)
        self.day_value = np.where(new, 0.0, self.day_value)
        self.day_profile = np.where(new, 0.0, self.day_profile)
        self.day_covered = np.where(new, 0.0, self.day_covered)
        self.day_value = np.where(rows, self.day_value + value * span, self.day_value)
        self.day_profile = np.where(rows, self.day_profile + profile * span, self.day_profile)
        self.day_covered = np.where(rows, self.day_covered + span, self.day_covered)


class _BatchNovelty:
    """Vectorized :class:`~stanch.core.detectors.novelty.SequenceNovelty`, bitsets packed in
    bytes (one row per series)."""

    __slots__ = (
        "contexts",
        "ctx_offsets",
        "hi",
        "history",
        "length",
        "levels",
        "lo",
        "order",
        "rows",
        "tr_offsets",
        "transitions",
    )

    def __init__(self, n: int, levels: int, order: int) -> None:
        self.levels = levels
        self.order = order
        self.ctx_offsets = [0] * (order + 1)
        self.tr_offsets = [0] * (order + 1)
        for k in range(1, order + 1):
            if k < order:
                self.ctx_offsets[k + 1] = self.ctx_offsets[k] + levels**k
            self.tr_offsets[k] = self.tr_offsets[k - 1] + levels**k
        ctx_bits = sum(levels**k for k in range(1, order + 1))
        tr_bits = sum(levels**k for k in range(1, order + 2))
        self.contexts = np.zeros((n, (ctx_bits + 7) // 8), dtype=np.uint8)
        self.transitions = np.zeros((n, (tr_bits + 7) // 8), dtype=np.uint8)
        self.lo = np.full(n, np.inf)
        self.hi = np.full(n, -np.inf)
        self.history = np.zeros((n, order), dtype=np.int16)  # newest last
        self.length = np.zeros(n, dtype=np.int8)
        self.rows = np.arange(n)

    def arrays(self) -> list[Any]:
        return [self.contexts, self.transitions, self.lo, self.hi, self.history, self.length]

    def _has(self, bits: npt.NDArray[np.int64], table: npt.NDArray[np.uint8]) -> Any:
        return ((table[self.rows, bits >> 3] >> (bits & 7).astype(np.uint8)) & 1).astype(bool)

    def _set(self, bits: npt.NDArray[np.int64], table: npt.NDArray[np.uint8], where: Any) -> None:
        rows = self.rows[where]
        b = bits[where]
        table[rows, b >> 3] |= (1 << (b & 7)).astype(np.uint8)

    def update(self, x: Array, mask: npt.NDArray[np.bool_]) -> Array:
        """Novelty in [0, 1] of every series' value (0 where ``mask`` is False), then learn."""
        levels, order = self.levels, self.order
        self.lo = np.where(mask, np.minimum(self.lo, x), self.lo)
        self.hi = np.where(mask, np.maximum(self.hi, x), self.hi)
        span = self.hi - self.lo
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = np.where(span > 0.0, (x - self.lo) / span * (levels - 1) + 0.5, 0.0)
        q = np.where(mask, scaled, 0.0).astype(np.int64)
        seen = np.zeros(len(x), dtype=np.int64)
        novel = np.zeros(len(x), dtype=np.int64)
        code = np.zeros(len(x), dtype=np.int64)
        for k in range(1, order + 1):
            active = mask & (self.length >= k)
            code = code + self.history[:, order - k].astype(np.int64) * levels ** (k - 1)
            ctx_bit = np.where(active, self.ctx_offsets[k] + code, 0)
            tr_bit = np.where(active, self.tr_offsets[k] + code * levels + q, 0)
            known = active & self._has(ctx_bit, self.contexts)
            seen += known
            novel += known & ~self._has(tr_bit, self.transitions)
            self._set(ctx_bit, self.contexts, active & ~known)
            self._set(tr_bit, self.transitions, active)
        new_level = mask & ~self._has(q, self.transitions)
        self._set(q, self.transitions, new_level)
        with np.errstate(invalid="ignore", divide="ignore"):
            shared = np.where(seen > 0, novel / np.maximum(seen, 1), 0.0)
        out: Array = np.where(
            new_level, 1.0, np.where(seen > 0, shared, np.where(self.length > 0, 0.5, 0.0))
        )
        out = np.where(mask, out, 0.0)
        shifted = np.concatenate([self.history[:, 1:], q[:, None].astype(np.int16)], axis=1)
        self.history = np.where(mask[:, None], shifted, self.history)
        self.length = np.where(mask, np.minimum(self.length + 1, order), self.length).astype(
            np.int8
        )
        return out
