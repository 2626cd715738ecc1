//! http::upload: `POST /api/upload`, a multipart form with a `file` and optional
//! `copyright_text` and `copyright_link`. The file is streamed to disk once (never held whole
//! in memory), refused beyond `MAX_UPLOAD_SIZE`, and handed to the catalogue, which validates
//! it before it joins; a rejected upload leaves no file behind. While it arrives, the file has
//! a temporary name of [`crate::atomic`]'s scheme, so one cut off by a kill is removed at the
//! next start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tokio::io::AsyncWriteExt;

use super::auth::authorize;
use super::{ApiError, AppState, Peer};
use crate::catalog::ImageMeta;
use crate::metrics::Metrics;

/// Longest the server waits for the next piece of an upload's body.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest copyright text or link accepted.
const MAX_TEXT_FIELD: usize = 2048;

/// Where uploads are written while they arrive (ignored by the catalogue's scans).
pub fn incoming_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("uploads").join(".incoming")
}

/// A file being received, removed unless handed over.
struct Incoming {
    path: PathBuf,
    kept: bool,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `POST /api/upload`.
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Option<axum::Extension<Peer>>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    authorize(&state.settings, &headers, peer.map(|p| p.0))?;
    let mut multipart = multipart.map_err(|_| {
        ApiError::bad_request_with(
            "malformed_multipart",
            "expected a multipart/form-data body with a boundary and a `file` field",
        )
    })?;
    let mut received: Option<Incoming> = None;
    let mut meta = ImageMeta::default();
    while let Some(field) = next_field(&mut multipart).await? {
        match field.name() {
            Some("file") if received.is_none() => {
                meta.original_filename = safe_name(field.file_name());
                received = Some(receive(&state, field).await?);
            }
            Some("copyright_text") => meta.copyright_text = text_field(field).await?,
            Some("copyright_link") => meta.copyright_link = link_field(field).await?,
            _ => drain(field).await?,
        }
    }
    let mut incoming =
        received.ok_or_else(|| ApiError::bad_request("the form has no `file` field"))?;
    let catalog = state.catalog.clone();
    let path = incoming.path.clone();
    let name = meta.original_filename.clone();
    let added = tokio::task::spawn_blocking(move || catalog.add_upload(&path, meta))
        .await
        .map_err(|e| ApiError::internal("internal", "internal error", e))?;
    // The catalogue has moved or removed the file either way.
    incoming.kept = true;
    let entry = added?;
    Metrics::inc(&state.metrics.uploads);
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "id": entry.id, "name": name })),
    )
        .into_response())
}

async fn next_field(multipart: &mut Multipart) -> Result<Option<Field<'_>>, ApiError> {
    match tokio::time::timeout(BODY_IDLE_TIMEOUT, multipart.next_field()).await {
        Ok(field) => field.map_err(multipart_error),
        Err(_) => Err(ApiError::for_status(StatusCode::REQUEST_TIMEOUT)),
    }
}

/// Streams the file field to a new file under the incoming folder, counting bytes.
async fn receive(state: &AppState, mut field: Field<'_>) -> Result<Incoming, ApiError> {
    let dir = incoming_dir(&state.settings.data_dir);
    tokio::fs::create_dir_all(&dir).await.map_err(io_error)?;
    let incoming = Incoming {
        path: crate::atomic::temp_path(&dir.join("upload")),
        kept: false,
    };
    let mut file = tokio::fs::File::create_new(&incoming.path)
        .await
        .map_err(io_error)?;
    let limit = state.settings.max_upload_size;
    let mut size = 0u64;
    loop {
        let chunk = match tokio::time::timeout(BODY_IDLE_TIMEOUT, field.chunk()).await {
            Ok(chunk) => chunk.map_err(multipart_error)?,
            Err(_) => return Err(ApiError::for_status(StatusCode::REQUEST_TIMEOUT)),
        };
        let Some(chunk) = chunk else { break };
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large(limit));
        }
        file.write_all(&chunk).await.map_err(io_error)?;
    }
    file.sync_all().await.map_err(io_error)?;
    if size == 0 {
        return Err(ApiError::bad_request("the uploaded file is empty"));
    }
    Ok(incoming)
}

async fn text_field(field: Field<'_>) -> Result<Option<String>, ApiError> {
    let text = field.text().await.map_err(multipart_error)?;
    if text.len() > MAX_TEXT_FIELD {
        return Err(ApiError::bad_request(
            "a text field is longer than 2048 bytes",
        ));
    }
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_string()))
}

/// A copyright link: http or https only, so the viewer never renders another scheme.
async fn link_field(field: Field<'_>) -> Result<Option<String>, ApiError> {
    let link = text_field(field).await?;
    match &link {
        Some(l) if !(l.starts_with("https://") || l.starts_with("http://")) => Err(
            ApiError::bad_request("copyright_link must be an http or https URL"),
        ),
        _ => Ok(link),
    }
}

async fn drain(mut field: Field<'_>) -> Result<(), ApiError> {
    while field.chunk().await.map_err(multipart_error)?.is_some() {}
    Ok(())
}

/// The client's file name without folders or control characters (it is only shown).
fn safe_name(name: Option<&str>) -> String {
    let base = name
        .unwrap_or("upload")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("upload");
    let clean: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    if clean.trim().is_empty() {
        "upload".to_string()
    } else {
        clean
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the upload is larger than the limit of {limit} bytes (MAX_UPLOAD_SIZE)"),
    )
}

/// What went wrong reading the form: too large (413), the body itself unreadable (400
/// `malformed_body`), bad multipart syntax (400 `malformed_multipart`), or, for any other
/// failure axum reports as its own (a bug), a logged 500.
fn multipart_error(e: MultipartError) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the upload is larger than the limit (MAX_UPLOAD_SIZE)",
        );
    }
    if let Some(cause) = body_read_error(&e) {
        return ApiError::malformed_body(cause);
    }
    if status.is_server_error() {
        return ApiError::internal("internal", "internal error", e.body_text());
    }
    ApiError::bad_request_with(
        "malformed_multipart",
        format!("the multipart body is malformed: {}", e.body_text()),
    )
}

/// The connection's error when reading the request body failed (bad chunked encoding, a body
/// cut short), found among the multipart error's causes.
fn body_read_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a hyper::Error> {
    let mut cause = e.source();
    while let Some(c) = cause {
        if let Some(hyper_error) = c.downcast_ref::<hyper::Error>() {
            return Some(hyper_error);
        }
        cause = c.source();
    }
    None
}

fn io_error(e: std::io::Error) -> ApiError {
    ApiError::internal("storage_error", "the upload could not be stored", e)
}

#[cfg(test)]
mod tests {
    use super::safe_name;

    #[test]
    fn client_file_names_lose_their_folders() {
        assert_eq!(safe_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(safe_name(Some("C:\\pics\\a.jpg")), "a.jpg");
        assert_eq!(safe_name(Some("a\u{0}b.png")), "ab.png");
        assert_eq!(safe_name(None), "upload");
        assert_eq!(safe_name(Some("/")), "upload");
    }
}
