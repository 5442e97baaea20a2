//! `POST /predict` and `POST /predict/batch`: the customer's spend over the
//! next 90 days from the live model, with the features that drove it.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use anyhow::anyhow;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{OpenApi, PartialSchema, ToSchema};

use crate::error::{ErrorBody, internal_error, invalid_json};
use crate::input::{
    BatchError, FastRecord, FastRecords, InputError, Record, RecordsError, fast_batch, fast_record,
    for_each_record, parse_record, scan_batch,
};
use crate::model::{FAMILY, LiveModel, Predictions};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(predict, predict_batch),
    components(schemas(
        PredictInput, CustomerRef, FeatureValues, PredictResponse, Contribution,
        PredictionInterval, BatchRequest, BatchResponse
    )),
    tags((name = "predict", description = "Customer-spend predictions"))
)]
pub struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/predict", web::post().to(predict))
        .route("/predict/batch", web::post().to(predict_batch));
}

/// Look a customer up: their features at the service data's last day + 1.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"customer_id": "C0000042"}))]
pub struct CustomerRef {
    /// A customer id of the service's data; blank ids are refused.
    #[schema(min_length = 1, pattern = r"\S")]
    pub customer_id: String,
}

/// Every feature of the live model, by name (`GET /models` lists them in
/// order): the seven base features below, plus one `share_<category>` per
/// category of the model (a share between 0 and 1). All required, all
/// finite and ≥ 0; no other field. (Documentation type: requests are read
/// field by field so that each error names its field.)
#[derive(Debug)]
pub struct FeatureValues;

impl PartialSchema for FeatureValues {
    fn schema() -> RefOr<Schema> {
        let number = crate::routes::docs::feature_number;
        let mut o = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Every feature of the live model by name: the base features and one \
             `share_<category>` per category of the model (see GET /models).",
            ));
        let base = [
            (
                "recency_days",
                "Days from the last completed order to the cutoff",
            ),
            ("frequency", "Completed orders before the cutoff"),
            ("monetary", "Revenue before the cutoff (R$)"),
            (
                "tenure_days",
                "Days from the first completed order to the cutoff",
            ),
            ("average_ticket", "monetary / frequency (R$)"),
            (
                "orders_90d",
                "Completed orders in the 90 days before the cutoff",
            ),
            (
                "revenue_90d",
                "Revenue in the 90 days before the cutoff (R$)",
            ),
        ];
        for (name, d) in base {
            o = o.property(name, number(d)).required(name);
        }
        o.additional_properties(crate::routes::docs::share_values())
            .into()
    }
}
impl ToSchema for FeatureValues {}

/// A customer to look up, or feature values by name.
#[derive(Debug)]
pub struct PredictInput;

impl PartialSchema for PredictInput {
    fn schema() -> RefOr<Schema> {
        crate::routes::docs::customer_or(
            "FeatureValues",
            "`{\"customer_id\"}` (needs the service to run with --data) or every feature by name",
        )
    }
}
impl ToSchema for PredictInput {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push(("CustomerRef".into(), CustomerRef::schema()));
        schemas.push(("FeatureValues".into(), FeatureValues::schema()));
    }
}

/// One feature's part in a prediction (R$).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Contribution {
    pub feature: String,
    pub value: f64,
}

/// A prediction interval (R$): `low ≤ high`, `low ≥ 0`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PredictionInterval {
    pub low: f64,
    pub high: f64,
}

/// A prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PredictResponse {
    /// Predicted revenue from this customer in the next 90 days (R$), as the
    /// model outputs it (a linear model can go below 0).
    pub predicted_spend_90d: f64,
    /// 80 % prediction interval of the 90-day spend: split-conformal, from
    /// the live model's out-of-time residuals binned by prediction
    /// (calibrated at training, coverage measured on the test cutoff, see
    /// GET /models). Null only for a model saved before intervals existed.
    pub interval_80: Option<PredictionInterval>,
    /// 95 % prediction interval, as `interval_80`.
    pub interval_95: Option<PredictionInterval>,
    /// Customer lifetime value (R$): expected revenue over the CLV model's
    /// horizon (365 days by default), discounted monthly (BG/NBD +
    /// Gamma-Gamma, fitted with the live version). Only for a
    /// `{"customer_id"}` lookup: null for a record of feature values (CLV
    /// needs the customer's purchase days, which features do not carry), and
    /// when the live version has no CLV model.
    pub clv: Option<f64>,
    /// Probability that the customer is still active (BG/NBD), with the same
    /// rules as `clv`.
    pub p_alive: Option<f64>,
    /// The live model's kind: `linear`, `random_forest` or `xgboost`.
    pub model: String,
    /// The registry version of the live customer-spend model (`v0003`);
    /// `model` is the kind that version serves.
    pub version: String,
    /// The largest contributions first (by |value|, at most the service's
    /// `top_contributions`). Random forest and XGBoost: path attribution
    /// (Saabas; XGBoost's `approx_contribs`): each split on the record's path
    /// credits its feature with the change of the expected value it makes;
    /// with the model's bias, all of them add up to the prediction. Linear:
    /// coefficient × (x − reference), the reference being the feature's mean
    /// over the service's customers when it has data, else 0.
    pub contributions: Vec<Contribution>,
}

