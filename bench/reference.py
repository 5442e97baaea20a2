#!/usr/bin/env python3
"""The reference stack for the pipeline benchmark: pandas + scikit-learn +
xgboost doing the same stages as `analytics bench` on the same Parquet data
(shared/spec/benchmark.md). Prints one JSON object of the same shape.

Usage: reference.py DATA_DIR
"""
import json
import resource
import sys
import time

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
import xgboost as xgb

DAY = pd.Timedelta(days=1)


def load(d):
    customers = pd.read_parquet(f"{d}/customers.parquet")
    products = pd.read_parquet(f"{d}/products.parquet")
    orders = pd.read_parquet(f"{d}/orders.parquet")
    lines = pd.read_parquet(f"{d}/order_items.parquet")
    return customers, products, orders, lines


def clean(customers, products, orders, lines):
    # Final cleaning, the same rules as analytics-lib's clean.rs.
    customers = customers.dropna(subset=["customer_id", "signup_date"]).drop_duplicates("customer_id")
    products = products[products.list_price > 0].drop_duplicates("product_id")
    orders = orders.dropna()
    orders = orders.assign(status=orders.status.str.strip().str.lower(), channel=orders.channel.str.strip().str.lower())
    orders = orders[orders.status.isin(["completed", "canceled", "returned"]) & orders.channel.isin(["web", "app", "store"])]
    orders = orders.drop_duplicates("order_id")
    orders = orders[orders.customer_id.isin(customers.customer_id)]
    lines = lines.dropna().drop_duplicates(["order_id", "line_no"])
    lines = lines[lines.order_id.isin(orders.order_id) & lines.product_id.isin(products.product_id)]
    lines = lines[(lines.quantity > 0) & (lines.unit_price > 0) & (lines.discount >= 0) & (lines.discount < 1)]
    orders = orders[orders.order_id.isin(lines.order_id)]
    return customers, products, orders, lines


def sales_lines(products, orders, lines):
    s = lines.merge(orders, on="order_id").merge(products[["product_id", "category"]], on="product_id", how="left")
    s["revenue"] = s.quantity * s.unit_price * (1 - s.discount)
    s["order_date"] = s.order_ts.dt.normalize()
    return s


def kpis(s, orders):
    done = s[s.status == "completed"]
    revenue = done.revenue.sum()
    n_orders = done.order_id.nunique()
    as_of = orders.order_ts.max().normalize() + DAY
    w = 90 * DAY
    early = set(done[(done.order_date >= as_of - 2 * w) & (done.order_date < as_of - w)].customer_id)
    late = set(done[(done.order_date >= as_of - w) & (done.order_date < as_of)].customer_id)
    per_cust = done.groupby("customer_id").order_id.nunique()
    monthly = done.groupby(done.order_date.dt.strftime("%Y-%m")).revenue.sum()
    return {
        "revenue": revenue,
        "orders": n_orders,
        "average_ticket": revenue / n_orders,
        "churn_rate_90d": len(early - late) / len(early) if early else None,
        "repeat_purchase_rate": float((per_cust >= 2).mean()),
        "monthly_revenue": monthly.to_dict(),
        "as_of": as_of,
    }


def features(s, cutoff, categories):
    done = s[s.status == "completed"]
    past = done[done.order_date < cutoff]
    g = past.groupby("customer_id")
    f = pd.DataFrame({
        "recency_days": (cutoff - g.order_date.max()).dt.days,
        "frequency": g.order_id.nunique(),
        "monetary": g.revenue.sum(),
        "tenure_days": (cutoff - g.order_date.min()).dt.days,
    })
    f["average_ticket"] = f.monetary / f.frequency
    recent = past[past.order_date >= cutoff - 90 * DAY].groupby("customer_id")
    f["orders_90d"] = recent.order_id.nunique().reindex(f.index, fill_value=0)
    f["revenue_90d"] = recent.revenue.sum().reindex(f.index, fill_value=0.0)
    shares = past.pivot_table(index="customer_id", columns="category", values="revenue", aggfunc="sum", fill_value=0.0)
    shares = shares.reindex(columns=categories, fill_value=0.0).div(f.monetary, axis=0)
    for c in categories:
        f[f"share_{c}"] = shares[c].reindex(f.index, fill_value=0.0)
    future = done[(done.order_date >= cutoff) & (done.order_date < cutoff + 90 * DAY)]
    f["target"] = future.groupby("customer_id").revenue.sum().reindex(f.index, fill_value=0.0)
    return f


def score(y, p):
    return {"rmse": float(np.sqrt(mean_squared_error(y, p))), "mae": float(mean_absolute_error(y, p)), "r2": float(r2_score(y, p))}


def main(d):
    seconds, metrics = {}, {}
    total = time.perf_counter()
    t = time.perf_counter()
    tables = load(d)
    seconds["load"] = time.perf_counter() - t
    t = time.perf_counter()
    customers, products, orders, lines = clean(*tables)
    del tables
    seconds["clean"] = time.perf_counter() - t

    t = time.perf_counter()
    s = sales_lines(products, orders, lines)
    k = kpis(s, orders)
    seconds["kpis"] = time.perf_counter() - t

    t = time.perf_counter()
    as_of = k["as_of"]
    train_cut, test_cut = as_of - 180 * DAY, as_of - 90 * DAY
    categories = sorted(s[(s.status == "completed") & (s.order_date < train_cut)].category.dropna().unique())
    tr = features(s, train_cut, categories)
    te = features(s, test_cut, categories)
    cols = [c for c in tr.columns if c != "target"]
    seconds["features"] = time.perf_counter() - t
    metrics["baseline"] = score(te.target, te.revenue_90d)

    for name, model in [
        ("linear", LinearRegression()),
        ("random_forest", RandomForestRegressor(n_estimators=100, max_depth=10, min_samples_leaf=5, n_jobs=2, random_state=42)),
        ("xgboost", xgb.XGBRegressor(n_estimators=200, max_depth=6, learning_rate=0.1, tree_method="hist", n_jobs=2)),
    ]:
        t = time.perf_counter()
        model.fit(tr[cols].to_numpy(), tr.target.to_numpy())
        pred = model.predict(te[cols].to_numpy())
        seconds[f"train_{name}"] = time.perf_counter() - t
        metrics[name] = score(te.target, pred)

    t = time.perf_counter()
    rfm = features(s, as_of, categories)[["recency_days", "frequency", "monetary"]].to_numpy(dtype=float)
    rfm[:, 1:] = np.log1p(rfm[:, 1:])
    rfm = (rfm - rfm.mean(axis=0)) / rfm.std(axis=0)
    seconds["segment_features"] = time.perf_counter() - t
    t = time.perf_counter()
    KMeans(n_clusters=5, n_init=1, max_iter=100, random_state=42).fit(rfm)
    seconds["kmeans"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - total

    out = {
        "rows": {"order_items": len(lines), "orders": len(orders), "products": len(products),
                 "customers_train": len(tr), "customers_test": len(te)},
        "seconds": seconds,
        "metrics": metrics,
        "revenue": float(k["revenue"]),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    json.dump(out, sys.stdout, indent=2, default=float)
    print()


if __name__ == "__main__":
    main(sys.argv[1])
