//! `POST /segment` and `POST /segment/batch`: a customer's segment from the
//! live segment model, with the segment's profile.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use analytics_lib::registry::SEGMENTS;
use analytics_lib::segments::SegmentProfile;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{OpenApi, PartialSchema, ToSchema};

use crate::error::ErrorBody;
use crate::error::invalid_json;
use crate::input::{
    InputError, RecordsError, SegmentRecord, for_each_record, parse_segment_record, scan_batch,
};
use crate::routes::predict::{CustomerRef, PredictError, parse_value};
use crate::segment_model::LiveSegments;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(segment, segment_batch),
    components(schemas(
        SegmentInput, CustomerRef, SegmentFeatureValues, SegmentResponse, SegmentProfileSummary,
        TopCategory, SegmentBatchRequest, SegmentBatchResponse
    )),
    tags((name = "segment", description = "Customer segments"))
)]
pub struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/segment", web::post().to(segment))
        .route("/segment/batch", web::post().to(segment_batch));
}

/// The segment model's features by name: `recency_days`, `frequency` and
/// `monetary` are required; `average_ticket` (default `monetary /
/// frequency`) and one `share_<category>` per category of the model are
/// optional (without any share the customer is placed on RFM only; with
/// some, the missing ones count as 0). All finite and ≥ 0; no other field.
/// (Documentation type: requests are read field by field so that each error
/// names its field.)
#[derive(Debug)]
pub struct SegmentFeatureValues;

impl PartialSchema for SegmentFeatureValues {
    fn schema() -> RefOr<Schema> {
        let number = crate::routes::docs::feature_number;
        let mut o = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "The segment model's features by name (GET /models lists them): recency_days, \
                 frequency and monetary required; average_ticket and share_<category> optional.",
            ));
        for (name, d) in [
            (
                "recency_days",
                "Days from the last completed order to the reference date",
            ),
            ("frequency", "Completed orders"),
            ("monetary", "Revenue (R$)"),
        ] {
            o = o.property(name, number(d)).required(name);
        }
        o = o.property(
            "average_ticket",
            number("monetary / frequency (R$); that by default"),
        );
        o.additional_properties(crate::routes::docs::share_values())
            .into()
    }
}
impl ToSchema for SegmentFeatureValues {}

/// A customer to look up, or segment features by name.
#[derive(Debug)]
pub struct SegmentInput;

impl PartialSchema for SegmentInput {
    fn schema() -> RefOr<Schema> {
        crate::routes::docs::customer_or(
            "SegmentFeatureValues",
            "`{\"customer_id\"}` (needs the service to run with --data) or the segment features by name",
        )
    }
}
impl ToSchema for SegmentInput {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push(("CustomerRef".into(), CustomerRef::schema()));
        schemas.push((
            "SegmentFeatureValues".into(),
            SegmentFeatureValues::schema(),
        ));
    }
}

/// A category's share of a segment's revenue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TopCategory {
    pub category: String,
    pub share: f64,
}

/// Who is in a segment, in original units (from the model's training
/// customers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SegmentProfileSummary {
    /// Customers in the segment.
    pub size: usize,
    /// Share of all customers.
    pub share_customers: f64,
    /// Share of all customers' revenue.
    pub revenue_share: f64,
    pub mean_recency_days: f64,
    pub median_recency_days: f64,
    pub mean_frequency: f64,
    pub median_frequency: f64,
    /// R$.
    pub mean_monetary: f64,
    /// R$.
    pub median_monetary: f64,
    /// Up to three categories with the largest share of the segment's revenue, largest first.
    pub top_categories: Vec<String>,
    /// The same categories with their shares.
    pub top_category_shares: Vec<TopCategory>,
}

