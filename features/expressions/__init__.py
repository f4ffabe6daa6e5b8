"""Qlib's expression language, parsed into a typed tree and compiled to Polars (issue 12).

Public API: ``parse`` (text -> ``Node``), ``reach`` ((lookback, horizon) in trading days, ``UNBOUNDED`` for
all history), ``fields`` (the ``$field`` names read), ``compute_columns`` (named expressions on bars over a
calendar) and ``ExpressionError`` (names the set, the column and the position).

Language: ``$field`` (any bars column), numbers, ``+ - * / **``, comparisons ``> >= < <= == !=``, ``&`` ``|``,
parentheses, unary minus (``0 - x``; Qlib's own Expression lacks it) and Qlib 0.9.7's operators with its names
and argument order: Abs Sign Log Not Power Add Sub Mul Div Greater Less Gt Ge Lt Le Eq Ne And Or If Ref Mean Sum
Std Var Skew Kurt Max Min Med Mad Quantile Rank Count Delta IdxMax IdxMin Slope Rsquare Resi WMA EMA Corr Cov,
plus the cross-sectional CSRank CSZScore CSDemean. Precedence is Python's, as Qlib evaluates the text as
Python: ``&`` and ``|`` bind tighter than comparisons (write ``($a > 0) & ($b > 0)``).

Semantics (Qlib 0.9.7 on pandas/numpy):

- dtypes: fields are float32 and element-wise arithmetic on them stays float32 (numbers adapt, so
  ``$volume + 1e-12`` differs from ``$volume`` only at 0); rolling aggregations and cross-sectional operators
  compute in float64; float32 with float64 gives float64; every column is cast to float32 at the end.
- NaN: Qlib's NaN propagates through arithmetic, ``Greater``/``Less`` (np.maximum/minimum) and ``Log``;
  comparisons with NaN are False (``!=`` True), so ``Mean($close > Ref($close, 1), 5)`` counts a missing
  previous day as 0; ``If`` takes any non-zero condition (NaN included) as true. In the output NaN is null.
- Rolling windows (``N >= 1``) count calendar days, use ``min_periods=1`` and skip NaN and +-inf (pandas turns
  inf into NaN before aggregating); ``Std``/``Var`` use ddof=1; ``Count`` counts everything but NaN (inf
  included, as pandas does) and is 0, not NaN, on an empty window. ``N = 0`` is an expanding window from the
  instrument's first day (Qlib's value depends on where its query started; here it is the full-history value).
- ``Ref(x, 0)`` and ``Delta(x, 0)``: Qlib takes the first value of the series it loaded, i.e. of the
  instrument's first day when the query starts before the listing. Here it is always that first-day value
  (whatever the window run's start), so their reach is ``UNBOUNDED``.
- ``EMA(x, N)`` is pandas' ``ewm(span=N, adjust=True)`` (a float ``N`` in (0, 1) is the smoothing factor);
  ``WMA`` is Qlib's ``nanmean(w * x)`` with linear weights normalised over the whole window (a window with
  missing values is *not* renormalised).
- ``Slope``/``Rsquare``/``Resi`` leave an infinite input out of their windows like NaN (pandas' rule for
  the other rolling operators); Qlib's Cython kernels instead turn NaN from the first infinite value on, as
  their running sums become inf - inf. Reproducing that would make every such column depend on all history.
- ``Std``/``Var`` run pandas' own rolling-variance kernel (``numpy_fallback``), so a window of equal values
  after different ones gets Qlib's running-sum residue rather than 0 (Alpha158's VSTD / WVMA divide it by
  1e-12). The residue depends on the series' start, as in Qlib: on those cells a run with a shorter history
  can differ from a full-history one.
- ``Log`` and ``Power`` are numpy's own routines (``numpy_fallback``): Polars' float32 ``log``/``pow`` differ
  from numpy's in the last bit on most cells. Division by a number is IEEE division (Polars would multiply
  by the reciprocal), so element-wise float32 arithmetic equals Qlib's bit for bit.
- Booleans in arithmetic are 0/1 (numpy's bool + bool would be a logical or; ``Ref`` of a comparison is a 0/1
  float series rather than pandas' object series).
- Cross-sectional operators, per date over the instruments with a row that day (or the ``members`` of that
  day): ``CSRank`` = pandas ``rank(pct=True)``, average rank of ties divided by the number of non-NaN values
  (NaN stays NaN, +-inf rank as the extremes); ``CSZScore`` = (x - mean) / std with ddof=1 (pandas' std, as in
  Qlib's CSZScoreNorm) over the finite values, NaN for non-finite cells, a lone value or a constant day;
  ``CSDemean`` = x minus that mean. Rows outside ``members`` get NaN.

Evaluation (``compute_columns``): instruments are laid out one after the other, separated by padding rows,
so shifts and bounded windows run over whole columns; operators that need each instrument's series as a whole
(expanding windows, ``Ref(x, 0)``, EMA, WMA, Med and Quantile) run per instrument with ``.over``;
cross-sectional ones per date. Every distinct subtree used more than once is one column, computed once, in
stages of ``with_columns``; the windows of one operator on one input (Rank, IdxMax, IdxMin, Slope, Rsquare,
Resi, Corr) share their common work as columns of their own (``families``). Without cross-sectional
operators, groups of whole instruments are computed one after the other to bound memory.

Reach (``reach``) follows Qlib's ``get_extended_window_size`` where that is exact: a window N adds N - 1 days,
``Ref(x, N)`` adds N days back (N < 0: -N days ahead). Where Qlib's is not exact it is corrected: ``Delta(x, N)``
needs N days (Qlib says N - 1); ``EMA`` (infinite memory) needs the days after which the dropped history weighs
below 1e-9, so that a run equals a full-history run to float32 precision (Qlib says N - 1); N = 0, ``Ref(x, 0)``
and ``Delta(x, 0)`` are ``UNBOUNDED``.
"""

from features.expressions.engine import DEFAULT_REQUIRED, compute_columns
from features.expressions.nodes import UNBOUNDED, Call, ExpressionError, Field, Literal, Node, fields
from features.expressions.operators import OPERATORS, cross_sectional, reach
from features.expressions.parser import parse

__all__ = [
    "DEFAULT_REQUIRED",
    "OPERATORS",
    "UNBOUNDED",
    "Call",
    "ExpressionError",
    "Field",
    "Literal",
    "Node",
    "compute_columns",
    "cross_sectional",
    "fields",
    "parse",
    "reach",
]
