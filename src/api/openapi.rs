//! `GET /openapi.json`: the OpenAPI 3.1 document of every route. The
//! paths, parameters and statuses are listed here, beside the routes; the
//! bodies' schemas are derived from the wire types themselves (`dto.rs`
//! and the request types, with `schemars`), so a field cannot change
//! without the document following it. `tests/openapi.rs` checks real
//! answers against it, and the test command runs schemathesis on it.

use super::dto;
use crate::auth::{Access, Policy};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};
use std::sync::OnceLock;

/// The document, built once.
pub fn document() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_vec(&build()).expect("a JSON value serialises"))
}

const TIME_RANGES: [&str; 5] = ["1h", "6h", "24h", "7d", "30d"];
const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];

/// Schemas of what the daemon writes (by reference, collected under
/// `components/schemas`) and of what it reads (inline, per operation).
struct Doc {
    answers: SchemaGenerator,
    requests: SchemaGenerator,
    paths: Map<String, Value>,
}

/// One operation as it is being described.
struct Op {
    method: &'static str,
    path: &'static str,
    v: Map<String, Value>,
}

impl Doc {
    fn new() -> Doc {
        let answers = SchemaSettings::draft2020_12()
            .with(|s| {
                s.definitions_path = "#/components/schemas".into();
                s.meta_schema = None;
            })
            .for_serialize()
            .into_generator();
        let requests = SchemaSettings::draft2020_12()
            .with(|s| {
                s.inline_subschemas = true;
                s.meta_schema = None;
            })
            .for_deserialize()
            .into_generator();
        Doc {
            answers,
            requests,
            paths: Map::new(),
        }
    }

    fn answer<T: JsonSchema>(&mut self) -> Value {
        self.answers.subschema_for::<T>().to_value()
    }

    fn request<T: JsonSchema>(&mut self) -> Value {
        let mut v = self.requests.root_schema_for::<T>().to_value();
        if let Some(o) = v.as_object_mut() {
            o.remove("$schema");
        }
        v
    }

    fn add(&mut self, op: Op) {
        let entry = self
            .paths
            .entry(op.path)
            .or_insert_with(|| Value::Object(Map::new()));
        entry[op.method.to_ascii_lowercase()] = Value::Object(op.v);
    }
}

impl Op {
    /// An operation with the errors every route can give: 401, 403, 429
    /// from the access gate (unless public), 408 from the request timeout.
    fn new(method: &'static str, path: &'static str, summary: &str) -> Op {
        let mut v = Map::new();
        v.insert("summary".into(), summary.into());
        let example = path.replace('{', "x").replace('}', "");
        let policy = Policy {
            enabled: true,
            public_read: false,
            public_health: true,
        };
        let access = crate::auth::required(method, &example, &policy);
        let mut op = Op { method, path, v };
        op.v.insert("responses".into(), json!({}));
        op = op.error(
            408,
            "The request was not read and answered within HTTP_REQUEST_TIMEOUT.",
        );
        match access {
            Access::Public => {
                op.v.insert("security".into(), json!([]));
            }
            other => {
                op.v.insert(
                    "description".into(),
                    format!("Needs a token with the {} role.", other.least_role()).into(),
                );
                op = op
                    .error(401, "No token, or an unknown, expired or revoked one.")
                    .error(403, "The token's role may not do this.")
                    .error(
                        429,
                        "Too many failed sign-ins from this address (see Retry-After).",
                    );
            }
        }
        op
    }

    fn responses(&mut self) -> &mut Map<String, Value> {
        self.v
            .get_mut("responses")
            .and_then(Value::as_object_mut)
            .expect("set in new")
    }

