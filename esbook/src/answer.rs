//! Whatever the server answered, as it answered it: the HTTP status and the JSON body.
//!
//! [`doc::outcome`](crate::doc::outcome) sorts a write's answer into written or conflicted and
//! treats everything else as an error, which is what a client doing its job wants. The chapters
//! that show what the server *refuses* (a 400 for a combination of parameters it does not
//! accept, a 404 for a document that is not there, a 409 for one that is) need the answer
//! itself, with its exact words: that is an [`Answer`].

use anyhow::{Context, Result};
use elasticsearch::http::response::Response;
use serde_json::Value;

/// An HTTP status and the JSON body that came with it, whatever the status.
///
/// ```
/// # #[tokio::main] async fn main() -> anyhow::Result<()> {
/// # let cluster = esbook::Cluster::connect(esbook::Needs::Core).await?;
/// # let client = &cluster.client;
/// use elasticsearch::CreateParts;
/// use esbook::{answer::Answer, doc};
/// use serde_json::json;
///
/// doc::fresh_index(client, "answer-create").await?;
/// let mut answers = Vec::new();
/// for owner in ["A", "B"] {
///     let response = client
///         .create(CreateParts::IndexId("answer-create", "1"))
///         .body(json!({ "owner": owner }))
///         .send()
///         .await?;
///     answers.push(Answer::of(response).await?);
/// }
/// assert_eq!((answers[0].status, answers[1].status), (201, 409));
/// assert_eq!(answers[0].body["result"], "created");
/// assert_eq!(answers[1].error_type(), "version_conflict_engine_exception");
/// assert!(answers[1].reason().contains("document already exists"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// Reads the whole answer; an error only if the body is not JSON.
    pub async fn of(response: Response) -> Result<Answer> {
        let status = response.status_code().as_u16();
        let body = response
            .json()
            .await
            .with_context(|| format!("an HTTP {status} answer that is not JSON"))?;
        Ok(Answer { status, body })
    }

    /// `error.type` of an error answer, or `""` for a success.
    pub fn error_type(&self) -> &str {
        self.body["error"]["type"].as_str().unwrap_or_default()
    }

    /// `error.reason` of an error answer, word for word, or `""` for a success.
    pub fn reason(&self) -> &str {
        self.body["error"]["reason"].as_str().unwrap_or_default()
    }

    /// One line for a person: `HTTP 409 version_conflict_engine_exception: [1]: ...` for an
    /// error, `HTTP 201 result=created _seq_no=0 _version=1` for a write that went through.
    ///
    /// ```
    /// use esbook::answer::Answer;
    /// use serde_json::json;
    ///
    /// let written = Answer { status: 200, body: json!({
    ///     "result": "updated", "_seq_no": 3, "_primary_term": 1, "_version": 2 }) };
    /// assert_eq!(written.summary(),
    ///            "HTTP 200 result=updated _seq_no=3 _primary_term=1 _version=2");
    /// let refused = Answer { status: 400, body: json!({ "error": {
    ///     "type": "action_request_validation_exception",
    ///     "reason": "Validation Failed: 1: compare and write operations can not be retried;" } }) };
    /// assert_eq!(refused.summary(), "HTTP 400 action_request_validation_exception: \
    ///     Validation Failed: 1: compare and write operations can not be retried;");
    /// ```
    pub fn summary(&self) -> String {
        if self.body["error"].is_object() {
            return format!(
                "HTTP {} {}: {}",
                self.status,
                self.error_type(),
                self.reason()
            );
        }
        let mut line = format!("HTTP {}", self.status);
        for field in ["result", "_seq_no", "_primary_term", "_version"] {
            let value = &self.body[field];
            match value {
                Value::Null => {}
                Value::String(text) => line.push_str(&format!(" {field}={text}")),
                other => line.push_str(&format!(" {field}={other}")),
            }
        }
        line
    }
}
