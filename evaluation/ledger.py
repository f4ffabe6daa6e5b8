"""Executing one day's sell and buy orders against the cash balance, one after the other, as Qlib's exchange does.

Orders run serially, so each sees the cash left by the ones before it. The arithmetic is vectorised: the
running cash is an ``add``/``subtract.accumulate`` over the orders (numpy accumulates strictly left to right, so
the float results equal a sequential loop). Only when some order meets a cash limit does the day fall back to a
plain loop over its orders, because from that order on the amounts depend on the clipped ones.

Rules (Qlib 0.9 ``Exchange._calc_trade_info_by_order`` with impact_cost 0 and no volume limit):

* cost = max(value * rate, min_cost), and 0 when the traded value is <= 1e-5 (nothing is booked then).
* a sell delivers the whole holding; it is cancelled when cash + value cannot pay its cost.
* a buy is cancelled when cash cannot pay ``max(value * rate, min_cost)``; when cash cannot pay value + cost it
  is cut to what the cash buys (after cost) and rounded down to trade units; otherwise it is rounded down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: traded values at or below this are "no deal": no cost, no booking (Qlib's threshold)
DEAL_EPSILON = 1e-5

Rounder = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Fills:
    deal: np.ndarray  # adjusted amount actually traded (0 for a cancelled order)
    value: np.ndarray  # deal * price
    cost: np.ndarray  # fee charged
    cash: float  # cash after the last order

    @property
    def booked(self) -> np.ndarray:
        return self.value > DEAL_EPSILON


def fee(value: np.ndarray, rate: float, min_cost: float) -> np.ndarray:
    return np.where(value > DEAL_EPSILON, np.maximum(value * rate, min_cost), 0.0)


def _scalar_fee(value: float, rate: float, min_cost: float) -> float:
    return max(value * rate, min_cost) if value > DEAL_EPSILON else 0.0


def execute_sells(cash: float, amount: np.ndarray, price: np.ndarray, rate: float, min_cost: float) -> Fills:
    value = amount * price
    cost = fee(value, rate, min_cost)
    proceeds = np.where(value > DEAL_EPSILON, value - cost, 0.0)
    running = np.add.accumulate(np.concatenate([[cash], proceeds]))
    cannot_pay = running[:-1] + value < np.maximum(value * rate, min_cost)
    if not cannot_pay.any():
        return Fills(deal=amount.copy(), value=value, cost=cost, cash=float(running[-1]))
    # rare: a sale too small to pay its own minimum fee out of (almost) no cash
    deal = amount.copy()
    for j in range(amount.size):
        v = float(amount[j] * price[j])
        if cash + v < max(v * rate, min_cost):
            deal[j], v = 0.0, 0.0
        c = _scalar_fee(v, rate, min_cost)
        value[j], cost[j] = v, c
        if v > DEAL_EPSILON:
            cash += v - c
    return Fills(deal=deal, value=value, cost=cost, cash=cash)


def _max_amount_for_cash(price: float, cash: float, rate: float, min_cost: float) -> float:
    """Largest amount whose value plus fee fits in ``cash``."""
    if cash < min_cost:
        return 0.0
    critical = min_cost / rate + min_cost if rate > 0 else np.inf
    if cash >= critical:
        return cash / (1 + rate) / price
    return (cash - min_cost) / price


def execute_buys(
    cash: float,
    amount: np.ndarray,
    price: np.ndarray,
    factor: np.ndarray,
    rate: float,
    min_cost: float,
    rounder: Rounder,
) -> Fills:
    wanted = amount * price
    floor = np.maximum(wanted * rate, min_cost)
    deal = rounder(amount, factor)
    value = deal * price
    cost = fee(value, rate, min_cost)
    spend = np.where(value > DEAL_EPSILON, value + cost, 0.0)
    running = np.subtract.accumulate(np.concatenate([[cash], spend]))
    short = running[:-1] < wanted + floor
    if not short.any():
        return Fills(deal=deal, value=value, cost=cost, cash=float(running[-1]))
    first = int(np.argmax(short))
    cash = float(running[first])
    for j in range(first, amount.size):
        if cash < floor[j]:
            d = 0.0
        elif cash < wanted[j] + floor[j]:
            most = _max_amount_for_cash(float(price[j]), cash, rate, min_cost)
            d = float(rounder(np.asarray(min(most, float(amount[j]))), factor[j]))
        else:
            d = float(deal[j])
        v = d * float(price[j])
        c = _scalar_fee(v, rate, min_cost)
        deal[j], value[j], cost[j] = d, v, c
        if v > DEAL_EPSILON:
            cash -= v + c
    return Fills(deal=deal, value=value, cost=cost, cash=cash)