    fn error(mut self, status: u16, why: &str) -> Op {
        self.responses().insert(
            status.to_string(),
            json!({"description": why, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
        self
    }

    fn ok(self, status: u16, why: &str, schema: Value) -> Op {
        self.content(status, why, "application/json", schema)
    }

    /// An answer's body in `media`; another media type for the same status
    /// joins it (`why` is kept from the first).
    fn content(mut self, status: u16, why: &str, media: &str, schema: Value) -> Op {
        let answer = self
            .responses()
            .entry(status.to_string())
            .or_insert_with(|| json!({"description": why, "content": {}}));
        answer["content"][media] = json!({"schema": schema});
        self
    }

    /// An answer without a body.
    fn bare(mut self, status: u16, why: &str) -> Op {
        self.responses()
            .insert(status.to_string(), json!({"description": why}));
        self
    }

    fn param(mut self, at: &str, name: &str, schema: Value, why: &str) -> Op {
        let list = self
            .v
            .entry("parameters")
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("an array");
        list.push(json!({"name": name, "in": at, "required": at == "path", "description": why, "schema": schema}));
        self
    }

    fn query(self, name: &str, schema: Value, why: &str) -> Op {
        self.param("query", name, schema, why)
    }

    fn body(mut self, schema: Value) -> Op {
        self.v.insert(
            "requestBody".into(),
            json!({"required": true, "content": {"application/json": {"schema": schema}}}),
        );
        self.error(
            400,
            "The body or a parameter is invalid; the message names it.",
        )
        .error(413, "The body is larger than MAX_BODY_BYTES.")
        .error(415, "The body is not sent as application/json.")
    }

    fn bad_query(self) -> Op {
        self.error(
            400,
            "A query parameter is unknown or invalid; the message names it.",
        )
    }
}

fn one_of(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

fn range(default: &str) -> Value {
    json!({"type": "string", "enum": TIME_RANGES, "default": default})
}

fn limit(default: usize, max: usize) -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": max, "default": default})
}

/// One event or an array of at most `max` of them.
fn events(one: Value, max: usize) -> Value {
    json!({"oneOf": [one.clone(), {"type": "array", "items": one, "maxItems": max}]})
}

fn build() -> Value {
    use super::alerts::{DEFAULT_LIMIT, MAX_LIMIT};
    let mut d = Doc::new();
    let text = json!({"type": "string"});

    let op = Op::new(
        "GET",
        "/",
        "What this daemon is, its version and whether it runs well.",
    );
    let s = d.answer::<dto::RootResponse>();
    d.add(op.ok(200, "The daemon.", s));
    let op = Op::new("GET", "/openapi.json", "This document.");
    d.add(op.ok(200, "OpenAPI 3.1.", json!({"type": "object"})));
    let op = Op::new(
        "GET",
        "/health",
        "The daemon's own health: store, collector, probes, remote write.",
    );
    let s = d.answer::<dto::HealthResponse>();
    d.add(op.ok(200, "Healthy.", s.clone()).ok(
        503,
        "Unhealthy (the same body; `error` says why).",
        s,
    ));
    let op = Op::new(
        "GET",
        "/health/services",
        "Every configured service's latest check.",
    );
    let s = d.answer::<dto::ServicesOverview<Vec<dto::NamedServiceHealth>>>();
    d.add(op.ok(200, "The services.", s));
    let op = Op::new(
        "GET",
        "/health/dependencies",
        "Each service's dependencies and whether they are up.",
    );
    let s = d.answer::<dto::DependenciesHealth>();
    d.add(op.ok(200, "The dependencies.", s));
    let op = Op::new(
        "GET",
        "/service-health",
        "Every configured service's latest check, by name.",
    );
    let s = d.answer::<dto::ServicesOverview<std::collections::BTreeMap<String, dto::ServiceHealthEntry>>>();
    d.add(op.ok(200, "The services.", s));
    let op = Op::new(
        "GET",
        "/system-metrics",
        "The newest system sample (values null when stale).",
    );
    let s = d.answer::<dto::SystemMetrics>();
    d.add(
        op.ok(200, "The sample.", s)
            .error(503, "No system sample collected yet."),
    );
    let op = Op::new(
        "GET",
        "/dashboard-data",
        "Everything the dashboard shows, in one answer.",
    );
    let s = d.answer::<dto::DashboardData>();
    d.add(
        op.ok(200, "The dashboard's data.", s)
            .error(503, "Not computed yet; retry in a second."),
    );

    let op = Op::new(
        "GET",
        "/metrics",
        "The daemon's own metrics in the Prometheus text format (OpenMetrics by Accept).",
    )
    .query(
        "series",
        one_of(&["all"]),
        "`all`: also the newest sample of every stored series.",
    )
    .bad_query()
    .error(
        406,
        "The Accept header takes neither the text format nor OpenMetrics.",
    )
    .content(200, "The exposition.", "text/plain", text.clone())
    .content(200, "", "application/openmetrics-text", text.clone());
    d.add(op);
    let s = d.answer::<dto::MetricsSummary>();
    let op = Op::new(
        "GET",
        "/metrics/summary",
        "Request statistics and trends per service over a range.",
    )
    .query("time_range", range("24h"), "How far back.")
    .query("service", text.clone(), "Only this service.")
    .bad_query();
    d.add(op.ok(200, "The summary.", s));
    let s = d.answer::<dto::DetailedMetrics>();
    let op = Op::new(
        "GET",
        "/metrics/detailed",
        "Stored series as points (avg, min, max) on a grid.",
    )
    .query("time_range", range("24h"), "How far back.")
    .query(
        "granularity",
        json!({"type": "string", "enum": ["1m", "5m", "1h"], "default": "5m"}),
        "The step (a coarser one is used when the range outlives the tier).",
    )
    .query("metric", text.clone(), "Only this metric.")
    .query(
        "service",
        text.clone(),
        "Only series with this service label.",
    )
    .bad_query();
    d.add(op.ok(200, "The series.", s));
    let s = d.answer::<dto::ModelLoadingStatus>();
    d.add(
        Op::new(
            "GET",
            "/model-loading-status",
            "Every model's loading state.",
        )
        .ok(200, "The models.", s),
    );
    let s = d.answer::<dto::TrainingStatus>();
    d.add(
        Op::new(
            "GET",
            "/training-status",
            "Training jobs, the queue and resources.",
        )
        .ok(200, "The jobs.", s),
    );

    let b = d.request::<super::metrics::IngestRequest>();
    let s = d.answer::<dto::IngestResponse>();
    d.add(
        Op::new(
            "POST",
            "/ingest/metrics",
            "Pushes samples (at most 10,000).",
        )
        .body(b)
        .ok(200, "Stored.", s),
    );
    let b = d.request::<crate::collect::requests::RequestBatch>();
    let s = d.answer::<dto::RequestsIngestResponse>();
    d.add(
        Op::new(
            "POST",
            "/ingest/requests",
            "Pushes a service's request observations or an aggregate.",
        )
        .body(b)
        .ok(200, "Stored.", s),
    );
    let one = d.request::<crate::platform::models::ModelEvent>();
    let s = d.answer::<dto::Accepted>();
    let max = super::platform::MAX_EVENTS;
    d.add(
        Op::new("POST", "/ingest/models", "Reports model loading events.")
            .body(events(one, max))
            .ok(200, "Recorded.", s.clone()),
    );
    let one = d.request::<crate::platform::training::JobEvent>();
    d.add(
        Op::new("POST", "/ingest/training", "Reports training job events.")
            .body(events(one, max))
            .ok(200, "Recorded.", s),
    );
    let b = d.request::<Vec<super::alertmanager::PostableAlert>>();
    d.add(
        Op::new("POST", "/api/v2/alerts", "Takes alerts as Alertmanager does (from Prometheus rules).")
            .body(b)
            .ok(200, "Received.", json!({"type": "object", "required": ["status", "received"], "properties": {"status": {"const": "success"}, "received": {"type": "integer", "minimum": 0}}})),
    );

    let s = d.answer::<dto::AlertsResponse>();
    let op = Op::new("GET", "/alerts", "Alerts, newest first, with counts.")
        .query("severity", one_of(&SEVERITIES), "Only this severity.")
        .query("service", text.clone(), "Only this service.")
        .query(
            "status",
            one_of(&["active", "acknowledged", "resolved"]),
            "Only this status.",
        )
        .query(
            "limit",
            limit(DEFAULT_LIMIT, MAX_LIMIT),
            "At most this many.",
        )
        .bad_query();
    d.add(op.ok(200, "The alerts.", s));
    let s = d.answer::<dto::AlertWithHistory>();
    let op = Op::new("GET", "/alerts/{alert_id}", "One alert with its history.")
        .param("path", "alert_id", text.clone(), "The alert's id.")
        .error(404, "No such alert.");
    d.add(op.ok(
        200,
        "The alert and every record of its history, oldest first.",
        s,
    ));
    let s = d.answer::<dto::AlertEnvelope>();
    let b = d.request::<super::alerts::AcknowledgeRequest>();
    let op = Op::new(
        "POST",
        "/alerts/acknowledge",
        "Acknowledges an active alert.",
    )
    .body(b)
    .error(404, "No such alert.")
    .error(409, "The alert is not active.");
    d.add(op.ok(200, "The alert as it is now.", s.clone()));
    let b = d.request::<super::alerts::ResolveRequest>();
    let op = Op::new("POST", "/alerts/resolve", "Resolves an alert.")
        .body(b)
        .error(404, "No such alert.")
        .error(409, "The alert is already resolved.");
    d.add(op.ok(200, "The alert as it is now.", s));
    let s = d.answer::<dto::AnomalyList>();
    let op = Op::new(
        "GET",
        "/anomalies",
        "Anomaly events the watch found, newest first.",
    )
    .query("metric", text.clone(), "Only events of this metric.")
    .query(
        "service",
        text.clone(),
        "Only events of series with this service label.",
    )
    .query(
        "time_range",
        range("24h"),
        "Events that lasted into this window.",
    )
    .query("limit", limit(100, 1000), "At most this many.")
    .bad_query();
    d.add(op.ok(200, "The events and how many the filter keeps.", s));
    let s = d.answer::<dto::ForecastView>();
    let op = Op::new(
        "GET",
        "/forecast",
        "Predicted points of a metric's series, with 80 % and 95 % intervals and the model used.",
    )
    .query("metric", text.clone(), "The metric (required).")
    .query(
        "service",
        text.clone(),
        "Only series with this service label.",
    )
    .query(
        "labels",
        text.clone(),
        "Only series with these labels: name=value,name=value.",
    )
    .query(
        "horizon",
        json!({"type": "string", "enum": ["1h", "6h", "24h", "7d"], "default": "24h"}),
        "How far ahead.",
    )
    .bad_query();
    d.add(op.ok(200, "The forecast of every matching series.", s));
    let s = d.answer::<dto::Capacity>();
    let op = Op::new(
        "GET",
        "/capacity",
        "Each disk (by mount) and the memory, with its forecast time to full.",
    )
    .bad_query();
    d.add(op.ok(200, "The resources.", s));
    let s = d.answer::<dto::AuditList>();
    let op = Op::new("GET", "/audit", "The audit trail, newest first.")
        .query("alert_id", text.clone(), "Only records of this alert.")
        .query(
            "action",
            text.clone(),
            "Only this action (fired, acknowledged, resolved, escalated, ...).",
        )
        .query("actor", text.clone(), "Only records by this actor.")
        .query(
            "limit",
            limit(DEFAULT_LIMIT, MAX_LIMIT),
            "At most this many.",
        )
        .bad_query();
    d.add(op.ok(200, "The records.", s));
    let s = d.answer::<dto::AuditView>();
    let op = Op::new(
        "GET",
        "/audit/export",
        "The whole audit trail as JSON Lines, oldest first, with its hash chain.",
    )
    .query(
        "after",
        json!({"type": "integer", "minimum": 0}),
        "Only records after this sequence number.",
    )
    .bad_query();
    d.add(op.content(
        200,
        "One record per line (each line is an AuditView).",
        "application/x-ndjson",
        json!({"type": "string", "x-line-schema": s}),
    ));
    let s = d.answer::<dto::SilenceList>();
    d.add(
        Op::new(
            "GET",
            "/silences",
            "Every silence, with whether it mutes now.",
        )
        .ok(200, "The silences.", s),
    );
    let b = d.request::<super::alerts::SilenceRequest>();
    let s = d.answer::<dto::SilenceView>();
    d.add(
        Op::new(
            "POST",
            "/silences",
            "Mutes the notifications of alerts whose labels match.",
        )
        .body(b)
        .ok(201, "Created.", s.clone()),
    );
    let op = Op::new("DELETE", "/silences/{id}", "Expires a silence.")
        .param("path", "id", text.clone(), "The silence's id.")
        .error(404, "No such silence.");
    d.add(op.ok(200, "The silence as it was.", s));

    let charts: [(&'static str, &str, Value, &[&str]); 5] = [
        (
            "/charts/system-metrics",
            "CPU, memory, disk and network over a range.",
            d.answer::<dto::SystemMetricsChart>(),
            &["metric"],
        ),
        (
            "/charts/service-health",
            "Each service's response time and uptime over a range.",
            d.answer::<dto::ServiceHealthChart>(),
            &["service"],
        ),
        (
            "/charts/alerts-timeline",
            "Alerts fired per step, by severity.",
            d.answer::<dto::AlertsTimelineChart>(),
            &["severity"],
        ),
        (
            "/charts/model-loading",
            "Model loading progress and memory.",
            d.answer::<dto::ModelLoadingChart>(),
            &[],
        ),
        (
            "/charts/training-progress",
            "Training jobs' progress.",
            d.answer::<dto::TrainingProgressChart>(),
            &["model_name"],
        ),
    ];
    for (path, summary, schema, filters) in charts {
        let mut op = Op::new("GET", path, summary)
            .query("time_range", range("24h"), "How far back.")
            .query("format", one_of(&["json"]), "Only JSON (Chart.js-ready).");
        for f in filters {
            let schema = match *f {
                "severity" => one_of(&SEVERITIES),
                "metric" => one_of(&crate::query::charts::SYSTEM_CHOICES),
                _ => text.clone(),
            };
            op = op.query(f, schema, "Only this one.");
        }
        d.add(op.bad_query().ok(200, "The chart's data.", schema));
    }
    let op = Op::new(
        "GET",
        "/ws/metrics",
        "The live feed: a websocket (snapshot, periodic metrics, alert events).",
    )
    .error(400, "Not a websocket upgrade.")
    .error(503, "Too many live clients (WS_MAX_CLIENTS).")
    .bare(101, "Switched to the websocket.");
    d.add(op);

    let s = d.answer::<dto::TokenList>();
    d.add(
        Op::new(
            "GET",
            "/auth/tokens",
            "Every API token (never the secrets).",
        )
        .ok(200, "The tokens.", s),
    );
    let b = d.request::<super::access::CreateToken>();
    let s = d.answer::<dto::CreatedToken>();
    d.add(
        Op::new(
            "POST",
            "/auth/tokens",
            "Creates a token; the secret is in this answer only.",
        )
        .body(b)
        .error(409, "A token with this name exists.")
        .ok(201, "Created.", s),
    );
    let s = d.answer::<dto::TokenView>();
    let op = Op::new("DELETE", "/auth/tokens/{name}", "Revokes a token.")
        .param("path", "name", text.clone(), "The token's name.")
        .error(404, "No such token.");
    d.add(op.ok(200, "The revoked token.", s));
    let s = d.answer::<dto::Session>();
    d.add(
        Op::new(
            "GET",
            "/auth/session",
            "Who the caller is and what they may do.",
        )
        .ok(200, "The session.", s),
    );
    d.add(
        Op::new(
            "POST",
            "/admin/backup",
            "A consistent backup of everything (series, blocks, alerts, audit trail, silences, outbox, platform state, tokens), streamed as it is written; restore it with `mlsec-monitor restore`.",
        )
        .error(409, "A backup is already running.")
        .content(
            200,
            "The archive (see the README's Backup and restore). The archive is written whole before the reply starts, so a failed backup is a 500 and `Content-Length` is exact. A stream that ends early (a caller that read nothing for 60 s) is a cut archive; `restore` refuses it.",
            "application/octet-stream",
            json!({"type": "string", "contentMediaType": "application/octet-stream"}),
        ),
    );
    let s = d.answer::<super::reload::Reloaded>();
    d.add(
        Op::new(
            "POST",
            "/-/reload",
            "Reads the configuration file again and applies services, rules, channels, routes, escalation, CORS origins and TLS certificates without a restart.",
        )
        .error(400, "The new configuration is invalid, or changes a setting that cannot change while running; nothing was changed.")
        .ok(200, "Applied; what changed.", s),
    );
    let op = Op::new("GET", "/ui", "The dashboard.").content(
        200,
        "The page.",
        "text/html",
        text.clone(),
    );
    d.add(op);
    let op = Op::new("GET", "/ui/{file}", "The dashboard's files.")
        .param("path", "file", text.clone(), "A file name.")
        .error(404, "No such file.")
        .content(200, "The file.", "*/*", text);
    d.add(op);

    let mut schemas = d.answers.take_definitions(true);
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "string", "description": "What was wrong, naming the field or parameter."}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mlsec-monitor",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Monitoring and alerting for the ML security platform. Unknown values are null, never 0. Every error is a JSON object with `error`.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "security": [{"bearer": []}],
        "paths": d.paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An API token (`mlsec-monitor token create`)."}},
        },
    })
}
