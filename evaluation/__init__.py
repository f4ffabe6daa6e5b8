"""Evaluation of scores as Qlib's SigAnaRecord and PortAnaRecord compute it.

* ``signal``: daily IC / Rank IC, long-short returns and their summary (SigAnaRecord).
* ``backtest``: the daily TopkDropout backtest and its report (PortAnaRecord), built on ``market`` (exchange
  rules), ``topk_dropout`` (the strategy's picks) and ``ledger`` (order execution against cash).
* ``risk``: Qlib's ``risk_analysis``.
* ``scores_file``: reading and checking score files.
"""
