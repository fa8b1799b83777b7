//! `PUT /api/erp/v1/models/{model}`: the metric metadata of a device model (labels, units,
//! decimals, ranges), which the portal's device page shows.

use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::OpenApi;

use super::{AuthorizedJson, ErpHttpError, api, created_or_ok, json, problem};
use crate::app::AppContext;
use crate::erp::models::ModelChange;

/// The operation of this module in the OpenAPI document, merged with [`super::ErpApi`].
#[derive(OpenApi)]
#[openapi(paths(models_put))]
pub struct ErpModelsApi;

/// Describe the metrics of a device model.
///
/// Labels, units and optionally the decimals to show and the range of each metric a device of
/// this model reports; the portal's charts and CSV exports use them. The body replaces what was
/// known of the model (201 the first time); the same body again answers 200 with `change`
/// unchanged. A metric that is not described is shown by its key, with no unit.
#[utoipa::path(put, path = "/api/erp/v1/models/{model}", operation_id = "erpModelPut",
    tag = "erp", params(api::ModelPath), request_body = crate::erp::models::ModelPut,
    responses(
        (status = 200, description = "Known model: unchanged or updated",
            body = crate::erp::models::ModelOutcome),
        (status = 201, description = "Described for the first time",
            body = crate::erp::models::ModelOutcome),
        api::Refusals,
        api::BodyRefusals, api::Invalid,
        (status = 409, description = "concurrent-change", body = problem::ProblemBody,
            content_type = "application/problem+json"),
    ))]
pub(super) async fn models_put(
    req: HttpRequest,
    input: AuthorizedJson,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ErpHttpError> {
    let model = req.match_info().query("model");
    let outcome = ctx
        .erp
        .put_model(&input.caller.actor, model, &input.body)
        .await?;
    let created = outcome.change == ModelChange::Created;
    Ok(json(created_or_ok(created), &outcome))
}
