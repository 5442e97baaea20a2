//! Charts render the data they are given, offline.

use analytics_lib::charts;
use analytics_lib::clean::clean;
use analytics_lib::explore::{OutlierRules, outliers, values};
use analytics_lib::kpi::{
    Dimension, Filter, KpiOptions, Sales, breakdown, cohort_retention, kpis, order_tickets,
};
use analytics_lib::notebook::{Format, table_html};

use crate::helpers::tiny;

fn sales() -> Sales {
    Sales::from_frames(&clean(&tiny()).expect("clean").frames).expect("sales")
}

#[test]
fn interactive_charts_carry_their_data_and_no_external_script() {
    let s = sales();
    let k = kpis(&s, &Filter::all(), &KpiOptions::default()).expect("kpis");
    let by_cat = breakdown(&s, &Filter::all(), Dimension::Category).expect("by category");
    let by_state = breakdown(&s, &Filter::all(), Dimension::State).expect("by state");
    let cohorts = cohort_retention(&s, &Filter::all()).expect("cohorts");
    let tickets = order_tickets(&s, &Filter::all()).expect("tickets");
    let v = values(&tickets, "revenue").expect("values");
    let o = outliers(&tickets, "revenue", &OutlierRules::default()).expect("outliers");

    let plots = [
        (
            "monthly",
            charts::revenue_over_time(&k.monthly_revenue, "Monthly revenue"),
            "2024-10-01",
        ),
        (
            "category",
            charts::revenue_by(&by_cat, "category", "By category").expect("bars"),
            "eletronicos",
        ),
        (
            "state",
            charts::state_bubble_map(&by_state, "By state").expect("map"),
            "São Paulo (SP): R$ 750,00",
        ),
        (
            "cohorts",
            charts::cohort_heatmap(&cohorts, "Cohorts").expect("heatmap"),
            "01/2024",
        ),
        (
            "tickets",
            charts::distribution_with_fences(&v, &o, "Tickets", "ticket (R$)"),
            "upper fence",
        ),
    ];
    for (name, plot, needle) in plots {
        let html = plot.to_inline_html(Some(name));
        assert!(html.contains("Plotly.newPlot"), "{name}: no plot call");
        assert!(html.contains(needle), "{name}: data `{needle}` missing");
        assert!(!html.contains("<script src"), "{name}: external script");
        assert!(
            html.contains("\"separators\":\",.\""),
            "{name}: Brazilian separators"
        );
    }
}

#[test]
fn static_figures_are_svg_with_brazilian_labels() {
    let s = sales();
    let k = kpis(&s, &Filter::all(), &KpiOptions::default()).expect("kpis");
    let svg = charts::revenue_over_time_svg(&k.monthly_revenue, "Monthly revenue").expect("svg");
    assert!(svg.starts_with("<svg") && svg.contains("Monthly revenue"));
    assert!(svg.contains("R$"), "money axis in reais");
    let by_cat = breakdown(&s, &Filter::all(), Dimension::Category).expect("by category");
    let bars = charts::revenue_by_svg(&by_cat, "category", "By category").expect("svg");
    assert!(bars.contains("eletronicos") && bars.contains("<rect"));
}

#[test]
fn tables_format_money_dates_and_percent_the_brazilian_way() {
    let s = sales();
    let by_cat = breakdown(&s, &Filter::all(), Dimension::Category).expect("by category");
    let html = table_html(
        &by_cat,
        &[
            ("revenue", Format::Money),
            ("revenue_share", Format::Percent),
        ],
        10,
    );
    assert!(html.contains("R$ 1.350,00"), "{html}");
    assert!(html.contains("50,6%"), "1350 / 2668 = 50.6%: {html}");
    let tickets = order_tickets(&s, &Filter::all()).expect("tickets");
    let html = table_html(&tickets, &[], 100);
    assert!(html.contains("10/01/2024"), "dates as dd/mm/aaaa: {html}");
}
