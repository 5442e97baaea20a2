//! `POST /predict` and `POST /predict/batch`: the customer's spend over the
//! next 90 days from the live model, with the features that drove it.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use anyhow::anyhow;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{OpenApi, PartialSchema, ToSchema};

use crate::error::{ErrorBody, internal_error};
use crate::input::{BatchError, InputError, Record, parse_batch, parse_record};
use crate::model::{FAMILY, LiveModel, Prediction};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(predict, predict_batch),
    components(schemas(
        PredictInput, CustomerRef, FeatureValues, PredictResponse, Contribution,
        BatchRequest, BatchResponse
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
        let number = |d: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0.0))
                .description(Some(d))
        };
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
        o.additional_properties(Some(RefOr::T(Schema::Object(
            number("share_<category>: share of monetary spent in that category")
                .maximum(Some(1.0))
                .build(),
        ))))
        .into()
    }
}
impl ToSchema for FeatureValues {}

/// A customer to look up, or feature values by name.
#[derive(Debug)]
pub struct PredictInput;

impl PartialSchema for PredictInput {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "CustomerRef",
            )))
            .item(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "FeatureValues",
            )))
            .description(Some(
                "`{\"customer_id\"}` (needs the service to run with --data) or every feature by name",
            ))
            .into()
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

/// A prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PredictResponse {
    /// Predicted revenue from this customer in the next 90 days (R$), as the
    /// model outputs it (a linear model can go below 0).
    pub predicted_spend_90d: f64,
    /// The live model's kind: `linear`, `random_forest` or `xgboost`.
    pub model: String,
    /// The registry version of the live customer-spend model (`v0003`);
    /// `model` is the kind that version serves.
    pub version: String,
    /// The largest contributions first (by |value|). XGBoost: TreeSHAP;
    /// linear: coefficient × (x − reference); random forest: f(x) − f(x with
    /// the feature at its reference). Reference: the feature's mean over the
    /// service's customers when it has data, else 0.
    pub contributions: Vec<Contribution>,
}

/// Up to `max_batch` records (10 000 by default).
#[derive(Debug, ToSchema)]
pub struct BatchRequest {
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
    /// More records than `max_batch`.
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
            PredictError::Invalid(_) => StatusCode::BAD_REQUEST,
            PredictError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
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

/// The feature row of a record (looked up for a customer).
fn resolve(live: &LiveModel, v: &Value, prefix: &str) -> Result<Vec<f64>, PredictError> {
    match parse_record(v, live.feature_names(), prefix).map_err(PredictError::Invalid)? {
        Record::Features(row) => Ok(row),
        Record::Customer(id) => {
            let field = if prefix.is_empty() {
                "customer_id".to_string()
            } else {
                format!("{prefix}.customer_id")
            };
            let Some(table) = &live.customers else {
                return Err(PredictError::UnknownCustomer(
                    ErrorBody::new("customer lookup is not available: the service has no data")
                        .field(field)
                        .expected("feature values by name (or start the service with --data)")
                        .found(format!("customer_id \"{id}\"")),
                ));
            };
            table.rows.get(&id).cloned().ok_or_else(|| {
                PredictError::UnknownCustomer(
                    ErrorBody::new("unknown customer")
                        .field(field)
                        .expected(format!(
                            "a customer with a completed order before {}",
                            table.as_of
                        ))
                        .found(format!("\"{}\"", id.chars().take(60).collect::<String>())),
                )
            })
        }
    }
}

fn respond(live: &LiveModel, p: Prediction) -> PredictResponse {
    PredictResponse {
        predicted_spend_90d: p.value,
        model: live.kind.name().to_string(),
        version: live.version.clone(),
        contributions: p
            .contributions
            .into_iter()
            .map(|(feature, value)| Contribution { feature, value })
            .collect(),
    }
}

/// Predict off the async workers (the model's work is CPU-bound).
async fn run(
    live: &Arc<LiveModel>,
    rows: Vec<Vec<f64>>,
    top: usize,
) -> Result<Vec<Prediction>, PredictError> {
    let model = live.clone();
    let n = rows.len();
    let preds = web::block(move || model.predict(&rows, top))
        .await
        .map_err(|e| anyhow!("prediction task failed: {e}"))??;
    if preds.len() != n {
        return Err(anyhow!("{} predictions for {n} records", preds.len()).into());
    }
    Ok(preds)
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
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, PredictError> {
    let live = state.live().ok_or(PredictError::NotReady(FAMILY))?;
    let row = resolve(&live, &body, "")?;
    let p = run(&live, vec![row], state.settings.top_contributions)
        .await?
        .pop()
        .ok_or_else(|| anyhow!("no prediction"))?;
    Ok(HttpResponse::Ok().json(respond(&live, p)))
}

/// Predict many records at once; results come back in order, all from the
/// same model. One bad record refuses the whole batch (its field names it:
/// `records[3].frequency`).
#[utoipa::path(post, path = "/predict/batch", tag = "predict",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "One result per record, in order", body = BatchResponse),
        (status = 400, description = "Bad input (any record), or an empty batch", body = ErrorBody),
        (status = 404, description = "Unknown customer_id in a record", body = ErrorBody),
        (status = 413, description = "More records than max_batch, or body over the size limit", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 503, description = "No model loaded", body = ErrorBody)))]
pub async fn predict_batch(
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, PredictError> {
    let records = parse_batch(&body, state.settings.max_batch)?;
    let live = state.live().ok_or(PredictError::NotReady(FAMILY))?;
    let rows = records
        .iter()
        .enumerate()
        .map(|(i, r)| resolve(&live, r, &format!("records[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let preds = run(&live, rows, state.settings.top_contributions).await?;
    Ok(HttpResponse::Ok().json(BatchResponse {
        results: preds.into_iter().map(|p| respond(&live, p)).collect(),
    }))
}
