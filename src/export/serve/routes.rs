//! The answer to one request of `sockq serve`: `/` (a page pointing to the metrics),
//! `/metrics` in the Prometheus text format or OpenMetrics (content negotiation as Prometheus
//! does it), and the errors for any other path or method. Pure apart from encoding the
//! published tick and reading sockq's own process numbers.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::super::prometheus::{
    self as prom, ConnectionStats, ExportOptions, ExporterStats, OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
};
use super::{Exposed, Published};
use crate::model::ProcessSelf;

const INDEX: &str =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>sockq</title></head>\n\
<body><h1>sockq</h1>\n<p>Linux socket-queue metrics (accept queue, SYN-RECV, drops, tunables):\n\
<a href=\"/metrics\">/metrics</a> (Prometheus text format 0.0.4;\n\
<a href=\"/metrics?format=openmetrics\">OpenMetrics</a> with\n\
<code>Accept: application/openmetrics-text</code> or <code>?format=openmetrics</code>).</p>\n\
</body></html>\n";

fn simple(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The response to one request. Pure apart from encoding the published tick and reading
/// sockq's own process through `process` (for /metrics only).
pub(super) fn respond(
    req: &Request<Incoming>,
    published: Option<&Published>,
    connections: ConnectionStats,
    export: &ExportOptions,
    process: &(dyn Fn() -> ProcessSelf + Send + Sync),
) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path != "/" && path != "/metrics" {
        return simple(
            StatusCode::NOT_FOUND,
            "not found: sockq serves /metrics and /\n",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = simple(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: use GET\n",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if path == "/" {
        let mut r = Response::new(Full::new(Bytes::from_static(INDEX.as_bytes())));
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        return r;
    }
    let Some(p) = published else {
        return simple(
            StatusCode::SERVICE_UNAVAILABLE,
            "no sample yet: the first arrives within one --interval\n",
        );
    };
    let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
    let openmetrics = wants_openmetrics(accept, req.uri().query());
    let stats = ExporterStats {
        connections,
        ..p.stats
    };
    let mut families = match &p.exposed {
        Exposed::One(tick) => prom::families(tick, export, &stats),
        Exposed::Fleet(fleet) => prom::fleet_families(fleet, &stats),
    };
    families.extend(prom::process_families(&process()));
    let (body, content_type) = if openmetrics {
        (
            prom::encode_openmetrics(&families),
            OPENMETRICS_CONTENT_TYPE,
        )
    } else {
        (prom::encode_text(&families), TEXT_CONTENT_TYPE)
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Content negotiation: OpenMetrics when `?format=openmetrics`, or when the Accept header
/// ranks `application/openmetrics-text` at least as high as `text/plain` (as Prometheus does);
/// `?format=prometheus` (or `text`) forces the 0.0.4 text format.
pub fn wants_openmetrics(accept: Option<&str>, query: Option<&str>) -> bool {
    for pair in query.unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("format", "openmetrics")) => return true,
            Some(("format", "prometheus" | "text")) => return false,
            _ => {}
        }
    }
    let Some(accept) = accept else {
        return false;
    };
    let (mut om, mut text) = (0.0f64, 0.0f64);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f64>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" => om = om.max(q),
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    om > 0.0 && om >= text
}

#[cfg(test)]
mod tests {
    use super::wants_openmetrics;

    #[test]
    fn negotiation_follows_prometheus_accept_header_and_query() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(Some(prom), None));
        assert!(!wants_openmetrics(Some("*/*"), None));
        assert!(!wants_openmetrics(None, None));
        assert!(wants_openmetrics(
            Some("application/openmetrics-text"),
            None
        ));
        assert!(!wants_openmetrics(
            Some("text/plain;version=0.0.4,application/openmetrics-text;q=0.3"),
            None
        ));
        assert!(wants_openmetrics(None, Some("format=openmetrics")));
        assert!(!wants_openmetrics(
            Some(prom),
            Some("x=1&format=prometheus")
        ));
    }
}