impl From<&SegmentProfile> for SegmentProfileSummary {
    fn from(p: &SegmentProfile) -> Self {
        SegmentProfileSummary {
            size: p.size,
            share_customers: p.share_customers,
            revenue_share: p.revenue_share,
            mean_recency_days: p.recency_days.mean,
            median_recency_days: p.recency_days.median,
            mean_frequency: p.frequency.mean,
            median_frequency: p.frequency.median,
            mean_monetary: p.monetary.mean,
            median_monetary: p.monetary.median,
            top_categories: p
                .top_categories
                .iter()
                .map(|c| c.category.clone())
                .collect(),
            top_category_shares: p
                .top_categories
                .iter()
                .map(|c| TopCategory {
                    category: c.category.clone(),
                    share: c.share,
                })
                .collect(),
        }
    }
}

/// A customer's segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SegmentResponse {
    /// 0 .. k−1.
    pub segment_id: i64,
    /// The segment's name (from documented RFM rules).
    pub segment_name: String,
    /// Euclidean distance to the segment's centroid, in the model's scaled space.
    pub distance: f64,
    /// The registry version of the live segment model (`v0002`).
    pub version: String,
    pub profile: SegmentProfileSummary,
}

/// Up to `max_batch` records (10 000 by default).
#[derive(Debug, ToSchema)]
pub struct SegmentBatchRequest {
    /// At least one record.
    #[schema(min_items = 1)]
    pub records: Vec<SegmentInput>,
}

/// One result per record, in order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SegmentBatchResponse {
    pub results: Vec<SegmentResponse>,
}

/// The segment of one record (looked up for a customer), with its profile.
fn assign(live: &LiveSegments, v: &Value, prefix: &str) -> Result<SegmentResponse, PredictError> {
    let (id, distance) = nearest(live, v, prefix)?;
    Ok(SegmentResponse {
        profile: SegmentProfileSummary::from(&live.model.profiles[id]),
        segment_id: id as i64,
        segment_name: live.model.profiles[id].name.clone(),
        distance,
        version: live.version.clone(),
    })
}

/// The segment of one record (looked up for a customer) and its distance
/// (as [`analytics_lib::segments::SegmentModel::assign`] gives them); the
/// segment has a profile (`live.model.profiles[id]`).
fn nearest(live: &LiveSegments, v: &Value, prefix: &str) -> Result<(usize, f64), PredictError> {
    let row = match parse_segment_record(v, live.feature_names(), prefix)
        .map_err(PredictError::Invalid)?
    {
        SegmentRecord::Features(row) => row,
        SegmentRecord::Customer(id) => customer(live, &id, prefix)?,
    };
    let (id, d2) = live.model.nearest_segment(&row).map_err(|e| {
        // Every field was checked above: this is still the caller's input.
        let mut b = ErrorBody::new("the segment model refused the record")
            .expected("segment features the model accepts")
            .found(format!("{e:#}"));
        if !prefix.is_empty() {
            b = b.field(prefix);
        }
        PredictError::Invalid(InputError(b))
    })?;
    if id >= live.model.profiles.len() {
        return Err(anyhow::anyhow!("segment {id} has no profile").into());
    }
    Ok((id, d2.sqrt()))
}