/// Up to `max_batch` records (10 000 by default).
#[derive(Debug, ToSchema)]
pub struct BatchRequest {
    /// At least one record.
    #[schema(min_items = 1)]
    pub records: Vec<PredictInput>,
}

/// One result per record, in order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<PredictResponse>,
}

/// Why a prediction was refused.
#[derive(thiserror::Error, Debug)]
pub enum PredictError {
    /// Missing, unknown or ill-typed field, out-of-range value, empty batch.
    #[error("{0}")]
    Invalid(InputError),
    /// More records than `max_batch`: a 400 like any other violation of the
    /// document (its `maxItems`); 413 is for bodies over the byte limit.
    #[error("{0}")]
    TooLarge(InputError),
    /// A `customer_id` the service does not know (or no data to look it up).
    #[error("{0}")]
    UnknownCustomer(ErrorBody),
    /// The model the route needs (`customer_spend`, `segments`) is not loaded.
    #[error("no {0} model loaded")]
    NotReady(&'static str),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<BatchError> for PredictError {
    fn from(e: BatchError) -> Self {
        match e {
            BatchError::Invalid(e) => PredictError::Invalid(e),
            BatchError::TooLarge(e) => PredictError::TooLarge(e),
        }
    }
}

impl ResponseError for PredictError {
    fn status_code(&self) -> StatusCode {
        match self {
            PredictError::Invalid(_) | PredictError::TooLarge(_) => StatusCode::BAD_REQUEST,
            PredictError::UnknownCustomer(_) => StatusCode::NOT_FOUND,
            PredictError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            PredictError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            PredictError::Invalid(InputError(b))
            | PredictError::TooLarge(InputError(b))
            | PredictError::UnknownCustomer(b) => b.respond(status),
            PredictError::NotReady(model) => ErrorBody::new(format!("no {model} model loaded"))
                .expected(format!("a live {model} version (see GET /ready)"))
                .found("none")
                .respond(status),
            PredictError::Unexpected(e) => internal_error("predict", e),
        }
    }
}

/// Write a customer's feature row into `out` and give its row (for the
/// CLV answers), or say why there is none.
/// `field`: where the id was (`customer_id`, `records[3].customer_id`).
fn lookup(live: &LiveModel, id: &str, field: String, out: &mut [f64]) -> Result<u32, PredictError> {
    let Some(table) = &live.customers else {
        return Err(PredictError::UnknownCustomer(
            ErrorBody::new("customer lookup is not available: the service has no data")
                .field(field)
                .expected("feature values by name (or start the service with --data)")
                .found(format!("customer_id \"{id}\"")),
        ));
    };
    match table.find(id) {
        Some(r) => {
            table.write_row(r, out);
            Ok(r)
        }
        None => Err(unknown_customer(field, id, table.as_of)),
    }
}

/// The 404 of an id without a row (`/predict` and `/segment` alike).
pub(crate) fn unknown_customer(field: String, id: &str, as_of: chrono::NaiveDate) -> PredictError {
    PredictError::UnknownCustomer(
        ErrorBody::new("unknown customer")
            .field(field)
            .expected(format!("a customer with a completed order before {as_of}"))
            .found(format!("\"{}\"", id.chars().take(60).collect::<String>())),
    )
}

pub(crate) fn id_field(prefix: &str) -> String {
    if prefix.is_empty() {
        "customer_id".to_string()
    } else {
        format!("{prefix}.customer_id")
    }
}

/// The feature row of a record (looked up for a customer), appended to
/// `rows`; its customer row (or `None` for feature values) to `customers`.
fn resolve(
    live: &LiveModel,
    v: &Value,
    prefix: &str,
    rows: &mut Vec<f64>,
    customers: &mut Vec<Option<u32>>,
) -> Result<(), PredictError> {
    match parse_record(v, live.feature_names(), prefix).map_err(PredictError::Invalid)? {
        Record::Features(row) => {
            rows.extend_from_slice(&row);
            customers.push(None);
        }
        Record::Customer(id) => {
            let start = rows.len();
            rows.resize(start + live.feature_names().len(), 0.0);
            customers.push(Some(lookup(
                live,
                &id,
                id_field(prefix),
                &mut rows[start..],
            )?));
        }
    }
    Ok(())
}

/// Fill the placeholder rows of the customer lookups the fast path read;
/// per record, its customer row (`None` for feature values).
fn fill_customers(
    live: &LiveModel,
    fast: &mut FastRecords,
    batch: bool,
) -> Result<Vec<Option<u32>>, PredictError> {
    let p = live.feature_names().len();
    let mut customers = Vec::with_capacity(fast.records.len());
    for (i, r) in fast.records.iter().enumerate() {
        let row = match r {
            FastRecord::Customer(id) => {
                let prefix = if batch {
                    format!("records[{i}]")
                } else {
                    String::new()
                };
                Some(lookup(
                    live,
                    id,
                    id_field(&prefix),
                    &mut fast.rows[i * p..(i + 1) * p],
                )?)
            }
            FastRecord::Features => None,
        };
        customers.push(row);
    }
    Ok(customers)
}

/// Write one prediction as `PredictResponse` serialises (the same keys in
/// the same order; numbers by serde_json), from the model's pre-written
/// fragments.
fn write_prediction(
    buf: &mut Vec<u8>,
    live: &LiveModel,
    preds: &Predictions,
    i: usize,
    customer: Option<u32>,
) {
    let f = live.json_fragments();
    let (value, items) = preds.row(i);
    buf.extend_from_slice(b"{\"predicted_spend_90d\":");
    write_number(buf, value);
    let intervals = live.meta.intervals.as_ref().map(|c| c.intervals(value));
    for (k, key) in [b",\"interval_80\":", b",\"interval_95\":"]
        .iter()
        .enumerate()
    {
        buf.extend_from_slice(*key);
        match &intervals {
            Some(iv) => {
                buf.extend_from_slice(b"{\"low\":");
                write_number(buf, iv[k].low);
                buf.extend_from_slice(b",\"high\":");
                write_number(buf, iv[k].high);
                buf.push(b'}');
            }
            None => buf.extend_from_slice(b"null"),
        }
    }
    match customer.and_then(|r| live.clv.as_ref()?.get(r)) {
        Some((clv, p_alive)) => {
            buf.extend_from_slice(b",\"clv\":");
            write_number(buf, clv);
            buf.extend_from_slice(b",\"p_alive\":");
            write_number(buf, p_alive);
        }
        None => buf.extend_from_slice(b",\"clv\":null,\"p_alive\":null"),
    }
    buf.extend_from_slice(&f.head);
    for (n, &(j, v)) in items.iter().enumerate() {
        if n > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(&f.feature[j as usize]);
        write_number(buf, v);
        buf.push(b'}');
    }
    buf.extend_from_slice(b"]}");
}

/// A number as serde_json writes it (predictions are checked finite first).
fn write_number(buf: &mut Vec<u8>, v: f64) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, &v);
}

