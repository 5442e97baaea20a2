//! Requests refused before any work (bad filters, dates far outside the
//! data), the documents and the page's assets.

use super::*;

#[tokio::test]
async fn invalid_filters_are_4xx_naming_the_field() {
    let app = spawn_app().await;
    // A reversed period is the same period (its dates put in order): the
    // OpenAPI document cannot state an order between two parameters, and
    // what it allows is accepted.
    let (s, a) = get_json(&app, "/api/dashboard?from=2024-06-01&to=2024-01-01").await;
    let (_, b) = get_json(&app, "/api/dashboard?from=2024-01-01&to=2024-06-01").await;
    assert_eq!(s, 200, "{a}");
    assert_eq!((&a["filter"], &a["kpis"]), (&b["filter"], &b["kpis"]));
    for (query, field, found) in [
        ("from=2024-13-01", "from", "2024-13-01"),
        ("to=31/12/2024", "to", "31/12/2024"),
        ("from=2024-01-01&from=2024-02-01", "from", "2024-02-01"),
        ("category=no-such-category", "category", "no-such-category"),
        ("state=XX", "state", "XX"),
        ("channel=carrier-pigeon", "channel", "carrier-pigeon"),
        ("segment=99", "segment", "99"),
        ("segment=champions", "segment", "champions"),
        ("colour=blue", "colour", "colour"),
    ] {
        let (s, b) = get_json(&app, &format!("/api/dashboard?{query}")).await;
        assert_eq!(s, 400, "{query}: {b}");
        assert_eq!(b["field"], json!(field), "{query}: {b}");
        assert!(
            b["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{query}: {b}"
        );
        assert!(
            b["expected"].as_str().is_some_and(|e| !e.is_empty()),
            "{query}: {b}"
        );
        assert!(
            b["found"].as_str().is_some_and(|f| f.contains(found)),
            "{query}: {b}"
        );
    }
}

/// The work of one request is bounded by the data: a date more than a year
/// outside the data's range is a 400 naming it (no loop over millions of
/// months, no overflow at chrono's limits), a year inside is answered.
#[tokio::test]
async fn dates_far_outside_the_data_are_refused_before_any_work() {
    let app = spawn_app().await;
    let o = options(&app).await;
    let (first, last) = (date(&o["min_date"]), date(&o["max_date"]));
    for (query, field) in [
        ("to=%2B262000-01-01".to_string(), "to"),
        ("from=-200000-01-01".to_string(), "from"),
        ("from=0001-01-01".to_string(), "from"),
        ("to=9999-12-31".to_string(), "to"),
        (format!("to={}", last + Duration::days(367)), "to"),
        (
            format!("from={}&to={}", first - Duration::days(367), last),
            "from",
        ),
    ] {
        let (s, b) = get_json(&app, &format!("/api/dashboard?{query}")).await;
        assert_eq!(s, 400, "{query}: {b}");
        assert_eq!(b["field"], json!(field), "{query}: {b}");
        assert!(
            b["expected"]
                .as_str()
                .is_some_and(|e| e.contains(&first.to_string()) && e.contains(&last.to_string())),
            "{query}: {b}"
        );
    }
    for query in [
        format!("from={}&to={}", first - Duration::days(366), last),
        format!("from={first}&to={}", last + Duration::days(366)),
    ] {
        let (s, b) = get_json(&app, &format!("/api/dashboard?{query}")).await;
        assert_eq!(s, 200, "{query}: {b}");
    }
}

#[tokio::test]
async fn the_documents_list_the_dashboard_endpoints() {
    let app = spawn_app().await;
    let (s, doc) = get_json(&app, "/openapi.json").await;
    assert_eq!(s, 200);
    for path in [
        "/",
        "/api/dashboard",
        "/api/dashboard/options",
        "/api/dashboard/orders",
        "/api/dashboard/export.csv",
    ] {
        assert!(doc["paths"][path]["get"].is_object(), "GET {path} missing");
    }
    let params: Vec<&str> = doc["paths"]["/api/dashboard"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for p in [
        "from", "to", "category", "segment", "state", "channel", "compare",
    ] {
        assert!(params.contains(&p), "parameter {p} missing: {params:?}");
    }
    for schema in ["Dashboard", "KpiCards", "Options"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_here() {
    let app = spawn_app().await;
    let r = app.get("/").await;
    assert_eq!(r.status().as_u16(), 200);
    let html = r.text().await.expect("html");
    assert!(html.contains("/dashboard/assets/plotly.min.js"));
    assert!(html.contains("/dashboard/assets/app.js"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external URL"
    );
    for (name, needle) in [
        ("app.js", "/api/dashboard"),
        ("style.css", ".kpi"),
        ("plotly.min.js", "plotly"),
        ("brazil.svg", "id=\"sp\""),
    ] {
        let r = app.get(&format!("/dashboard/assets/{name}")).await;
        assert_eq!(r.status().as_u16(), 200, "{name}");
        assert!(r.text().await.expect("body").contains(needle), "{name}");
    }
    let (s, b) = get_json(&app, "/dashboard/assets/nope.js").await;
    assert_eq!(s, 404, "{b}");

    // The charting bundle is plotly.js's cartesian build (no geo or tile-map
    // code, hence no tile servers or basemap styles), and its one CDN default
    // (`topojsonURL`) is rewritten to a local path: no CDN address is left.
    let js = app
        .get("/dashboard/assets/plotly.min.js")
        .await
        .text()
        .await
        .expect("body");
    assert!(js.contains("plotly.js (cartesian - minified)"));
    for cdn in [
        "cdn.plot.ly",
        "cartocdn",
        "api.mapbox.com",
        "openmaptiles",
        "arcgisonline",
    ] {
        assert!(!js.contains(cdn), "the served plotly.js still names {cdn}");
    }
}
