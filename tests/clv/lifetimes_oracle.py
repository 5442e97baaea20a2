"""The lifetimes oracle of analytics-lib's CLV tests (tests/it/clv.rs).

Reads a CSV of completed order lines (customer_id, date, revenue), keeps the
days before AS_OF, and computes with the real `lifetimes` package (0.11.3,
installed by `make lifetimes-env` into .venv-lifetimes):

* summary_data_from_transaction_data(freq="D", observation_period_end=AS_OF,
  monetary_value_col="revenue");
* BetaGeoFitter on every customer, GammaGammaFitter on the repeat customers;
* per customer P(alive), expected purchases in HORIZON days, expected
  average profit, and customer_lifetime_value over MONTHS months (30 days
  each with freq="D") at the monthly DISCOUNT rate.

Prints one JSON object on stdout.

usage: lifetimes_oracle.py TRANSACTIONS.csv AS_OF HORIZON_DAYS MONTHS DISCOUNT
"""

import json
import sys
import warnings

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

warnings.simplefilter("ignore")


def main():
    path, as_of, horizon, months, discount = sys.argv[1:6]
    horizon, months, discount = float(horizon), int(months), float(discount)
    tx = pd.read_csv(path, dtype={"customer_id": str})
    tx["date"] = pd.to_datetime(tx["date"])
    end = pd.Timestamp(as_of)
    tx = tx[tx["date"] < end]
    s = summary_data_from_transaction_data(
        tx, "customer_id", "date", monetary_value_col="revenue",
        observation_period_end=end, freq="D",
    ).sort_index()

    bgf = BetaGeoFitter(penalizer_coef=0.0)
    bgf.fit(s["frequency"], s["recency"], s["T"])
    rep = s[s["frequency"] > 0]
    ggf = GammaGammaFitter(penalizer_coef=0.0)
    ggf.fit(rep["frequency"], rep["monetary_value"])

    p_alive = bgf.conditional_probability_alive(s["frequency"], s["recency"], s["T"])
    expected = bgf.conditional_expected_number_of_purchases_up_to_time(
        horizon, s["frequency"], s["recency"], s["T"])
    aov = ggf.conditional_expected_average_profit(s["frequency"], s["monetary_value"])
    clv = ggf.customer_lifetime_value(
        bgf, s["frequency"], s["recency"], s["T"], s["monetary_value"],
        time=months, discount_rate=discount, freq="D")

    r, alpha, a, b = (float(bgf.params_[k]) for k in ["r", "alpha", "a", "b"])
    p, q, v = (float(ggf.params_[k]) for k in ["p", "q", "v"])
    out = {
        "customers": int(len(s)),
        "repeat_customers": int(len(rep)),
        "summary": {
            "customer_id": [str(i) for i in s.index],
            "frequency": s["frequency"].astype(int).tolist(),
            "recency": s["recency"].tolist(),
            "T": s["T"].tolist(),
            "monetary_value": s["monetary_value"].tolist(),
        },
        # The total log-likelihood on the data in days (lifetimes fits on
        # rescaled times, whose likelihood differs by a constant).
        "bgnbd": {"r": r, "alpha": alpha, "a": a, "b": b,
                  "log_likelihood": -float(BetaGeoFitter._negative_log_likelihood(
                      np.log([r, alpha, a, b]), s["frequency"].values, s["recency"].values,
                      s["T"].values, np.ones(len(s)), 0.0)) * len(s)},
        "gamma_gamma": {"p": p, "q": q, "v": v},
        "mean_p_alive": float(np.mean(p_alive)),
        "mean_expected_purchases": float(np.mean(expected)),
        "p_alive": [float(x) for x in p_alive],
        "expected_purchases": [float(x) for x in expected],
        "expected_average_order_value": [float(x) for x in aov],
        "clv": [float(x) for x in clv],
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