fn json_response(bytes: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(bytes)
}

/// Predict `rows` and write the answer: one prediction, or a batch's
/// `{"results"}`. `customers`: per record its customer row, if looked up.
fn answer(
    live: &LiveModel,
    rows: &[f64],
    customers: &[Option<u32>],
    top: usize,
    batch: bool,
) -> anyhow::Result<Vec<u8>> {
    let p = live.feature_names().len();
    let n = rows.len() / p.max(1);
    let preds = live.predict(rows, top)?;
    if preds.len() != n || (!batch && n != 1) {
        return Err(anyhow!("{} predictions for {n} records", preds.len()));
    }
    // The inputs are checked finite and bounded; a model that still gives
    // a non-finite value is answered as an error, never as `null`.
    if let Some(i) = preds.values.iter().position(|v| !v.is_finite()) {
        return Err(anyhow!(
            "the {} model {} gave a non-finite prediction ({}) for record {i}",
            live.kind.name(),
            live.version,
            preds.values[i]
        ));
    }
    let f = live.json_fragments();
    let longest = f.feature.iter().map(Vec::len).max().unwrap_or(0);
    if customers.len() != n {
        return Err(anyhow!("{} customer rows for {n} records", customers.len()));
    }
    let mut buf = Vec::with_capacity(16 + n * (180 + f.head.len() + preds.k * (longest + 26)));
    if batch {
        buf.extend_from_slice(b"{\"results\":[");
        for (i, &customer) in customers.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            write_prediction(&mut buf, live, &preds, i, customer);
        }
        buf.extend_from_slice(b"]}");
    } else {
        write_prediction(&mut buf, live, &preds, 0, customers[0]);
    }
    Ok(buf)
}