/// A segment's answer in a batch as bytes around its distance: what
/// serde_json writes for a [`SegmentResponse`] (its fields in order) before
/// and after `distance`. Made once per segment a batch meets, instead of
/// cloning and writing the profile once per record (most of a batch's time).
struct Fragments {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Fragments {
    /// Segment `id` of [`nearest`] (it has a profile).
    fn new(live: &LiveSegments, id: usize) -> Result<Fragments, PredictError> {
        let profile = &live.model.profiles[id];
        let mut head = b"{\"segment_id\":".to_vec();
        json(&mut head, &(id as i64))?;
        head.extend_from_slice(b",\"segment_name\":");
        json(&mut head, &profile.name)?;
        head.extend_from_slice(b",\"distance\":");
        let mut tail = b",\"version\":".to_vec();
        json(&mut tail, &live.version)?;
        tail.extend_from_slice(b",\"profile\":");
        json(&mut tail, &SegmentProfileSummary::from(profile))?;
        tail.push(b'}');
        Ok(Fragments { head, tail })
    }
}

/// `v` as serde_json writes it, appended to `buf`.
fn json<T: Serialize + ?Sized>(buf: &mut Vec<u8>, v: &T) -> Result<(), PredictError> {
    serde_json::to_writer(buf, v).map_err(|e| PredictError::from(anyhow::Error::from(e)))
}

fn customer(
    live: &LiveSegments,
    id: &str,
    prefix: &str,
) -> Result<BTreeMap<String, f64>, PredictError> {
    let field = super::predict::id_field(prefix);
    let Some(table) = &live.customers else {
        return Err(PredictError::UnknownCustomer(
            ErrorBody::new("customer lookup is not available: the service has no data")
                .field(field)
                .expected("segment features by name (or start the service with --data)")
                .found(format!("customer_id \"{id}\"")),
        ));
    };
    live.customer_row(id)
        .ok_or_else(|| super::predict::unknown_customer(field, id, table.as_of))
}

/// One customer's segment.
#[utoipa::path(post, path = "/segment", tag = "segment",
    request_body = SegmentInput,
    responses(
        (status = 200, description = "The segment, its distance and profile", body = SegmentResponse),
        (status = 400, description = "Bad input: malformed JSON, missing, unknown or ill-typed field, negative or out-of-range value", body = ErrorBody),
        (status = 404, description = "Unknown customer_id", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 503, description = "No segment model loaded", body = ErrorBody)))]
pub async fn segment(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let body = crate::body::read_json(&req, payload, state.body_limits(false)).await?;
    let v = parse_value(&body)?;
    let live = state
        .live_segments()
        .ok_or(PredictError::NotReady(SEGMENTS))?;
    Ok(HttpResponse::Ok().json(assign(&live, &v, "")?))
}

/// The answer to a batch body (run on the blocking pool): its shape
/// checked first (count before any record is parsed), then each record
/// assigned, one at a time.
fn batch_answer(
    live: Option<std::sync::Arc<LiveSegments>>,
    body: &[u8],
    max: usize,
) -> Result<Vec<u8>, PredictError> {
    let n = scan_batch(body, max)?;
    let live = live.ok_or(PredictError::NotReady(SEGMENTS))?;
    // The bytes of a `SegmentBatchResponse`, written record by record: a
    // segment's fixed part once per batch ([`Fragments`]), each record's
    // distance as serde_json writes an `f64`.
    let mut out = Vec::with_capacity(16 + n * 512);
    out.extend_from_slice(b"{\"results\":[");
    let mut made: Vec<Option<Fragments>> = Vec::new();
    for_each_record(body, |i, r| {
        let (slot, distance) = nearest(&live, r, &format!("records[{i}]"))?;
        if made.len() <= slot {
            made.resize_with(slot + 1, || None);
        }
        let f = match &mut made[slot] {
            Some(f) => f,
            empty => empty.insert(Fragments::new(&live, slot)?),
        };
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&f.head);
        json(&mut out, &distance)?;
        out.extend_from_slice(&f.tail);
        Ok(())
    })
    .map_err(|e| match e {
        RecordsError::Record(e) => e,
        RecordsError::Json(e) => PredictError::Invalid(InputError(invalid_json(&e))),
    })?;
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// Many records at once; results come back in order, all from the same
/// model. One bad record refuses the whole batch (its field names it:
/// `records[3].monetary`).
#[utoipa::path(post, path = "/segment/batch", tag = "segment",
    request_body = SegmentBatchRequest,
    responses(
        (status = 200, description = "One result per record, in order", body = SegmentBatchResponse),
        (status = 400, description = "Bad input (any record), an empty batch, or more records than max_batch", body = ErrorBody),
        (status = 404, description = "Unknown customer_id in a record", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 503, description = "No segment model loaded", body = ErrorBody)))]
pub async fn segment_batch(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let body = crate::body::read_json(&req, payload, state.body_limits(true)).await?;
    let live = state.live_segments();
    let max = state.settings.max_batch;
    // Reading and assigning a batch: off the HTTP workers.
    let bytes = web::block(move || batch_answer(live, &body, max))
        .await
        .map_err(|e| PredictError::from(anyhow::anyhow!("segment task failed: {e}")))??;
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(bytes))
}