/// A body that is not JSON, as the 400 of [`crate::error::json_error`].
pub(crate) fn parse_value(body: &[u8]) -> Result<Value, PredictError> {
    serde_json::from_slice(body).map_err(|e| PredictError::Invalid(InputError(invalid_json(&e))))
}

/// The answer to a batch body (run on the blocking pool): the fast path,
/// else the shape checked first (size and count, before any record is
/// parsed), then each record read field by field, one at a time.
pub fn batch_answer(
    live: Option<Arc<LiveModel>>,
    body: &[u8],
    top: usize,
    max: usize,
) -> Result<Vec<u8>, PredictError> {
    if let Some(live) = &live
        && let Some(mut fast) = fast_batch(body, live.feature_names(), live.is_share(), max)
    {
        let customers = fill_customers(live, &mut fast, true)?;
        return Ok(answer(live, &fast.rows, &customers, top, true)?);
    }
    let n = scan_batch(body, max)?;
    let live = live.ok_or(PredictError::NotReady(FAMILY))?;
    let mut rows = Vec::with_capacity(n * live.feature_names().len());
    let mut customers = Vec::with_capacity(n);
    for_each_record(body, |i, r| {
        resolve(
            &live,
            r,
            &format!("records[{i}]"),
            &mut rows,
            &mut customers,
        )
    })
    .map_err(|e| match e {
        RecordsError::Record(e) => e,
        RecordsError::Json(e) => PredictError::Invalid(InputError(invalid_json(&e))),
    })?;
    Ok(answer(&live, &rows, &customers, top, true)?)
}

/// Predict one customer's spend over the next 90 days.
#[utoipa::path(post, path = "/predict", tag = "predict",
    request_body = PredictInput,
    responses(
        (status = 200, description = "The prediction", body = PredictResponse),
        (status = 400, description = "Bad input: malformed JSON, missing, unknown or ill-typed field, negative or out-of-range value", body = ErrorBody),
        (status = 404, description = "Unknown customer_id", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 503, description = "No model loaded", body = ErrorBody)))]
pub async fn predict(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let body = crate::body::read_json(&req, payload, state.body_limits(false)).await?;
    let top = state.settings.top_contributions;
    let live = state.live();
    // The happy path: features read straight into a row, predicted here
    // (microseconds: not worth a trip to the blocking pool).
    if let Some(live) = &live
        && let Some(mut fast) = fast_record(&body, live.feature_names(), live.is_share())
    {
        let customers = fill_customers(live, &mut fast, false)?;
        let bytes = answer(live, &fast.rows, &customers, top, false).map_err(PredictError::from)?;
        return Ok(json_response(bytes));
    }
    // Anything else: read field by field, so that the error names its field.
    let v = parse_value(&body)?;
    let live = live.ok_or(PredictError::NotReady(FAMILY))?;
    let mut row = Vec::with_capacity(live.feature_names().len());
    let mut customers = Vec::with_capacity(1);
    resolve(&live, &v, "", &mut row, &mut customers)?;
    let bytes = answer(&live, &row, &customers, top, false).map_err(PredictError::from)?;
    Ok(json_response(bytes))
}

/// Predict many records at once; results come back in order, all from the
/// same model. One bad record refuses the whole batch (its field names it:
/// `records[3].frequency`).
#[utoipa::path(post, path = "/predict/batch", tag = "predict",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "One result per record, in order", body = BatchResponse),
        (status = 400, description = "Bad input (any record), an empty batch, or more records than max_batch", body = ErrorBody),
        (status = 404, description = "Unknown customer_id in a record", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 503, description = "No model loaded", body = ErrorBody)))]
pub async fn predict_batch(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let body = crate::body::read_json(&req, payload, state.body_limits(true)).await?;
    let (top, max) = (state.settings.top_contributions, state.settings.max_batch);
    let live = state.live();
    // Reading, looking up and predicting a batch: off the HTTP workers.
    let bytes = web::block(move || batch_answer(live, &body, top, max))
        .await
        .map_err(|e| PredictError::from(anyhow!("prediction task failed: {e}")))??;
    Ok(json_response(bytes))
}
